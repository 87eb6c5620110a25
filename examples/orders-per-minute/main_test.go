package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// syncBuffer is a bytes.Buffer safe for the program's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var windowLine = regexp.MustCompile(`(?m)^window \d\d:\d\d:\d\d-\d\d:\d\d:\d\d  customer-\d{3}  (\d+) orders$`)

// runUntil runs the program with cfg until it has printed at least
// windows final window counts and then a progress line, stops it as Ctrl-C
// would, and returns what it printed.
func runUntil(t *testing.T, cfg config, windows int) string {
	t.Helper()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out) }()

	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		s := out.String()
		if w := windowLine.FindAllStringIndex(s, -1); len(w) >= windows &&
			regexp.MustCompile(`(?m)^progress: `).MatchString(s[w[windows-1][1]:]) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, s)
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no final window counts printed in time:\n%s", s)
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	s := out.String()
	if !regexp.MustCompile(`(?m)^orders-per-minute: stopped$`).MatchString(s) {
		t.Errorf("no clean stop line:\n%s", s)
	}
	return s
}

func newCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// TestRunBriefly runs the program against an in-memory cluster with event
// time sped up 60 times, until it has printed final window counts and a
// progress line, then stops it as Ctrl-C would.
func TestRunBriefly(t *testing.T) {
	cfg := defaultConfig()
	cfg.brokers = newCluster(t)
	cfg.stateDir = t.TempDir()
	cfg.rate = 500
	cfg.customers = 5
	cfg.speedup = 60
	cfg.progressEvery = 500 * time.Millisecond
	cfg.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s := runUntil(t, cfg, 5)
	for _, m := range windowLine.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		// 500 orders/s over 5 customers, a 10 s window is 1/6 s of
		// wall time: about 17 per customer, never 0, and never more
		// than a whole second's orders.
		if n <= 0 || n > 500 {
			t.Errorf("implausible window count %d in %q", n, m[0])
		}
	}
}

// TestRunEmbedded runs the program as the README's first command does: no
// brokers given, so the runtime starts an embedded Weir broker under the
// state directory, and the program must print final window counts, a
// progress line and a clean stop.
func TestRunEmbedded(t *testing.T) {
	cfg := defaultConfig()
	cfg.stateDir = t.TempDir()
	cfg.rate = 500
	cfg.customers = 5
	cfg.speedup = 60
	cfg.progressEvery = 500 * time.Millisecond
	cfg.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s := runUntil(t, cfg, 5)
	start := regexp.MustCompile(`(?m)^orders-per-minute: embedded Weir broker on 127\.0\.0\.1:\d+; data \(broker log and state stores\) in (.+): stop, then delete it to start afresh$`).FindStringSubmatch(s)
	if start == nil {
		t.Errorf("no embedded broker address and data directory in the start line:\n%s", s)
	} else if start[1] != cfg.stateDir {
		t.Errorf("start line names data directory %q, want %q", start[1], cfg.stateDir)
	}
	for _, m := range windowLine.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		// As in TestRunBriefly: about 17 per customer per window.
		if n <= 0 || n > 500 {
			t.Errorf("implausible window count %d in %q", n, m[0])
		}
	}
}

var progressLine = regexp.MustCompile(`(?m)^progress: .* late dropped (\d+),`)

// TestSecondRunDropsNothing runs the program twice on the same cluster and
// state directory with event time sped up 600 times and no out-of-order
// orders: the second run restores the first run's state (its stores open
// at the changelog offsets the first run committed, which carry the
// windows' stream time, far ahead of the wall clock), and its orders must
// not be dropped as late.
//
// That the second run continued from the first run's state is read from
// the runtime's "restored store" log lines (through the logger the program
// is given): in the first run every store starts empty (from 0); in the
// second, some store starts at a checkpoint the first run reached.
func TestSecondRunDropsNothing(t *testing.T) {
	cfg := defaultConfig()
	cfg.brokers = newCluster(t)
	cfg.stateDir = t.TempDir()
	cfg.rate = 500
	cfg.customers = 5
	cfg.outOfOrder = 0
	cfg.speedup = 600
	cfg.progressEvery = 200 * time.Millisecond
	for run := range 2 {
		var logs syncBuffer
		cfg.logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		s := runUntil(t, cfg, 5)
		lines := progressLine.FindAllStringSubmatch(s, -1)
		if len(lines) == 0 {
			t.Fatalf("run %d printed no progress line matching %v:\n%s", run+1, progressLine, s)
		}
		for _, m := range lines {
			if m[1] != "0" {
				t.Errorf("run %d: %q, want no order dropped as late", run+1, m[0])
				break
			}
		}
		froms := restoredFrom(t, logs.String())
		if len(froms) == 0 {
			t.Fatalf("run %d logged no restored store:\n%s", run+1, logs.String())
		}
		var resumed int
		for _, f := range froms {
			if f > 0 {
				resumed++
			}
		}
		t.Logf("run %d: %d stores restored, %d of them from a checkpoint above 0", run+1, len(froms), resumed)
		switch {
		case run == 0 && resumed != 0:
			t.Errorf("run 1 on a new state directory restored stores from %v, want all from 0", froms)
		case run == 1 && resumed == 0:
			t.Errorf("run 2 restored every store from 0 (%v): it did not continue from the first run's state", froms)
		}
	}
}

