package stateengine

import (
	"math"

	"github.com/weir-dev/weir/state"
)

// sessionStore is the SessionStore over a timed store or its cache.
type sessionStore struct{ timedFace }

func (s *sessionStore) Put(key []byte, start, end int64, value []byte) error {
	if err := s.v.checkPut(key, start, end); err != nil {
		return err
	}
	return s.v.put(key, start, end, value, nil, false)
}

func (s *sessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

func (s *sessionStore) Get(key []byte, start, end int64) ([]byte, error) {
	return s.v.get(key, start, end)
}

// FindSessions iterates key's sessions ending at or after earliestEnd
// and starting at or before latestStart.
func (s *sessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if len(key) == 0 {
		return emptyIter{}, s.baseStore().check()
	}
	return s.v.fetch(key, earliestEnd, math.MaxInt64, latestStart, false)
}

func (s *sessionStore) Fetch(key []byte) (state.SessionIterator, error) {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (s *sessionStore) All() (state.SessionIterator, error) {
	return s.v.fetch(nil, math.MinInt64, math.MaxInt64, math.MaxInt64, false)
}

// cachedSessionStore is a session store wrapped by a Cache.
type cachedSessionStore struct {
	sessionStore
	c *cachedTimed
}

func (s *cachedSessionStore) dropCached() { s.c.dropCached() }

// PutTagged implements TaggedSessionStore.
func (s *cachedSessionStore) PutTagged(key []byte, start, end int64, value []byte, tag any) error {
	if err := s.c.checkPut(key, start, end); err != nil {
		return err
	}
	return s.c.put(key, start, end, value, tag, true)
}

// RemoveTagged implements TaggedSessionStore.
func (s *cachedSessionStore) RemoveTagged(key []byte, start, end int64, tag any) error {
	return s.PutTagged(key, start, end, nil, tag)
}

// OnWriteBack implements TaggedSessionStore.
func (s *cachedSessionStore) OnWriteBack(h SessionTagListener) { s.c.listener = h }
