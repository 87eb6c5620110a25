package protocol

import (
	"context"
	"sync"
)

// byteBudget bounds the bytes of request frames held by all connections at
// once, so that many connections sending large frames together cannot make
// the broker's memory grow without bound: a reader acquires a frame's size
// before allocating it and releases it once the request has been handled.
type byteBudget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	avail int64 // guarded by mu; Invariant: 0 <= avail <= total
	total int64
}

func newByteBudget(total int64) *byteBudget {
	b := &byteBudget{avail: total, total: total}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire takes n bytes (n <= total), waiting while they are not available.
// It returns false if ctx ends first.
func (b *byteBudget) acquire(ctx context.Context, n int64) bool {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.avail < n {
		if ctx.Err() != nil {
			return false
		}
		b.cond.Wait()
	}
	b.avail -= n
	return true
}

// release returns n bytes.
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.avail += n
	if b.avail > b.total {
		panic("protocol: byte budget over-released")
	}
	b.mu.Unlock()
	b.cond.Broadcast()
}
