package client

import (
	"context"
	"sync/atomic"
)

// Gate bounds the records handed to a producer and not yet acknowledged.
// A producer that buffers its maximum makes Produce wait, and only for as
// long as the Produce call's context lives; but franz-go also fails a
// buffered record once that context ends, so a context that bounds only
// the wait cannot be given to Produce. The runtime therefore waits for room
// here, with a context of its choice, and hands Produce only records the
// producer has room for (its own limit set above the Gate's).
type Gate struct {
	slots chan struct{}
	// acked counts the records released that were acknowledged: whether
	// the broker still takes records (Acked). A failed record is no
	// progress, and does not count.
	acked atomic.Uint64
}

// NewGate returns a gate letting n records through at a time.
func NewGate(n int) *Gate { return &Gate{slots: make(chan struct{}, n)} }

// Acquire takes room for one record, waiting until some is released or ctx
// ends (then it returns ctx's error and takes nothing).
func (g *Gate) Acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back the room of one record, acknowledged (err nil) or
// failed with err.
func (g *Gate) Release(err error) {
	<-g.slots
	if err == nil {
		g.acked.Add(1)
	}
}

// Acked returns how many records released so far were acknowledged.
func (g *Gate) Acked() uint64 { return g.acked.Load() }
