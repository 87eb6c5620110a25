package stateengine

import (
	"context"
	"math"

	"github.com/weir-dev/weir/state"
)

// timedView is a timed store as the window and session stores use it:
// the store itself (timedStore) or the cache over it (cachedTimed).
type timedView interface {
	storeOf
	Name() string
	applyChange(key, value []byte) error
	checkPut(key []byte, start, end int64) error
	put(key []byte, start, end int64, value []byte, tag any, setTag bool) error
	get(key []byte, start, end int64) ([]byte, error)
	fetch(key []byte, endFrom, endTo, latestStart int64, reverse bool) (timedIter, error)
	observedTime() int64
	expiredPuts() int64
	Flush(ctx context.Context) error
	Close() error
}

var (
	_ timedView = (*timedStore)(nil)
	_ timedView = (*cachedTimed)(nil)
)

// timedFace is what the window and session stores share: a view, and
// the methods that pass through to it.
type timedFace struct{ v timedView }

// timedStore returns the store below the view.
func (f *timedFace) timedStore() *timedStore {
	if c, ok := f.v.(*cachedTimed); ok {
		return c.under
	}
	return f.v.(*timedStore)
}

// raw reports whether the view is the store itself, not a cache.
func (f *timedFace) raw() bool { _, ok := f.v.(*timedStore); return ok }

func (f *timedFace) baseStore() *base                    { return f.v.baseStore() }
func (f *timedFace) applyChange(key, value []byte) error { return f.v.applyChange(key, value) }
func (f *timedFace) Name() string                        { return f.v.Name() }
func (f *timedFace) Flush(ctx context.Context) error     { return f.v.Flush(ctx) }
func (f *timedFace) Close() error                        { return f.v.Close() }
func (f *timedFace) ObservedStreamTime() int64           { return f.v.observedTime() }
func (f *timedFace) ExpiredPuts() int64                  { return f.v.expiredPuts() }

// windowStore is the WindowStore over a timed store or its cache: a
// window is the entry (start, start).
type windowStore struct{ timedFace }

func (s *windowStore) Put(key []byte, start int64, value []byte) error {
	if err := s.v.checkPut(key, start, start); err != nil {
		return err
	}
	return s.v.put(key, start, start, value, nil, false)
}

func (s *windowStore) Get(key []byte, start int64) ([]byte, error) {
	return s.v.get(key, start, start)
}

func (s *windowStore) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if len(key) == 0 {
		return emptyIter{}, s.baseStore().check()
	}
	return s.v.fetch(key, timeFrom, timeTo, math.MaxInt64, reverse)
}

func (s *windowStore) FetchAll(timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	return s.v.fetch(nil, timeFrom, timeTo, math.MaxInt64, reverse)
}

func (s *windowStore) All(reverse bool) (state.WindowIterator, error) {
	return s.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

// cachedWindowStore is a window store wrapped by a Cache.
type cachedWindowStore struct {
	windowStore
	c *cachedTimed
}

func (s *cachedWindowStore) dropCached() { s.c.dropCached() }

// ObservedStreamTime is the face's, without the view's dispatch: an
// aggregation asks once per record.
func (s *cachedWindowStore) ObservedStreamTime() int64 { return s.c.observedTime() }

// GetTagged implements TaggedWindowStore.
func (s *cachedWindowStore) GetTagged(key []byte, start int64) ([]byte, any, error) {
	return s.c.getTagged(key, start, start)
}

// PutTagged implements TaggedWindowStore.
func (s *cachedWindowStore) PutTagged(key []byte, start int64, value []byte, tag any) error {
	if err := s.c.checkPut(key, start, start); err != nil {
		return err
	}
	return s.c.put(key, start, start, value, tag, true)
}

// OnWriteBack implements TaggedWindowStore.
func (s *cachedWindowStore) OnWriteBack(h WindowTagListener) {
	if h == nil {
		s.c.listener = nil
		return
	}
	s.c.listener = func(key []byte, start, _ int64, nv, ov []byte, tag any) error { return h(key, start, nv, ov, tag) }
}
