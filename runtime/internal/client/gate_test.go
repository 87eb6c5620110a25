package client

import (
	"context"
	"errors"
	"testing"
)

// TestGate: a full gate makes Acquire wait until a release, and gives up
// with the context's error (taking nothing) when the context ends first.
func TestGate(t *testing.T) {
	g := NewGate(2)
	for range 2 {
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire on a full gate with a canceled context: %v, want context.Canceled", err)
	}
	got := make(chan error, 1)
	go func() { got <- g.Acquire(context.Background()) }()
	g.Release(nil)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// Full again: the failed acquire took nothing.
	if err := g.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire after refill: %v, want context.Canceled", err)
	}
}

// TestGateCountsAcknowledgedOnly: a failed record gives its room back but
// is not counted as acknowledged (Close judges progress by Acked).
func TestGateCountsAcknowledgedOnly(t *testing.T) {
	g := NewGate(2)
	for range 2 {
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	g.Release(errors.New("record failed"))
	if n := g.Acked(); n != 0 {
		t.Fatalf("acked %d after a failed record, want 0", n)
	}
	g.Release(nil)
	if n := g.Acked(); n != 1 {
		t.Fatalf("acked %d after one acknowledged record, want 1", n)
	}
	// Both gave their room back.
	for range 2 {
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGateNotifyBelow: a notification runs once, when a release brings the
// gate down to its count (or at once if it is there already), and not
// after it is canceled or replaced.
func TestGateNotifyBelow(t *testing.T) {
	g := NewGate(4)
	for range 4 {
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.Held(); n != 4 {
		t.Fatalf("held %d, want 4", n)
	}
	var runs int
	cancel := g.NotifyBelow(2, func() { runs++ })
	g.Release(nil)
	if runs != 0 {
		t.Fatalf("ran at 3 held, waiting for 2")
	}
	g.Release(errors.New("record failed")) // a failed record gives its room back too
	if runs != 1 {
		t.Fatalf("ran %d times at 2 held, want 1", runs)
	}
	g.Release(nil)
	if runs != 1 {
		t.Fatalf("ran %d times after a further release, want 1", runs)
	}
	cancel() // after it ran: nothing to withdraw

	// At once when the gate is there already.
	g.NotifyBelow(1, func() { runs++ })
	if runs != 2 {
		t.Fatalf("ran %d times, want 2: the gate held 1 already", runs)
	}

	// Withdrawn, and replaced: neither runs.
	for range 3 {
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cancel = g.NotifyBelow(0, func() { runs += 10 })
	cancel()
	cancel()
	g.NotifyBelow(0, func() { runs += 100 })
	g.NotifyBelow(3, func() { runs += 1000 })
	for range 4 {
		g.Release(nil)
	}
	if runs != 1002 {
		t.Fatalf("runs %d, want 1002: only the last notification runs", runs)
	}
}

// TestGateNotifyBelowConcurrent: a notification set while other
// goroutines release is never missed.
func TestGateNotifyBelowConcurrent(t *testing.T) {
	for i := range 200 {
		g := NewGate(64)
		for range 64 {
			if err := g.Acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() {
			for range 64 {
				g.Release(nil)
			}
		}()
		g.NotifyBelow(i%64, func() { close(done) })
		<-done // a missed notification hangs here (the test's timeout)
	}
}
