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
	// held counts the slots taken: incremented after a slot is taken,
	// decremented after it is given back, so it may trail slots by the
	// calls in between. Invariant: 0 <= held <= cap(slots) once every
	// Acquire and Release has returned.
	held atomic.Int64
	// below is the one NotifyBelow waiting, nil when none.
	below atomic.Pointer[belowWaiter]
	// acked counts the records released that were acknowledged: whether
	// the broker still takes records (Acked). A failed record is no
	// progress, and does not count.
	acked atomic.Uint64
}

// belowWaiter is a NotifyBelow: f runs once held is at most n.
type belowWaiter struct {
	n int64
	f func()
}

// NewGate returns a gate letting n records through at a time.
func NewGate(n int) *Gate { return &Gate{slots: make(chan struct{}, n)} }

// Acquire takes room for one record, waiting until some is released or ctx
// ends (then it returns ctx's error and takes nothing).
func (g *Gate) Acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		g.held.Add(1)
		return nil
	default:
	}
	select {
	case g.slots <- struct{}{}:
		g.held.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back the room of one record, acknowledged (err nil) or
// failed with err. It runs the NotifyBelow waiting, if the gate now holds
// no more records than it waits for.
func (g *Gate) Release(err error) {
	<-g.slots
	n := g.held.Add(-1)
	if err == nil {
		g.acked.Add(1)
	}
	// NB: held is decremented before below is loaded, and NotifyBelow
	// stores below before it loads held: one of the two sees the other,
	// so a waiter is never missed.
	if w := g.below.Load(); w != nil && n <= w.n && g.below.CompareAndSwap(w, nil) {
		w.f()
	}
}

// Held returns how many records hold room in the gate: handed to the
// producer (or about to be) and not yet acknowledged or failed.
func (g *Gate) Held() int { return int(g.held.Load()) }

// NotifyBelow arranges for f to run once, as soon as the gate holds n
// records or fewer: at once, on the caller's goroutine, if it does now,
// else on the goroutine of the Release that brings it there (f must be
// quick and must not call the Gate). One notification waits at a time: a
// call replaces an earlier one that has not run. cancel withdraws this
// one if it has not run; it is safe to call more than once.
func (g *Gate) NotifyBelow(n int, f func()) (cancel func()) {
	w := &belowWaiter{n: int64(n), f: f}
	g.below.Store(w)
	if g.held.Load() <= w.n && g.below.CompareAndSwap(w, nil) {
		f()
	}
	return func() { g.below.CompareAndSwap(w, nil) }
}

// Acked returns how many records released so far were acknowledged.
func (g *Gate) Acked() uint64 { return g.acked.Load() }
