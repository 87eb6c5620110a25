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
	wk := w.spareWalk
	if wk == nil {
		wk = &keyWalk{}
		wk.key, wk.ek, wk.vbuf = wk.keyArr[:0], wk.ekArr[:0], wk.valArr[:0]
	} else {
		w.spareWalk = nil
	}
	wk.open(w, key, w.ekbuf, from, to, latestStart, reverse)
	return &cachedKeyIter{wk: wk}, true
}

// cachedKeyIter is the iterator fetchKey returns: a handle on a walk of
// the key's entries (keyWalk), which Close hands back to the store for
// its next fetch, so that a join's fetch per record allocates only the
// handle. NB: the handle, not the walk, is what the caller holds: a
// second Close, or a call after Close, finds no walk and does nothing,
// so it cannot reach the walk of a later fetch.
type cachedKeyIter struct {
	wk *keyWalk
}

func (it *cachedKeyIter) Next() bool { return it.wk != nil && it.wk.next() }

func (it *cachedKeyIter) Key() []byte {
	if it.wk == nil {
		return nil
	}
	return it.wk.key
}

func (it *cachedKeyIter) WindowStart() int64 { return it.Start() }

func (it *cachedKeyIter) Start() int64 {
	if it.wk == nil {
		return 0
	}
	return it.wk.start
}

func (it *cachedKeyIter) End() int64 {
	if it.wk == nil {
		return 0
	}
	return it.wk.end
}

func (it *cachedKeyIter) Value() []byte {
	if it.wk == nil {
		return nil
	}
	return it.wk.value
}

func (it *cachedKeyIter) Err() error {
	if it.wk == nil {
		return nil
	}
	return it.wk.err()
}

// Close ends the walk and hands it back to the store, unless it failed:
// then the handle keeps it, for Err.
func (it *cachedKeyIter) Close() error {
	wk := it.wk
	if wk == nil {
		return nil
	}
	if err := wk.close(); err != nil {
		return err
	}
	it.wk = nil
	wk.release()
	return nil
}

// keyWalk walks one key's entries in the cache. Like the cache's other
// iterators it finds its next entry afresh at each step (after the
// (end, start) it returned last), so writes during the iteration are
// safe, and it copies the value it hands out. The walk relies on the
// cache holding every entry of the range (fetch checked at open); once
// an entry leaves the cache (evicted: the store below may then hold
// entries of the range the cache lacks), it merges with the store from
// its position on instead, as fetch does for any range.
//
// A store keeps the walk last closed (cachedTimed.spareWalk) for its next
// fetchKey, with the buffers it grew.
type keyWalk struct {
	w *cachedTimed
	// gen is w.ns.removals at open.
	gen                   uint64
	ek, key               []byte
	from, to, latestStart int64
	reverse, started      bool
	// done: next returned false.
	done       bool
	start, end int64
	// cur is the entry at the position.
	cur *centry
	// m is the merge that continues the walk after a removal, or nil.
	m *cachedTimedIter
	// value is the current value: in the walk a copy in vbuf (which
	// starts as valArr and keeps what it grew to), in the merge the
	// merge's.
	value, vbuf []byte
	// The arrays back the buffers of short keys and values.
	keyArr [32]byte
	ekArr  [34]byte
	valArr [64]byte
}

// open starts the walk of key (escaped: ek) over w's cache with fetch's
// bounds.
func (it *keyWalk) open(w *cachedTimed, key, ek []byte, from, to, latestStart int64, reverse bool) {
	it.w, it.gen = w, w.ns.removals
	it.from, it.to, it.latestStart, it.reverse = from, to, latestStart, reverse
	it.started, it.done, it.start, it.end, it.cur, it.m = false, false, 0, 0, nil, nil
	it.key = append(it.key[:0], key...)
	it.ek = append(it.ek[:0], ek...)
	it.value, it.vbuf = it.vbuf[:0], it.vbuf[:0]
}

// close ends the walk; it returns the merge's error, if any.
func (it *keyWalk) close() error {
	it.done = true
	if it.m != nil {
		return it.m.Close()
	}
	return nil
}

// keptWalkBuf bounds the buffers a walk keeps for its next fetch: one
// large value must not stay held by the store.
const keptWalkBuf = 4 << 10

// release hands a closed walk back to its store for the next fetchKey,
// keeping its buffers (up to keptWalkBuf each) but no entry or merge.
func (it *keyWalk) release() {
	w := it.w
	it.w, it.cur, it.m, it.value = nil, nil, nil, nil
	if w.spareWalk != nil {
		return
	}
	if cap(it.key) > keptWalkBuf {
		it.key = it.keyArr[:0]
	}
	if cap(it.ek) > keptWalkBuf {
		it.ek = it.ekArr[:0]
	}
	if cap(it.vbuf) > keptWalkBuf {
		it.vbuf = it.valArr[:0]
	}
	w.spareWalk = it
}

func (it *keyWalk) err() error {
	if it.m != nil {
		return it.m.Err()
	}
	return nil
}

func (it *keyWalk) next() bool {
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
			it.value, it.done = it.vbuf[:0], true
			return false
		}
		if it.take(en) {
			return true
		}
	}
}

// nextMerged steps the merge that takes over from the walk after a
// removal, making it first: over the key's spans after the position.
func (it *keyWalk) nextMerged() bool {
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
func (it *keyWalk) nextUp() *centry {
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
func (it *keyWalk) nextDown() *centry {
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
func (it *keyWalk) afterLast(en *centry) bool {
	return en.end > it.end || en.end == it.end && en.start > it.start
}

// take makes en the current entry unless the fetch skips it (a start past
// latestStart, a tombstone); it records en's position either way.
func (it *keyWalk) take(en *centry) bool {
	it.started, it.start, it.end, it.cur = true, en.start, en.end, en
	if en.start > it.latestStart || en.value == nil {
		return false
	}
	// NB: a copy, non-nil for an empty value: a write during the
	// iteration may overwrite the entry's buffer in place.
	it.vbuf = append(it.vbuf[:0], en.value...)
	it.value = it.vbuf
	return true
}
