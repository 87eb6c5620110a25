package stateengine

import (
	"fmt"
	"github.com/weir-dev/weir/state"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// sessionStore is the SessionStore on a backend. Store keys are
// segment(end) escaped-key end start; see package layout.
type sessionStore struct {
	*base
	tb   timeBox
	kbuf []byte
	cbuf []byte
}

func newSessionStore(b *base) *sessionStore {
	s := &sessionStore{base: b, tb: newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed)}
	b.onReload = func() { s.tb = newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed) }
	return s
}

func (s *sessionStore) ObservedStreamTime() int64 { return s.m.observed }
func (s *sessionStore) ExpiredPuts() int64        { return s.tb.expired }

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
	if end < s.tb.cutoff(s.m.observed) {
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
	if end < s.tb.cutoff(s.m.observed) {
		return nil
	}
	s.kbuf = layout.AppendSessionKey(s.kbuf[:0], s.tb.seg(end), key, start, end)
	var err error
	if value == nil {
		err = s.be.del(s.kbuf)
	} else {
		err = s.be.set(s.kbuf, value)
	}
	if err != nil {
		return err
	}
	if end > s.m.observed {
		s.m.observed = end
		return s.tb.dropExpired(s.be, s.m.observed)
	}
	return nil
}

func (s *sessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

func (s *sessionStore) Get(key []byte, start, end int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if end < s.tb.cutoff(s.m.observed) || start > end {
		return nil, nil
	}
	s.kbuf = layout.AppendSessionKey(s.kbuf[:0], s.tb.seg(end), key, start, end)
	return s.be.get(s.kbuf)
}

func (s *sessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.m.observed == math.MinInt64 {
		return emptyIter{}, nil
	}
	from := max(earliestEnd, s.tb.cutoff(s.m.observed))
	if from > s.m.observed {
		return emptyIter{}, nil
	}
	var spans []span
	for sg := s.tb.seg(from); sg <= s.tb.seg(s.m.observed); sg++ {
		pre := layout.AppendEscaped(layout.AppendTime(nil, sg), key)
		lo := layout.AppendTime(append([]byte(nil), pre...), from)
		spans = append(spans, span{lo, layout.EscapedEnd(pre)})
	}
	return s.newIter(spans, from, latestStart), nil
}

func (s *sessionStore) Fetch(key []byte) (state.SessionIterator, error) {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (s *sessionStore) All() (state.SessionIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.m.observed == math.MinInt64 {
		return emptyIter{}, nil
	}
	from := s.tb.cutoff(s.m.observed)
	spans := []span{{layout.AppendTime(nil, s.tb.seg(from)), layout.AppendTime(nil, s.tb.seg(s.m.observed)+1)}}
	return s.newIter(spans, from, math.MaxInt64), nil
}

func (s *sessionStore) newIter(spans []span, earliestEnd, latestStart int64) *sessionIter {
	it := &sessionIter{name: s.spec.Name, earliestEnd: earliestEnd, latestStart: latestStart}
	it.spanIter = spanIter{be: s.be, spans: spans, acc: it}
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
