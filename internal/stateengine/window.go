package stateengine

import (
	"github.com/weir-dev/weir/state"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
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

// isExpired reports whether time ts is expired at stream time observed.
func (t *timeBox) isExpired(ts, observed int64) bool { return ts < t.cutoff(observed) }

// expire records that stream time reached observed. If segments became
// wholly expired since the last call, it returns the first live segment
// and true: the store drops every segment below it (the Pebble stores with
// one range deletion, the in-memory stores by their segment listings).
func (t *timeBox) expire(observed int64) (int64, bool) {
	cs := t.seg(t.cutoff(observed))
	if cs <= t.dropped {
		return 0, false
	}
	t.dropped = cs
	return cs, true
}

// dropExpired range-deletes from be the segments that became wholly
// expired.
func (t *timeBox) dropExpired(be backend, observed int64) error {
	cs, ok := t.expire(observed)
	if !ok {
		return nil
	}
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
	buf := make([]byte, 0, 2*layout.TimeLen)
	buf = layout.AppendTime(buf, tb.seg(from))
	buf = layout.AppendTime(buf, tb.seg(to)+1)
	return append(dst, span{buf[:layout.TimeLen:layout.TimeLen], buf[layout.TimeLen:]})
}

func (s *windowStore) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	from, to, ok := s.clamp(timeFrom, timeTo)
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
	from, to, ok := s.clamp(timeFrom, timeTo)
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
	it.spanIter = spanIter{be: s.be, spans: spans, reverse: reverse, acc: it}
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