// restoredFrom returns the "from" offset of every "restored store" line in
// the JSON log.
func restoredFrom(t *testing.T, log string) []int64 {
	t.Helper()
	var froms []int64
	for _, line := range strings.Split(log, "\n") {
		if line == "" {
			continue
		}
		var rec struct {
			Msg  string `json:"msg"`
			From *int64 `json:"from"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg != "restored store" {
			continue
		}
		if rec.From == nil {
			t.Fatalf("restored store line without from: %q", line)
		}
		froms = append(froms, *rec.From)
	}
	return froms
}

// fastClock returns a clock that starts at the wall clock's now and runs k
// times faster.
func fastClock(k float64) func() time.Time {
	t0 := time.Now()
	return func() time.Time { return t0.Add(time.Duration(float64(time.Since(t0)) * k)) }
}

var firstWindowLine = regexp.MustCompile(`(?m)^orders-per-minute: the first window, (\d\d:\d\d:\d\d)-(\d\d:\d\d:\d\d) \(event time\), closes in about (\S+),`)

// TestFirstWindowClosesSoon runs the program in-process, on its embedded
// broker, at the default settings that decide when a window closes
// (window, grace, speedup, the runtime's commit interval) but on a clock
// running k times faster than the wall clock (and a commit interval k
// times shorter), and checks what the first screen promises: the first
// window printed is the one it announced, a full window starting at the
// event clock's start, and it closes within 15 s of the start on the
// program's clock: within 15/k s of wall time. The order rate is lowered
// to spare the machine; it does not move the windows.
func TestFirstWindowClosesSoon(t *testing.T) {
	const k = 3
	cfg := defaultConfig()
	cfg.stateDir = t.TempDir()
	cfg.rate = 200
	cfg.now = fastClock(k)
	cfg.commitInterval = time.Second / k
	cfg.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.speedup != 1 {
		t.Fatalf("default speedup %g: the test assumes event time runs with the clock", cfg.speedup)
	}

	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out) }()

	var announced time.Time // cfg.now when the announcement was seen
	var first []string
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s := out.String()
		if announced.IsZero() {
			if first = firstWindowLine.FindStringSubmatch(s); first != nil {
				announced = cfg.now()
			}
		}
		if m := windowLine.FindStringIndex(s); m != nil {
			closed := cfg.now()
			if announced.IsZero() {
				t.Fatalf("a window closed before the first screen announced it:\n%s", s)
			}
			line := s[m[0]:m[1]]
			if want := "window " + first[1] + "-" + first[2] + " "; !strings.HasPrefix(line, want) {
				t.Errorf("first window printed: %q, want the announced one (%q...)", line, want)
			}
			took := closed.Sub(announced)
			t.Logf("first screen: %s", first[0])
			t.Logf("first window %q closed %v after the announcement on the program's clock (%v wall time at %dx)", line, took, took/k, k)
			// It cannot close before its end plus the grace in event
			// time (the clock started at most a poll late, 5 ms wall).
			if minTook := cfg.window + cfg.grace - 5*time.Millisecond*k; took < minTook {
				t.Errorf("first window closed %v after the start, before its end plus grace (%v): not a full window", took, cfg.window+cfg.grace)
			}
			if took > 15*time.Second {
				t.Errorf("first window closed %v after the start, want within 15s", took)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, s)
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no window closed in time:\n%s", s)
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	// The first screen says what "late dropped" means.
	if s := out.String(); !strings.Contains(s, `"late dropped" counts those that arrived after their window had closed`) {
		t.Errorf("the first screen does not explain \"late dropped\":\n%s", s)
	}
}
