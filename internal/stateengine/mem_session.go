package stateengine

import (
	"context"
	"fmt"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
	"github.com/weir-dev/weir/state"
)

// memSessionStore is the in-memory SessionStore: a memTimedStore whose
// slots are the sessions. It differs from the window store where the cache
// in front of a session store differs: a session expired while dirty is
// dropped at its write-back without telling the listener.
type memSessionStore struct{ *memTimedStore }

var sessionKind = &memTimedKind{
	what:               "session",
	appendChangelogKey: layout.AppendSessionChangelogKey,
	parseChangelogKey:  layout.ParseSessionChangelogKey,
}

func newMemSessionStore(b *base) *memSessionStore {
	return &memSessionStore{newMemTimedStore(b, sessionKind)}
}

// checkSessionPut reports what is wrong with a session write.
func (s *memSessionStore) checkSessionPut(key []byte, start, end int64) error {
	if err := s.checkPut(key); err != nil {
		return err
	}
	if start > end {
		return fmt.Errorf("state: store %q: session start %d after end %d", s.spec.Name, start, end)
	}
	return nil
}

func (s *memSessionStore) Put(key []byte, start, end int64, value []byte) error {
	if err := s.checkSessionPut(key, start, end); err != nil {
		return err
	}
	return s.putThrough(key, start, end, value)
}

func (s *memSessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

func (s *memSessionStore) Get(key []byte, start, end int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.tb.isExpired(end, s.m.observed) || start > end {
		return nil, nil
	}
	return s.getValue(false, key, start, end), nil
}

func (s *memSessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.findIn(false, s.m.observed, key, earliestEnd, latestStart), nil
}

func (s *memSessionStore) Fetch(key []byte) (state.SessionIterator, error) {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (s *memSessionStore) All() (state.SessionIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.all(false, s.m.observed), nil
}

// findIn lists key's sessions of a view ending at or after earliestEnd
// (and not expired as of observed) and starting at or before latestStart.
func (s *memSessionStore) findIn(cached bool, observed int64, key []byte, earliestEnd, latestStart int64) state.SessionIterator {
	from, _, ok := s.tb.clamp(observed, earliestEnd, math.MaxInt64)
	if !ok {
		return emptyIter{}
	}
	return s.list(cached, key, from, math.MaxInt64, latestStart, false).sessionIter()
}

// all lists every unexpired session of a view, ordered by time segment,
// key, end and start as the Pebble store's keys are.
func (s *memSessionStore) all(cached bool, observed int64) state.SessionIterator {
	from, _, ok := s.tb.clamp(observed, math.MinInt64, math.MaxInt64)
	if !ok {
		return emptyIter{}
	}
	return s.listAll(cached, from, math.MaxInt64, false).sessionIter()
}

// memSessionCached is a memSessionStore wrapped by a Cache: see
// memTimedStore.
type memSessionCached struct{ s *memSessionStore }

func (c *memSessionCached) baseStore() *base { return c.s.base }

// OnWriteBack implements TaggedSessionStore.
func (c *memSessionCached) OnWriteBack(h SessionTagListener) { c.s.listener = h }
func (c *memSessionCached) applyChange(key, value []byte) error {
	return c.s.applyChange(key, value)
}
func (c *memSessionCached) Name() string { return c.s.Name() }
func (c *memSessionCached) dropCached()  { c.s.forgetDirty() }

func (c *memSessionCached) ObservedStreamTime() int64 { return c.s.cachedObserved() }
func (c *memSessionCached) ExpiredPuts() int64        { return c.s.cachedExpiredPuts() }

func (c *memSessionCached) Put(key []byte, start, end int64, value []byte) error {
	if err := c.s.checkSessionPut(key, start, end); err != nil {
		return err
	}
	return c.s.cachedPut(key, start, end, value, nil, false)
}

// PutTagged implements TaggedSessionStore.
func (c *memSessionCached) PutTagged(key []byte, start, end int64, value []byte, tag any) error {
	if err := c.s.checkSessionPut(key, start, end); err != nil {
		return err
	}
	return c.s.cachedPut(key, start, end, value, tag, true)
}

func (c *memSessionCached) Remove(key []byte, start, end int64) error {
	return c.Put(key, start, end, nil)
}

// RemoveTagged implements TaggedSessionStore.
func (c *memSessionCached) RemoveTagged(key []byte, start, end int64, tag any) error {
	return c.PutTagged(key, start, end, nil, tag)
}

func (c *memSessionCached) Get(key []byte, start, end int64) ([]byte, error) {
	s := c.s
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.tb.isExpired(end, s.cachedObserved()) || start > end {
		return nil, nil
	}
	return s.getValue(true, key, start, end), nil
}

func (c *memSessionCached) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.findIn(true, c.s.cachedObserved(), key, earliestEnd, latestStart), nil
}

func (c *memSessionCached) Fetch(key []byte) (state.SessionIterator, error) {
	return c.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (c *memSessionCached) All() (state.SessionIterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.all(true, c.s.cachedObserved()), nil
}

// Flush writes the dirty sessions back in the order of their last write,
// then commits. On error the sessions not written back stay dirty.
func (c *memSessionCached) Flush(ctx context.Context) error { return c.s.flush(ctx) }

func (c *memSessionCached) Close() error {
	c.s.forgetDirty()
	return c.s.Close()
}
