package stateengine

import (
	"github.com/weir-dev/weir/state"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// windowStore is the WindowStore on a backend. Store keys are
// segment(start) escaped-key start; see package layout.
type windowStore struct{ *timedStore }

func newWindowStore(b *base, data backend) *windowStore {
	return &windowStore{newTimedStore(b, data)}
}

func (s *windowStore) Put(key []byte, start int64, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	if s.tb.isExpired(start, s.m.observed) {
		s.tb.expired++
		return nil
	}
	if err := s.apply(key, start, value); err != nil {
		return err
	}
	s.cbuf = layout.AppendWindowChangelogKey(s.cbuf[:0], key, start)
	if err := s.logChange(s.cbuf, value); err != nil {
		return err
	}
	return s.afterWrite()
}

// apply writes a change to the backend (no changelog) and advances stream
// time. Restore calls it directly.
func (s *windowStore) apply(key []byte, start int64, value []byte) error {
	if s.tb.isExpired(start, s.m.observed) {
		return nil
	}
	s.kbuf = layout.AppendWindowKey(s.kbuf[:0], s.tb.seg(start), key, start)
	return s.write(start, value)
}

func (s *windowStore) Get(key []byte, start int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.tb.isExpired(start, s.m.observed) || start > s.m.observed {
		// Expired, or never written: every write raises observed to its
		// window start, so no key starts after it (new windows of an
		// aggregation skip the backend this way).
		return nil, nil
	}
	s.kbuf = layout.AppendWindowKey(s.kbuf[:0], s.tb.seg(start), key, start)
	return s.data.get(s.kbuf)
}

// windowKeyCap bounds the length of a window key of key (plus the byte a
// span's upper bound adds).
func windowKeyCap(key []byte) int { return 2*layout.TimeLen + 2*len(key) + 3 }

// fetchSpans appends to dst the spans of key's windows with starts in
// [from, to], one per time segment, in iteration order (descending with
// reverse). Their keys share one allocation.
func fetchSpans(dst []span, buf []byte, tb *timeBox, key []byte, from, to int64, reverse bool) []span {
	first, last := tb.seg(from), tb.seg(to)
	n := int(last - first + 1)
	if need := 2 * n * windowKeyCap(key); cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = buf[:0]
	for i := range n {
		sg := first + int64(i)
		if reverse {
			sg = last - int64(i)
		}
		at := len(buf)
		buf = layout.AppendWindowKey(buf, sg, key, from)
		lo := buf[at:len(buf):len(buf)]
		at = len(buf)
		buf = append(layout.AppendWindowKey(buf, sg, key, to), 0)
		dst = append(dst, span{lo, buf[at:len(buf):len(buf)]})
	}
	return dst
}

// fetchAllSpans appends the one span of every window in the segments of
// [from, to].
func fetchAllSpans(dst []span, tb *timeBox, from, to int64) []span {
	return append(dst, segmentsSpan(tb, from, to))
}

func (s *windowStore) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	from, to, ok := s.tb.clamp(s.m.observed, timeFrom, timeTo)
	if !ok {
		return emptyIter{}, nil
	}
	it := s.newIter(from, to)
	return s.startIter(it, fetchSpans(it.spanBuf[:0], it.spanKeys[:0], &s.tb, key, from, to, reverse), reverse), nil
}

func (s *windowStore) FetchAll(timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	from, to, ok := s.tb.clamp(s.m.observed, timeFrom, timeTo)
	if !ok {
		return emptyIter{}, nil
	}
	it := s.newIter(from, to)
	return s.startIter(it, fetchAllSpans(it.spanBuf[:0], &s.tb, from, to), reverse), nil
}

func (s *windowStore) All(reverse bool) (state.WindowIterator, error) {
	return s.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

func (s *windowStore) newIter(from, to int64) *windowIter {
	it := &windowIter{}
	s.initIter(it, from, to)
	return it
}

func (s *windowStore) initIter(it *windowIter, from, to int64) {
	it.from, it.to, it.name = from, to, s.spec.Name
	it.key = it.keyBuf[:0]
}

// startIter points it at spans, which are in iteration order.
func (s *windowStore) startIter(it *windowIter, spans []span, reverse bool) *windowIter {
	it.spanIter = spanIter{be: s.data, spans: spans, reverse: reverse, acc: it}
	return it
}

type windowIter struct {
	spanIter
	from, to int64
	name     string
	key      []byte
	start    int64
	// spanBuf, spanKeys and keyBuf spare a fetch of short keys over up to
	// two segments some allocations.
	spanBuf  [2]span
	spanKeys [128]byte
	keyBuf   [32]byte
}

func (it *windowIter) accept(k []byte) (bool, error) {
	_, key, start, err := layout.ParseWindowKey(it.key[:0], k)
	if err != nil {
		return false, corruptKey(it.name, k, err)
	}
	it.key, it.start = key, start
	return start >= it.from && start <= it.to, nil
}

func (w *windowIter) Key() []byte        { return w.key }
func (w *windowIter) WindowStart() int64 { return w.start }
