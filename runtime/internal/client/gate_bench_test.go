package client

import (
	"context"
	"testing"
)

// BenchmarkGate is one record's way through the gate: room taken before
// Produce, given back at its acknowledgement.
func BenchmarkGate(b *testing.B) {
	g := NewGate(1024)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		g.Release(nil)
	}
}

// BenchmarkGateWithNotification is BenchmarkGate while a notification
// waits for a count the gate never reaches (the loop's wait while
// back-pressure holds).
func BenchmarkGateWithNotification(b *testing.B) {
	g := NewGate(1024)
	if err := g.Acquire(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer g.NotifyBelow(0, func() {})()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		g.Release(nil)
	}
}
