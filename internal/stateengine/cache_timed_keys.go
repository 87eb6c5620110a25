package stateengine

import (
	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// A timed store's cache over Pebble keeps its entries grouped by user key
// (newGroupedTable), each key's in time order, for the fetches of one key
// that the store below need not answer: every entry they can return is
// cached (see cachedTimed.floor). Such a fetch, a stream-stream join's for
// each record, walks the key's few entries instead of merging the cache's
// B-tree with a Pebble iterator over the key's span in every time segment
// of the range, and builds no span keys; and the join's writes, which need
// no order, build no B-tree.

// ascendingWalkMax bounds the entries of one key, ending at or after a
// fetch's from, that an ascending walk of its group takes on: each of its
// steps walks down from the key's latest entry, so a longer list (a key
// with many cached windows, fetched oldest first) goes through the
// cache's ordered merge instead.
const ascendingWalkMax = 8

// fetchKey iterates the cached entries of key with ends in [from, to] and
// starts at or before latestStart: what fetch returns when nothing below
// the cache can be in the range. It returns false when the walk would be
// long (ascendingWalkMax); fetch then merges as for any range.
func (w *cachedTimed) fetchKey(key []byte, from, to, latestStart int64, reverse bool) (timedIter, bool) {
	w.ekbuf = layout.AppendEscaped(w.ekbuf[:0], key)
	head := w.ns.tab.group(w.ekbuf)
	if head == nil {
		// NB: nothing to walk. Unlike the walk of a group, this sees no
		// entry of the key written after the fetch (an iterator need not
		// see writes made after it was opened; those during a walk ahead
		// of it it does see). A join's fetch for a record with no
		// partner yet allocates nothing.
		return emptyIter{}, true
	}
	if !reverse {
		n := 0
		for en := head; en != nil && en.end >= from; en = en.gnext {
			if n++; n > ascendingWalkMax {
				return nil, false
			}
		}
	}
	it := &cachedKeyIter{w: w, gen: w.ns.removals, from: from, to: to, latestStart: latestStart, reverse: reverse}
	it.key = append(it.keyArr[:0], key...)
	it.ek = append(it.ekArr[:0], w.ekbuf...)
	it.value = it.valArr[:0]
	return it, true
}

// cachedKeyIter walks one key's entries in the cache. Like the cache's
// other iterators it finds its next entry afresh at each step (after the
// (end, start) it returned last), so writes during the iteration are
// safe, and it copies the value it hands out. The walk relies on the
// cache holding every entry of the range (fetch checked at open); once
// an entry leaves the cache (evicted: the store below may then hold
// entries of the range the cache lacks), it merges with the store from
// its position on instead, as fetch does for any range.
//
// NB: it is allocated per fetch (a join's per record): keep it within
// the 288-byte size class.
type cachedKeyIter struct {
	w *cachedTimed
	// gen is w.ns.removals at open.
	gen                   uint64
	ek, key               []byte
	from, to, latestStart int64
	reverse, started      bool
	// done: Next returned false.
	done       bool
	start, end int64
	// cur is the entry at the position.
	cur *centry
	// m is the merge that continues the walk after a removal, or nil.
	m *cachedTimedIter
	// value is the current value: in the walk a copy, in a buffer that
	// starts as valArr and keeps what it grew to.
	value []byte
	// The arrays back the buffers of short keys and values.
	keyArr [32]byte
	ekArr  [34]byte
	valArr [64]byte
}

func (it *cachedKeyIter) Next() bool {
	if it.done {
		return false
	}
	if it.m != nil || it.w.ns.removals != it.gen {
		return it.nextMerged()
	}
	for {
		var en *centry
		if it.reverse {
			en = it.nextDown()
		} else {
			en = it.nextUp()
		}
		if en == nil {
			it.value, it.done = it.value[:0], true
			return false
		}
		if it.take(en) {
			return true
		}
	}
}

// nextMerged steps the merge that takes over from the walk after a
// removal, making it first: over the key's spans after the position.
func (it *cachedKeyIter) nextMerged() bool {
	if it.m == nil {
		w := it.w
		spans := keySpans(nil, nil, w.kind, &w.under.tb, it.key, it.from, it.to, it.reverse)
		if it.started {
			pos := w.kind.appendKey(nil, w.under.tb.seg(it.end), it.key, it.start, it.end)
			spans = clipSpans(spans, pos, it.reverse)
		}
		it.m = &cachedTimedIter{}
		w.initMerge(it.m, spans, it.from, it.to, it.latestStart, it.reverse, true)
	}
	if !it.m.Next() {
		it.value, it.done = nil, true
		return false
	}
	it.start, it.end, it.value = it.m.start, it.m.end, it.m.Value()
	return true
}

// nextUp returns the earliest entry of the range after the position: the
// last one of the walk down from the key's latest entry.
func (it *cachedKeyIter) nextUp() *centry {
	var pick *centry
	for en := it.w.ns.tab.group(it.ek); en != nil && en.end >= it.from; en = en.gnext {
		if en.end > it.to {
			continue
		}
		if it.started && !it.afterLast(en) {
			break
		}
		pick = en
	}
	return pick
}

// nextDown returns the latest entry of the range before the position,
// walking on from the entry returned last while it is still cached.
func (it *cachedKeyIter) nextDown() *centry {
	en := it.w.ns.tab.group(it.ek)
	if it.cur != nil && !it.cur.gone {
		en = it.cur.gnext
	}
	for ; en != nil && en.end >= it.from; en = en.gnext {
		if en.end > it.to || it.started && !en.before(it.end, it.start) {
			continue
		}
		return en
	}
	return nil
}

// afterLast reports whether en orders after the entry returned last.
func (it *cachedKeyIter) afterLast(en *centry) bool {
	return en.end > it.end || en.end == it.end && en.start > it.start
}

// take makes en the current entry unless the fetch skips it (a start past
// latestStart, a tombstone); it records en's position either way.
func (it *cachedKeyIter) take(en *centry) bool {
	it.started, it.start, it.end, it.cur = true, en.start, en.end, en
	if en.start > it.latestStart || en.value == nil {
		return false
	}
	// NB: a copy, non-nil for an empty value: a write during the
	// iteration may overwrite the entry's buffer in place.
	it.value = append(it.value[:0], en.value...)
	return true
}

func (it *cachedKeyIter) Key() []byte        { return it.key }
func (it *cachedKeyIter) WindowStart() int64 { return it.start }
func (it *cachedKeyIter) Start() int64       { return it.start }
func (it *cachedKeyIter) End() int64         { return it.end }
func (it *cachedKeyIter) Value() []byte      { return it.value }

func (it *cachedKeyIter) Err() error {
	if it.m != nil {
		return it.m.Err()
	}
	return nil
}

func (it *cachedKeyIter) Close() error {
	it.done = true
	if it.m != nil {
		return it.m.Close()
	}
	return nil
}
