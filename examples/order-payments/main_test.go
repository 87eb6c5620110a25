package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

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

var (
	paidLine   = regexp.MustCompile(`(?m)^paid    order-([0-9a-z]+)-\d{6}  customer-\d\d  \d+\.\d\d$`)
	unpaidLine = regexp.MustCompile(`(?m)^UNPAID  order-[0-9a-z]+-\d{6}  customer-\d\d  \d+\.\d\d  \(no payment within 1m0s\)$`)
	startLine  = regexp.MustCompile(`(?m)^order-payments: brokers .*, order ids order-([0-9a-z]+)-\*; state in .*; Ctrl-C stops$`)
)

func newCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// runUntil runs the program with cfg until done says its output is
// enough, stops it as Ctrl-C would, and returns what it printed.
func runUntil(t *testing.T, cfg config, done func(out string) bool) string {
	t.Helper()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- run(ctx, cfg, &out) }()
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !done(out.String()) {
		select {
		case err := <-ran:
			t.Fatalf("run returned early: %v\n%s", err, out.String())
		case <-deadline:
			cancel()
			<-ran
			t.Fatalf("run did not print what the test waits for in time:\n%s", out.String())
		case <-tick.C:
		}
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
	return out.String()
}

// TestRunBriefly runs the join against an in-memory cluster with event
// time sped up, until it has printed paid orders and unpaid ones (reported
// after their window closed), then stops it.
func TestRunBriefly(t *testing.T) {
	cfg := config{
		brokers: newCluster(t), stateDir: t.TempDir(), rate: 100, unpaid: 0.3, speedup: 60,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	runUntil(t, cfg, func(s string) bool { return paidLine.MatchString(s) && unpaidLine.MatchString(s) })
}

// TestOrderIDsUniqueAcrossRuns runs the program twice on one cluster and
// state directory, as a user running it again would, and reads back the
// orders topic: no order id of the second run is one of the first run's.
// (When the ids restarted from order-000000 on each run, the second run's
// orders joined the first run's payments and its orders were reported in
// their place.) The second run must also go on joining: its own orders
// are printed as paid.
func TestOrderIDsUniqueAcrossRuns(t *testing.T) {
	cfg := config{
		brokers: newCluster(t), stateDir: t.TempDir(), rate: 100, unpaid: 0.3, speedup: 60,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	// paidOwn reports whether out has a paid line for an order of the run
	// that printed it.
	paidOwn := func(out string) bool {
		m := startLine.FindStringSubmatch(out)
		if m == nil {
			return false
		}
		for _, p := range paidLine.FindAllStringSubmatch(out, -1) {
			if p[1] == m[1] {
				return true
			}
		}
		return false
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first := runUntil(t, cfg, paidOwn)
	ends, err := adm.ListEndOffsets(ctx, OrdersTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	second := runUntil(t, cfg, paidOwn)
	t.Logf("first run: %s", startLine.FindString(first))
	t.Logf("second run: %s", startLine.FindString(second))

	// Every order of both runs, each run's told apart by the first
	// run's end offsets.
	all, err := adm.ListEndOffsets(ctx, OrdersTopic)
	if err == nil {
		err = all.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	from := map[int32]kgo.Offset{}
	left := 0
	all.Each(func(o kadm.ListedOffset) {
		from[o.Partition] = kgo.NewOffset().At(0)
		left += int(o.Offset)
	})
	cons, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{OrdersTopic: from}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	runOf := [2]map[string]bool{{}, {}}
	for left > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %s: %v (%d records left)", OrdersTopic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			left--
			end, _ := ends.Lookup(OrdersTopic, r.Partition)
			i := 0
			if r.Offset >= end.Offset {
				i = 1
			}
			runOf[i][string(r.Key)] = true
		})
	}
	if len(runOf[0]) == 0 || len(runOf[1]) == 0 {
		t.Fatalf("orders per run: %d and %d, want some in each", len(runOf[0]), len(runOf[1]))
	}
	var both []string
	for id := range runOf[1] {
		if runOf[0][id] {
			both = append(both, id)
		}
	}
	t.Logf("%d and %d orders, %d ids in both runs", len(runOf[0]), len(runOf[1]), len(both))
	if len(both) > 0 {
		t.Errorf("%d order ids of the second run were already the first run's, e.g. %q", len(both), both[:min(3, len(both))])
	}
}
