package state

import (
	"math"

	"github.com/weir-dev/weir/state/internal/layout"
)

// minSegmentInterval is the smallest time segment: one minute.
const minSegmentInterval = 60_000

// segmentInterval returns the time segment size of a store with the given
// retention (ms): half the retention, at least a minute. About three
// segments are live at once, and expiry drops whole segments.
func segmentInterval(retentionMs int64) int64 {
	return max(retentionMs/2, minSegmentInterval)
}

// timeBox is the retention bookkeeping window and session stores share.
type timeBox struct {
	interval  int64
	retention int64
	// dropped: every segment below it has been range-deleted.
	dropped int64
	expired int64
}

func newTimeBox(retention int64, observed int64) timeBox {
	tb := timeBox{interval: segmentInterval(retention), retention: retention}
	tb.dropped = layout.Segment(tb.cutoff(observed), tb.interval)
	return tb
}

// cutoff returns the oldest live time: times below it are expired.
func (t *timeBox) cutoff(observed int64) int64 {
	if observed < math.MinInt64+t.retention {
		return math.MinInt64
	}
	return observed - t.retention
}

func (t *timeBox) seg(ts int64) int64 { return layout.Segment(ts, t.interval) }

// dropExpired range-deletes the segments that became wholly expired.
func (t *timeBox) dropExpired(be backend, observed int64) error {
	cs := t.seg(t.cutoff(observed))
	if cs <= t.dropped {
		return nil
	}
	t.dropped = cs
	return be.delRange(nil, layout.AppendTime(nil, cs))
}

// windowStore is the WindowStore on a backend. Store keys are
// segment(start) escaped-key start; see package layout.
type windowStore struct {
	*base
	tb   timeBox
	kbuf []byte
	cbuf []byte
}

func newWindowStore(b *base) *windowStore {
	s := &windowStore{base: b, tb: newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed)}
	b.onReload = func() { s.tb = newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed) }
	return s
}

func (s *windowStore) ObservedStreamTime() int64 { return s.m.observed }
func (s *windowStore) ExpiredPuts() int64        { return s.tb.expired }

func (s *windowStore) Put(key []byte, start int64, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	if start < s.tb.cutoff(s.m.observed) {
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
	if start < s.tb.cutoff(s.m.observed) {
		return nil
	}
	s.kbuf = layout.AppendWindowKey(s.kbuf[:0], s.tb.seg(start), key, start)
	var err error
	if value == nil {
		err = s.be.del(s.kbuf)
	} else {
		err = s.be.set(s.kbuf, value)
	}
	if err != nil {
		return err
	}
	if start > s.m.observed {
		s.m.observed = start
		return s.tb.dropExpired(s.be, s.m.observed)
	}
	return nil
}

func (s *windowStore) Get(key []byte, start int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if start < s.tb.cutoff(s.m.observed) || start > s.m.observed {
		// Expired, or never written: every write raises observed to its
		// window start, so no key starts after it (new windows of an
		// aggregation skip the backend this way).
		return nil, nil
	}
	s.kbuf = layout.AppendWindowKey(s.kbuf[:0], s.tb.seg(start), key, start)
	return s.be.get(s.kbuf)
}

// clamp narrows [from, to] to the live times; ok is false if empty.
func (s *windowStore) clamp(from, to int64) (int64, int64, bool) {
	if s.m.observed == math.MinInt64 {
		return 0, 0, false
	}
	from = max(from, s.tb.cutoff(s.m.observed))
	to = min(to, s.m.observed)
	return from, to, from <= to
}

func (s *windowStore) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	from, to, ok := s.clamp(timeFrom, timeTo)
	if !ok {
		return emptyIter{}, nil
	}
	var spans []span
	for sg := s.tb.seg(from); sg <= s.tb.seg(to); sg++ {
		lo := layout.AppendWindowKey(nil, sg, key, from)
		hi := append(layout.AppendWindowKey(nil, sg, key, to), 0)
		spans = append(spans, span{lo, hi})
	}
	return s.newIter(spans, reverse, from, to), nil
}

func (s *windowStore) FetchAll(timeFrom, timeTo int64, reverse bool) (WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	from, to, ok := s.clamp(timeFrom, timeTo)
	if !ok {
		return emptyIter{}, nil
	}
	spans := []span{{layout.AppendTime(nil, s.tb.seg(from)), layout.AppendTime(nil, s.tb.seg(to)+1)}}
	return s.newIter(spans, reverse, from, to), nil
}

func (s *windowStore) All(reverse bool) (WindowIterator, error) {
	return s.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

func (s *windowStore) newIter(spans []span, reverse bool, from, to int64) *windowIter {
	if reverse {
		for i, j := 0, len(spans)-1; i < j; i, j = i+1, j-1 {
			spans[i], spans[j] = spans[j], spans[i]
		}
	}
	it := &windowIter{from: from, to: to}
	it.spanIter = spanIter{be: s.be, spans: spans, reverse: reverse, accept: func(k []byte) (bool, error) {
		_, key, start, err := layout.ParseWindowKey(it.key[:0], k)
		if err != nil {
			return false, corruptKey(s.spec.Name, k, err)
		}
		it.key, it.start = key, start
		return start >= it.from && start <= it.to, nil
	}}
	return it
}

type windowIter struct {
	spanIter
	from, to int64
	key      []byte
	start    int64
}

func (w *windowIter) Key() []byte        { return w.key }
func (w *windowIter) WindowStart() int64 { return w.start }
