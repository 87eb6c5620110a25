package protocol

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// byteBudget bounds the bytes of request frames held at once, so that many
// connections sending large frames together cannot make the broker's memory
// grow without bound: a reader acquires bytes before allocating them and
// releases them once the request has been handled.
//
// Waiters are served in FIFO order (semaphore.Weighted): a large request
// waiting for room holds back smaller ones that arrive after it rather than
// being starved by them.
//
// The server has one budget for all connections (Config.MaxInflightBytes)
// and every connection one of its own (Config.MaxConnInflightBytes), its
// share of the server's: a reader takes from its connection's budget first,
// then from the server's, and gives back to both.
type byteBudget struct {
	sem   *semaphore.Weighted
	total int64
	held  atomic.Int64 // bytes acquired and not yet released; Invariant: 0 <= held <= total
}

func newByteBudget(total int64) *byteBudget {
	return &byteBudget{sem: semaphore.NewWeighted(total), total: total}
}

// tryAcquire takes n bytes (0 <= n <= total) if they are available at once
// and no one is waiting before it.
func (b *byteBudget) tryAcquire(n int64) bool {
	if n == 0 {
		return true
	}
	if !b.sem.TryAcquire(n) {
		return false
	}
	b.held.Add(n)
	return true
}

// acquire takes n bytes (0 <= n <= total), waiting in FIFO order while they
// are not available. It returns ctx's error if ctx ends first, having taken
// nothing.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	if n == 0 {
		return nil
	}
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	b.held.Add(n)
	return nil
}

// release returns n bytes. Releasing more than is held panics (a broken
// invariant, as semaphore.Weighted does).
func (b *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	if b.held.Add(-n) < 0 {
		panic("protocol: byte budget over-released")
	}
	b.sem.Release(n)
}

// inUse returns the bytes held right now.
func (b *byteBudget) inUse() int64 { return b.held.Load() }
