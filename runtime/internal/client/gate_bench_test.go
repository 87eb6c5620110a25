package client

import (
	"context"
	"testing"
)

// BenchmarkGate is one record's way through the gate: room taken before
// Produce, given back at its acknowledgement.
func BenchmarkGate(b *testing.B) {
	benchGate(b, NewGate(1024))
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
	benchGate(b, g)
}

// benchGate takes and gives back one record's room in g per iteration.
func benchGate(b *testing.B, g *Gate) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		g.Release(nil)
	}
}
