package stateengine

import (
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// pebbleTimed is the timed backend on a Pebble backend. Keys are
// segment(end) escaped-key and the entry's times (a window's start; a
// session's end and start): see package layout. A key's entries in a
// segment are contiguous and in (end, start) order, so a fetch of one key
// reads one span per segment.
type pebbleTimed struct {
	data backend
	kind *timedKind
	// tb is the store's time box.
	tb   *timeBox
	name string
	kbuf []byte
}

func (p *pebbleTimed) key(key []byte, start, end int64) []byte {
	p.kbuf = p.kind.appendKey(p.kbuf[:0], p.tb.seg(end), key, start, end)
	return p.kbuf
}

func (p *pebbleTimed) get(key []byte, start, end int64) ([]byte, error) {
	return p.data.get(p.key(key, start, end))
}

func (p *pebbleTimed) set(key []byte, start, end int64, value []byte) error {
	if value == nil {
		return p.data.del(p.key(key, start, end))
	}
	return p.data.set(p.key(key, start, end), value)
}

func (p *pebbleTimed) dropBelow(seg int64) error {
	return p.data.delRange(nil, layout.AppendTime(nil, seg))
}

func (p *pebbleTimed) scan(key []byte, endFrom, endTo, latestStart int64, reverse bool) (timedIter, error) {
	it := &pebbleTimedIter{}
	var spans []span
	if key == nil {
		spans = append(it.spanBuf[:0], segmentsSpan(p.tb, endFrom, endTo))
	} else {
		spans = keySpans(it.spanBuf[:0], it.spanKeys[:0], p.kind, p.tb, key, endFrom, endTo, reverse)
	}
	p.scanInto(it, spans, endFrom, endTo, latestStart, reverse)
	return it, nil
}

// scanInto points it at spans (in iteration order), yielding the entries
// in them with ends in [endFrom, endTo] and starts at or before
// latestStart.
func (p *pebbleTimed) scanInto(it *pebbleTimedIter, spans []span, endFrom, endTo, latestStart int64, reverse bool) {
	it.kind, it.name = p.kind, p.name
	it.endFrom, it.endTo, it.latestStart = endFrom, endTo, latestStart
	it.key = it.keyBuf[:0]
	it.spanIter = spanIter{be: p.data, spans: spans, reverse: reverse, acc: it}
}

// keySpanCap bounds the length of a span bound of key.
func keySpanCap(key []byte) int { return 3*layout.TimeLen + 2*len(key) + 3 }

// keySpans appends to dst the spans of key's entries with ends in
// [endFrom, endTo], one per time segment, in iteration order (descending
// with reverse). Their bounds share one buffer (buf if large enough).
func keySpans(dst []span, buf []byte, kind *timedKind, tb *timeBox, key []byte, endFrom, endTo int64, reverse bool) []span {
	first, last := tb.seg(endFrom), tb.seg(endTo)
	n := int(last - first + 1)
	if need := 2 * n * keySpanCap(key); cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = buf[:0]
	for i := range n {
		sg := first + int64(i)
		if reverse {
			sg = last - int64(i)
		}
		// From the first entry ending at endFrom to past the last ending
		// at endTo (the start sorts after the end, if the layout has it).
		at := len(buf)
		buf = kind.appendKey(buf, sg, key, math.MinInt64, endFrom)
		lo := buf[at:len(buf):len(buf)]
		at = len(buf)
		buf = append(kind.appendKey(buf, sg, key, math.MaxInt64, endTo), 0)
		dst = append(dst, span{lo, buf[at:len(buf):len(buf)]})
	}
	return dst
}

// segmentsSpan returns the one span of every entry in the segments of
// [from, to].
func segmentsSpan(tb *timeBox, from, to int64) span {
	buf := make([]byte, 0, 2*layout.TimeLen)
	buf = layout.AppendTime(buf, tb.seg(from))
	buf = layout.AppendTime(buf, tb.seg(to)+1)
	return span{buf[:layout.TimeLen:layout.TimeLen], buf[layout.TimeLen:]}
}

// pebbleTimedIter is the iterator of a pebbleTimed scan.
type pebbleTimedIter struct {
	spanIter
	kind                        *timedKind
	name                        string
	endFrom, endTo, latestStart int64
	key                         []byte
	start, end                  int64
	// spanBuf, spanKeys and keyBuf spare a fetch of short keys over up to
	// two segments some allocations.
	spanBuf  [2]span
	spanKeys [160]byte
	keyBuf   [32]byte
}

func (it *pebbleTimedIter) accept(k []byte) (bool, error) {
	key, start, end, err := it.kind.parseKey(it.key[:0], k)
	if err != nil {
		return false, corruptKey(it.name, k, err)
	}
	it.key, it.start, it.end = key, start, end
	return end >= it.endFrom && end <= it.endTo && start <= it.latestStart, nil
}

func (it *pebbleTimedIter) Key() []byte        { return it.key }
func (it *pebbleTimedIter) WindowStart() int64 { return it.start }
func (it *pebbleTimedIter) Start() int64       { return it.start }
func (it *pebbleTimedIter) End() int64         { return it.end }
