package client

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Inflight counts records handed to the producer and not yet acknowledged,
// and remembers the first send error. A task's commit waits on it before it
// commits input offsets: an offset is committed only after every output and
// changelog record produced before it is acknowledged (at-least-once).
//
// Mark splits the records in two: those added before the last Mark, which a
// pipelined commit waits for (MarkedDone, WaitMarked) while processing goes
// on, and those after. Each record is counted in the Batch Add returned, and
// acknowledged through it: acknowledgements arrive in no particular order
// across partitions, so a record must say which side of the mark it is on.
type Inflight struct {
	// onAck, if not nil, runs first in every Batch.Ack (the App releases
	// the produce gate and hands the record back).
	onAck func(*kgo.Record, error)

	mu sync.Mutex
	// n is the number of unacknowledged records. Guarded by mu.
	n int
	// zero is closed when n drops to 0; replaced when n leaves 0. Guarded
	// by mu. Invariant: zero is open iff n > 0.
	zero chan struct{}
	// marked is the number of unacknowledged records added before the
	// last Mark, and markedZero is closed when it is 0. Guarded by mu.
	// Invariant: markedZero is open iff marked > 0; marked <= n.
	marked     int
	markedZero chan struct{}
	// cur is the batch Add counts records in. Guarded by mu.
	cur *Batch
	// err is the first send error. Guarded by mu.
	err error
}

// Batch is the records added to an Inflight between two calls of Mark.
type Batch struct {
	f *Inflight
	// n is the batch's unacknowledged records; marked is set once a Mark
	// has closed the batch. Guarded by f.mu.
	n      int
	marked bool
	// Ack is the produce promise of the batch's records: it runs the
	// Inflight's onAck, then Done. Made once per batch, not per record.
	Ack func(*kgo.Record, error)
}

// NewInflight returns an empty tracker.
func NewInflight() *Inflight { return NewInflightAck(nil) }

// NewInflightAck returns an empty tracker whose batches' Ack run onAck
// (if not nil) before they count the acknowledgement.
func NewInflightAck(onAck func(*kgo.Record, error)) *Inflight {
	z := make(chan struct{})
	close(z)
	f := &Inflight{onAck: onAck, zero: z, markedZero: z}
	f.cur = f.newBatch()
	return f
}

func (f *Inflight) newBatch() *Batch {
	b := &Batch{f: f}
	b.Ack = func(r *kgo.Record, err error) {
		if f.onAck != nil {
			f.onAck(r, err)
		}
		b.Done(err)
	}
	return b
}

// Add counts one record handed to the producer and returns the batch it
// counts in: acknowledge the record with the batch's Done (or Ack).
func (f *Inflight) Add() *Batch {
	f.mu.Lock()
	if f.n == 0 {
		f.zero = make(chan struct{})
	}
	f.n++
	b := f.cur
	b.n++
	f.mu.Unlock()
	return b
}

// Done counts one acknowledgement (err nil) or failure of a record of b.
func (b *Batch) Done(err error) {
	f := b.f
	f.mu.Lock()
	if err != nil && f.err == nil {
		f.err = err
	}
	f.n--
	if f.n == 0 {
		close(f.zero)
	}
	b.n--
	if b.marked {
		f.marked--
		if f.marked == 0 {
			close(f.markedZero)
		}
	}
	f.mu.Unlock()
}

// Mark closes the current batch: the records added so far are the ones
// MarkedDone and WaitMarked wait for, until the next Mark.
func (f *Inflight) Mark() {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.cur
	if b.n == 0 {
		return // nothing to wait for: the batch serves on
	}
	b.marked = true
	if f.marked == 0 {
		f.markedZero = make(chan struct{})
	}
	f.marked += b.n
	f.cur = f.newBatch()
}

// MarkedDone reports whether every record added before the last Mark is
// acknowledged or failed (Err tells).
func (f *Inflight) MarkedDone() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.marked == 0
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
	return f.wait(ctx, z)
}

// WaitMarked blocks until every record added before the last Mark is
// acknowledged, and returns the first send error, or ctx's error.
func (f *Inflight) WaitMarked(ctx context.Context) error {
	f.mu.Lock()
	z := f.markedZero
	f.mu.Unlock()
	return f.wait(ctx, z)
}

func (f *Inflight) wait(ctx context.Context, z chan struct{}) error {
	select {
	case <-z:
		return f.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
