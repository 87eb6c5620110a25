package client

import (
	"context"
	"sync"
)

// Inflight counts records handed to the producer and not yet acknowledged,
// and remembers the first send error. A task's commit waits on it before it
// commits input offsets: an offset is committed only after every output and
// changelog record produced before it is acknowledged (at-least-once).
type Inflight struct {
	mu sync.Mutex
	// n is the number of unacknowledged records. Guarded by mu.
	n int
	// zero is closed when n drops to 0; replaced when n leaves 0. Guarded
	// by mu. Invariant: zero is open iff n > 0.
	zero chan struct{}
	// err is the first send error. Guarded by mu.
	err error
}

// NewInflight returns an empty tracker.
func NewInflight() *Inflight {
	z := make(chan struct{})
	close(z)
	return &Inflight{zero: z}
}

// Add counts one record handed to the producer.
func (f *Inflight) Add() {
	f.mu.Lock()
	if f.n == 0 {
		f.zero = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
}

// Done counts one acknowledgement (err nil) or failure.
func (f *Inflight) Done(err error) {
	f.mu.Lock()
	if err != nil && f.err == nil {
		f.err = err
	}
	f.n--
	if f.n == 0 {
		close(f.zero)
	}
	f.mu.Unlock()
}

// Err returns the first send error, if any.
func (f *Inflight) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Wait blocks until every record added so far is acknowledged, and returns
// the first send error, or ctx's error.
func (f *Inflight) Wait(ctx context.Context) error {
	f.mu.Lock()
	z := f.zero
	f.mu.Unlock()
	select {
	case <-z:
		return f.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
