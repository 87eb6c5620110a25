package statetest

import (
	"context"
	"fmt"
	"sync"

	"github.com/weir-dev/weir/state"
)

// Changelog is one in-memory changelog partition. Appended records are
// acknowledged (get their offsets) on Flush. It is safe for concurrent use.
type Changelog struct {
	topic     string
	partition int32

	mu sync.Mutex
	// recs are the acknowledged records, in offset order (offsets may have
	// gaps after Compact). Guarded by mu.
	recs []state.ChangelogRecord
	// next is the offset the next acknowledged record gets. Guarded by mu.
	next state.Offset
	// pending are appended, not yet flushed records. Guarded by mu.
	pending []state.ChangelogRecord
	// lastFlushed is the offset of the last record acknowledged through
	// Flush. Guarded by mu.
	lastFlushed state.Offset
	// failFlush, when set, makes Flush fail with it. Guarded by mu.
	failFlush error
	// onFlush is called (without mu) after a Flush acknowledged records.
	onFlush func()
	// BatchSize is how many records Read hands over per call (default 512).
	BatchSize int
}

// NewChangelog returns an empty changelog partition.
func NewChangelog(topic string, partition int32) *Changelog {
	return &Changelog{topic: topic, partition: partition, lastFlushed: state.NoOffset}
}

// Topic returns the topic name.
func (c *Changelog) Topic() string { return c.topic }

// Partition returns the partition number.
func (c *Changelog) Partition() int32 { return c.partition }

// Append queues a record; it is acknowledged at the next Flush.
func (c *Changelog) Append(key, value []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, state.ChangelogRecord{Key: key, Value: value})
	return nil
}

// Flush acknowledges the pending records and returns the offset of the last
// record appended through this changelog so far (state.NoOffset if none).
func (c *Changelog) Flush(ctx context.Context) (state.Offset, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failFlush != nil {
		return state.NoOffset, c.failFlush
	}
	for _, r := range c.pending {
		r.Offset = c.next
		c.next++
		c.recs = append(c.recs, r)
		c.lastFlushed = r.Offset
	}
	c.pending = c.pending[:0]
	last, hook := c.lastFlushed, c.onFlush
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	c.mu.Lock()
	return last, nil
}

// SetFlushHook sets a function Flush calls after acknowledging records and
// before returning: a test can stop the world in the middle of a store's
// flush (changelog written, store not yet committed).
func (c *Changelog) SetFlushHook(fn func()) {
	c.mu.Lock()
	c.onFlush = fn
	c.mu.Unlock()
}

// SetFailFlush makes every later Flush fail with err (nil: succeed again).
func (c *Changelog) SetFailFlush(err error) {
	c.mu.Lock()
	c.failFlush = err
	c.mu.Unlock()
}

// DropPending forgets the records appended since the last Flush, as a
// producer that died before sending them would.
func (c *Changelog) DropPending() {
	c.mu.Lock()
	c.pending = c.pending[:0]
	c.mu.Unlock()
}

// AppendRaw acknowledges a record at once (for tests that build a
// changelog directly). It returns the record's offset.
func (c *Changelog) AppendRaw(key, value []byte) state.Offset {
	c.mu.Lock()
	defer c.mu.Unlock()
	off := c.next
	c.recs = append(c.recs, state.ChangelogRecord{Offset: off, Key: key, Value: value})
	c.next++
	return off
}

// Truncate forgets every record and makes the end offset 0 again, as a
// deleted and recreated topic would be.
func (c *Changelog) Truncate() {
	c.mu.Lock()
	c.recs, c.next, c.lastFlushed = nil, 0, state.NoOffset
	c.mu.Unlock()
}

// Compact keeps the latest record of each key (and drops tombstones), as
// log compaction does; offsets do not change.
func (c *Changelog) Compact() {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := map[string]state.Offset{}
	for _, r := range c.recs {
		last[string(r.Key)] = r.Offset
	}
	kept := c.recs[:0]
	for _, r := range c.recs {
		if last[string(r.Key)] == r.Offset && r.Value != nil {
			kept = append(kept, r)
		}
	}
	c.recs = kept
}

// Records returns a copy of the acknowledged records.
func (c *Changelog) Records() []state.ChangelogRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]state.ChangelogRecord(nil), c.recs...)
}

// EndOffset returns the offset the next record will get.
func (c *Changelog) EndOffset(ctx context.Context) (state.Offset, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next, nil
}

// Read delivers the acknowledged records in [from, to) in batches.
func (c *Changelog) Read(ctx context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	c.mu.Lock()
	if to > c.next {
		c.mu.Unlock()
		return fmt.Errorf("statetest: read up to %d beyond end %d", to, c.next)
	}
	// Records are in offset order: find the first at or after from.
	lo, hi := 0, len(c.recs)
	for lo < hi {
		m := (lo + hi) / 2
		if c.recs[m].Offset < from {
			lo = m + 1
		} else {
			hi = m
		}
	}
	recs := c.recs[lo:]
	c.mu.Unlock()
	n := c.BatchSize
	if n <= 0 {
		n = 512
	}
	for len(recs) > 0 && recs[0].Offset < to {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(n, len(recs))
		for k > 0 && recs[k-1].Offset >= to {
			k--
		}
		if err := fn(recs[:k]); err != nil {
			return err
		}
		recs = recs[k:]
	}
	return nil
}

var (
	_ state.ChangelogWriter = (*Changelog)(nil)
	_ state.ChangelogReader = (*Changelog)(nil)
)
