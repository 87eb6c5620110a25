package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
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

// TestRunBriefly runs the program against an in-memory cluster with event
// time sped up 60 times, until it has printed final window counts and a
// progress line, then stops it as Ctrl-C would.
func TestRunBriefly(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := config{
		brokers:       c.ListenAddrs()[0],
		stateDir:      t.TempDir(),
		rate:          500,
		customers:     5,
		outOfOrder:    0.1,
		speedup:       60,
		progressEvery: 500 * time.Millisecond,
		logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out) }()

	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		s := out.String()
		if len(windowLine.FindAllString(s, -1)) >= 5 && regexp.MustCompile(`(?m)^progress: `).MatchString(s) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, s)
		case <-deadline:
			cancel()
			t.Fatalf("no final window counts printed in time:\n%s", s)
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	s := out.String()
	for _, m := range windowLine.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		// 500 orders/s over 5 customers, a one-minute window is one
		// second of wall time: about 100 per customer, never 0.
		if n <= 0 || n > 500 {
			t.Errorf("implausible window count %d in %q", n, m[0])
		}
	}
	if !regexp.MustCompile(`(?m)^orders-per-minute: stopped$`).MatchString(s) {
		t.Errorf("no clean stop line:\n%s", s)
	}
}
