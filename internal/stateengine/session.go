package stateengine

import (
	"fmt"
	"github.com/weir-dev/weir/state"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// sessionStore is the SessionStore on a backend. Store keys are
// segment(end) escaped-key end start; see package layout.
type sessionStore struct{ *timedStore }

func newSessionStore(b *base, data backend) *sessionStore {
	return &sessionStore{newTimedStore(b, data)}
}

func (s *sessionStore) Put(key []byte, start, end int64, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	if start > end {
		return fmt.Errorf("state: store %q: session start %d after end %d", s.spec.Name, start, end)
	}
	if s.tb.isExpired(end, s.m.observed) {
		s.tb.expired++
		return nil
	}
	if err := s.apply(key, start, end, value); err != nil {
		return err
	}
	s.cbuf = layout.AppendSessionChangelogKey(s.cbuf[:0], key, start, end)
	if err := s.logChange(s.cbuf, value); err != nil {
		return err
	}
	return s.afterWrite()
}

func (s *sessionStore) apply(key []byte, start, end int64, value []byte) error {
	if s.tb.isExpired(end, s.m.observed) {
		return nil
	}
	s.kbuf = layout.AppendSessionKey(s.kbuf[:0], s.tb.seg(end), key, start, end)
	return s.write(end, value)
}

func (s *sessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

func (s *sessionStore) Get(key []byte, start, end int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.tb.isExpired(end, s.m.observed) || start > end {
		return nil, nil
	}
	s.kbuf = layout.AppendSessionKey(s.kbuf[:0], s.tb.seg(end), key, start, end)
	return s.data.get(s.kbuf)
}

func (s *sessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	from, to, ok := s.tb.clamp(s.m.observed, earliestEnd, math.MaxInt64)
	if !ok {
		return emptyIter{}, nil
	}
	return s.newIter(sessionSpans(&s.tb, key, from, to), from, latestStart), nil
}

func (s *sessionStore) Fetch(key []byte) (state.SessionIterator, error) {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (s *sessionStore) All() (state.SessionIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	from, to, ok := s.tb.clamp(s.m.observed, math.MinInt64, math.MaxInt64)
	if !ok {
		return emptyIter{}, nil
	}
	return s.newIter([]span{segmentsSpan(&s.tb, from, to)}, from, math.MaxInt64), nil
}

func (s *sessionStore) newIter(spans []span, earliestEnd, latestStart int64) *sessionIter {
	it := &sessionIter{name: s.spec.Name, earliestEnd: earliestEnd, latestStart: latestStart}
	it.spanIter = spanIter{be: s.data, spans: spans, acc: it}
	return it
}

type sessionIter struct {
	spanIter
	name                     string
	earliestEnd, latestStart int64
	key                      []byte
	start, end               int64
}

func (it *sessionIter) accept(k []byte) (bool, error) {
	_, key, start, end, err := layout.ParseSessionKey(it.key[:0], k)
	if err != nil {
		return false, corruptKey(it.name, k, err)
	}
	it.key, it.start, it.end = key, start, end
	return end >= it.earliestEnd && start <= it.latestStart, nil
}

func (w *sessionIter) Key() []byte  { return w.key }
func (w *sessionIter) Start() int64 { return w.start }
func (w *sessionIter) End() int64   { return w.end }
