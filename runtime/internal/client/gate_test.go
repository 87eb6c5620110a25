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
