package stateengine

import (
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// Retention of window and session stores. Every window and session store,
// on Pebble or in memory, cached or not, decides what is expired here:
// an entry's time (a window's start, a session's end) is expired once it
// is older than the retention at the observed stream time, and the data
// is kept in time segments so that expiry drops whole segments.

// minSegmentInterval is the smallest time segment: one minute.
const minSegmentInterval = 60_000

// segmentInterval returns the time segment size of a store with the given
// retention (ms): half the retention, at least a minute. About three
// segments are live at once, and expiry drops whole segments.
func segmentInterval(retentionMs int64) int64 {
	return max(retentionMs/2, minSegmentInterval)
}

// timeBox is the retention bookkeeping of one window or session store.
type timeBox struct {
	interval  int64
	retention int64
	// dropped: every segment below it has been dropped.
	dropped int64
	// expired counts the writes ignored as expired.
	expired int64
}

func newTimeBox(retention int64, observed int64) timeBox {
	tb := timeBox{interval: segmentInterval(retention), retention: retention}
	tb.dropped = layout.Segment(tb.cutoff(observed), tb.interval)
	return tb
}

// newTimeBox returns the time box of b's store as of its meta.
func (b *base) newTimeBox() timeBox {
	return newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed)
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

// clamp narrows [from, to] to the times live at stream time observed:
// not expired and not after it (every write raises stream time to its
// time, so no entry is later). ok is false if none is.
func (t *timeBox) clamp(observed, from, to int64) (int64, int64, bool) {
	if observed == math.MinInt64 {
		return 0, 0, false
	}
	from = max(from, t.cutoff(observed))
	to = min(to, observed)
	return from, to, from <= to
}

// expire records that stream time reached observed. If segments became
// wholly expired since the last call, it returns the first live segment
// and true: the store drops every segment below it (the Pebble stores with
// one range deletion, the in-memory store by its segment listings).
func (t *timeBox) expire(observed int64) (int64, bool) {
	cs := t.seg(t.cutoff(observed))
	if cs <= t.dropped {
		return 0, false
	}
	t.dropped = cs
	return cs, true
}
