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

	"github.com/twmb/franz-go/pkg/kfake"
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
	paidLine   = regexp.MustCompile(`(?m)^paid    order-\d{6}  customer-\d\d  \d+\.\d\d$`)
	unpaidLine = regexp.MustCompile(`(?m)^UNPAID  order-\d{6}  customer-\d\d  \d+\.\d\d  \(no payment within 1m0s\)$`)
)

// TestRunBriefly runs the join against an in-memory cluster with event
// time sped up, until it has printed paid orders and unpaid ones (reported
// after their window closed), then stops it.
func TestRunBriefly(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := config{
		brokers: c.ListenAddrs()[0], stateDir: t.TempDir(), rate: 100, unpaid: 0.3, speedup: 60,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
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
		if paidLine.MatchString(s) && unpaidLine.MatchString(s) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, s)
		case <-deadline:
			cancel()
			t.Fatalf("no paid and unpaid orders printed in time:\n%s", s)
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
