package dsl

import (
	"time"

	"github.com/weir-dev/weir/streams"
)

// pendingRec is what an aggregation remembers of the latest input record of
// a key whose result waits in the write-back cache: the typed key, the
// timestamp and headers the flushed result is forwarded with.
type pendingRec[K any] struct {
	key     K
	ts      time.Time
	headers streams.Headers
	// epoch is the pendingTable's epoch of the slot's last put.
	epoch int
	// rewritten lists, for session aggregations (one slot per key), the
	// sessions removed and put again with the same bounds since their last
	// flush: [start, end] pairs.
	rewritten [][2]int64
}

// windowKey is a serialized key and a window: start and end for sessions,
// start for fixed windows (end 0), neither for unwindowed aggregations.
type windowKey struct {
	key        string
	start, end int64
}

// pendingTable maps the keys an aggregation updated since their last flush
// to their latest input record; take deletes a key's slot when its result
// is flushed, so the table holds about the dirty keys only (measured: a
// table keeping flushed slots for reuse saved no time and grew with every
// window). Slots never taken (session slots, which are per key and only
// peeked at, and results that never reach the store) are deleted when
// unused for two sweeps; a sweep runs when the table has doubled since the
// last one.
type pendingTable[K any] struct {
	m map[windowKey]*pendingRec[K]
	// epoch counts sweeps; limit is the size that triggers the next.
	epoch, limit int
}

func newPendingTable[K any]() *pendingTable[K] {
	return &pendingTable[K]{m: map[windowKey]*pendingRec[K]{}, limit: 1024}
}

// put records the latest input record of (kb, start, end) and returns its
// slot (valid until the next put).
func (t *pendingTable[K]) put(kb []byte, start, end int64, key K, ts time.Time, h streams.Headers) *pendingRec[K] {
	if e := t.m[windowKey{key: string(kb), start: start, end: end}]; e != nil {
		e.key, e.ts, e.headers, e.epoch = key, ts, h, t.epoch
		return e
	}
	if len(t.m) >= t.limit {
		t.sweep()
	}
	e := &pendingRec[K]{key: key, ts: ts, headers: h, epoch: t.epoch}
	t.m[windowKey{key: string(kb), start: start, end: end}] = e
	return e
}

// take returns and forgets the latest input record of (kb, start, end).
func (t *pendingTable[K]) take(kb []byte, start, end int64) (pendingRec[K], bool) {
	e := t.m[windowKey{key: string(kb), start: start, end: end}]
	if e == nil {
		return pendingRec[K]{}, false
	}
	delete(t.m, windowKey{key: string(kb), start: start, end: end})
	return *e, true
}

// peek returns the slot of (kb, start, end), leaving it in the table.
func (t *pendingTable[K]) peek(kb []byte, start, end int64) *pendingRec[K] {
	if e := t.m[windowKey{key: string(kb), start: start, end: end}]; e != nil {
		return e
	}
	return nil
}

// sweep deletes the slots unused for two sweeps: slots never taken (a
// session's, a result that never reached the store). NB: should such a
// slot's result still be flushed later, it is forwarded with stream time as
// its timestamp.
func (t *pendingTable[K]) sweep() {
	for k, e := range t.m {
		if e.epoch < t.epoch-1 {
			delete(t.m, k)
		}
	}
	t.epoch++
	t.limit = max(1024, 2*len(t.m))
}
