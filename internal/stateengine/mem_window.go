package stateengine

import (
	"context"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
	"github.com/weir-dev/weir/state"
)

// memWindowStore is the in-memory WindowStore: a memTimedStore whose slots
// are the windows, (start, start).
type memWindowStore struct{ *memTimedStore }

var windowKind = &memTimedKind{
	what: "window",
	appendChangelogKey: func(dst, key []byte, start, _ int64) []byte {
		return layout.AppendWindowChangelogKey(dst, key, start)
	},
	parseChangelogKey: func(ck []byte) ([]byte, int64, int64, error) {
		k, start, err := layout.ParseWindowChangelogKey(ck)
		return k, start, start, err
	},
	tellExpired: true,
}

func newMemWindowStore(b *base) *memWindowStore {
	return &memWindowStore{newMemTimedStore(b, windowKind)}
}

// Put writes through: store, stream time, changelog.
func (s *memWindowStore) Put(key []byte, start int64, value []byte) error {
	if err := s.checkPut(key); err != nil {
		return err
	}
	return s.putThrough(key, start, start, value)
}

func (s *memWindowStore) Get(key []byte, start int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.tb.isExpired(start, s.m.observed) || start > s.m.observed {
		return nil, nil
	}
	return s.getValue(false, key, start, start), nil
}

func (s *memWindowStore) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.fetch(false, s.m.observed, key, timeFrom, timeTo, reverse), nil
}

func (s *memWindowStore) FetchAll(timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.fetchAll(false, s.m.observed, timeFrom, timeTo, reverse), nil
}

func (s *memWindowStore) All(reverse bool) (state.WindowIterator, error) {
	return s.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

// fetch lists key's windows in [from, to] of a view (cached: the current
// values, else the stored ones) as of observed.
func (s *memWindowStore) fetch(cached bool, observed int64, key []byte, from, to int64, reverse bool) state.WindowIterator {
	from, to, ok := s.tb.clamp(observed, from, to)
	if !ok {
		return emptyIter{}
	}
	return s.list(cached, key, from, to, math.MaxInt64, reverse).windowIter()
}

// fetchAll lists every window in [from, to] of a view, ordered by time
// segment, key and start as the Pebble store's keys are.
func (s *memWindowStore) fetchAll(cached bool, observed int64, from, to int64, reverse bool) state.WindowIterator {
	from, to, ok := s.tb.clamp(observed, from, to)
	if !ok {
		return emptyIter{}
	}
	return s.listAll(cached, from, to, reverse).windowIter()
}

// memWindowCached is a memWindowStore wrapped by a Cache: see
// memTimedStore.
type memWindowCached struct{ s *memWindowStore }

// wrapWindow adapts a window listener (nil stays nil).
func wrapWindow(l WindowTagListener) memTimedListener {
	if l == nil {
		return nil
	}
	return func(key []byte, start, _ int64, nv, ov []byte, tag any) error { return l(key, start, nv, ov, tag) }
}

func (c *memWindowCached) baseStore() *base { return c.s.base }

// OnWriteBack implements TaggedWindowStore.
func (c *memWindowCached) OnWriteBack(h WindowTagListener) { c.s.listener = wrapWindow(h) }
func (c *memWindowCached) applyChange(key, value []byte) error {
	return c.s.applyChange(key, value)
}
func (c *memWindowCached) Name() string { return c.s.Name() }
func (c *memWindowCached) dropCached()  { c.s.forgetDirty() }

func (c *memWindowCached) ObservedStreamTime() int64 { return c.s.cachedObserved() }
func (c *memWindowCached) ExpiredPuts() int64        { return c.s.cachedExpiredPuts() }

func (c *memWindowCached) Put(key []byte, start int64, value []byte) error {
	return c.put(key, start, value, nil, false)
}

// PutTagged implements TaggedWindowStore.
func (c *memWindowCached) PutTagged(key []byte, start int64, value []byte, tag any) error {
	return c.put(key, start, value, tag, true)
}

func (c *memWindowCached) put(key []byte, start int64, value []byte, tag any, setTag bool) error {
	if err := c.s.checkPut(key); err != nil {
		return err
	}
	return c.s.cachedPut(key, start, start, value, tag, setTag)
}

// GetTagged implements TaggedWindowStore.
func (c *memWindowCached) GetTagged(key []byte, start int64) ([]byte, any, error) {
	s := c.s
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	if s.tb.isExpired(start, s.cachedObserved()) {
		return nil, nil, nil
	}
	if w := s.slot(key, start, start); w != nil {
		return w.cur, w.tag, nil
	}
	return nil, nil, nil
}

func (c *memWindowCached) Get(key []byte, start int64) ([]byte, error) {
	s := c.s
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.tb.isExpired(start, s.cachedObserved()) {
		return nil, nil
	}
	return s.getValue(true, key, start, start), nil
}

func (c *memWindowCached) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.fetch(true, c.s.cachedObserved(), key, timeFrom, timeTo, reverse), nil
}

func (c *memWindowCached) FetchAll(timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.fetchAll(true, c.s.cachedObserved(), timeFrom, timeTo, reverse), nil
}

func (c *memWindowCached) All(reverse bool) (state.WindowIterator, error) {
	return c.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

// Flush writes the dirty windows back in the order of their last write,
// then commits. On error the windows not written back stay dirty.
func (c *memWindowCached) Flush(ctx context.Context) error { return c.s.flush(ctx) }

func (c *memWindowCached) Close() error {
	c.s.forgetDirty()
	return c.s.Close()
}
