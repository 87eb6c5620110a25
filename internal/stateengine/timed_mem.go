package stateengine

import (
	"bytes"
	"cmp"
	"math"
	"slices"
)

// memTimed is the in-memory timed backend, and the in-memory cache's
// table: an entry is a key's slot (start, end), slots order by end, then
// start, and a slot's time segment is its end's.
//
// The data: a hash map from each key to its slots (sorted), and per time
// segment the keys that got a slot in it, so that expiry drops whole
// segments without a scan. A point read or write costs one map lookup, none
// when the key is the one used last (an aggregation reads an entry and
// writes it back at once). Ordered iteration is built on demand.
//
// Wrapped by a Cache (cachedTimed), the store caches in place: each slot
// keeps its current value (cur) beside the value written back last
// (stored), and the dirty slots are listed in the order of their last
// write (a log of (key, start, end, seq)). A flush writes them back in that
// order, each as a cache in front of a store would: changelog, stream time
// and expiry, then the listener with the new and the old value. Reads
// through the cache see cur, reads of the store itself see stored. There is
// no second copy of an entry, and no eviction: the values are in memory
// either way.
type memTimed struct {
	t    *timedStore
	keys map[string]*memTimedKey
	// last is the key last looked up or written, or nil. Invariant: if
	// set, it is in keys.
	last *memTimedKey
	// lastIdx is the index in last of the slot last found, a hint
	// (checked before use).
	lastIdx int
	// segs lists, per time segment, the keys that got a slot in it; a key
	// may be listed twice, or after it left keys (then with no slots).
	segs map[int64][]*memTimedKey
	// free holds the slot arrays of forgotten keys (emptied, capacity
	// kept) for new keys: expiry forgets most keys of a segment at once,
	// and many come back in the next one. At most freeMax are kept.
	free [][]memSlot
	// freeMax is max(minFreeSlots, the number of keys before the last
	// expiry), so free at most doubles the slot arrays held.
	freeMax int
	// spareIter is a closed iterator for the next list (see list).
	spareIter *memListIter

	// c is the cache over the store, once wrapped; it keeps the
	// listener and the cached view's stream time.
	c *cachedTimed
	// dirty lists the writes to dirty slots in order; a write is live
	// while its slot is dirty with the same seq, older writes to the slot
	// are skipped (and compacted away).
	dirty    []memTimedDirty
	ndirty   int
	seq      uint64
	flushing bool
	// kscratch hands keys to the listener.
	kscratch []byte
}

type memTimedKey struct {
	key   string
	slots []memSlot // sorted by end, then start
}

// memSlot is one window or session of a key.
type memSlot struct {
	start, end int64
	// cur is the current value (nil: deleted, a dirty tombstone); stored
	// is the value written back last (nil: absent). While the slot is
	// clean they are the same slice.
	cur, stored []byte
	// spare is a buffer for cur's next value: the stored value's buffer
	// before the last write-back.
	spare []byte
	dirty bool
	// seq numbers the last write while dirty.
	seq uint64
	// tag is the caller's (see TaggedWindowStore).
	tag any
}

type memTimedDirty struct {
	k          *memTimedKey
	start, end int64
	seq        uint64
}

func newMemTimed(t *timedStore) *memTimed {
	return &memTimed{t: t, keys: map[string]*memTimedKey{}, segs: map[int64][]*memTimedKey{}}
}

// relist rebuilds the segment listings from the slots. A reload can lower
// stream time below the point where advance dropped a segment's listing
// while keeping its dirty slots; once live again, such a slot would never
// be dropped.
func (s *memTimed) relist() {
	clear(s.segs)
	for _, k := range s.keys {
		for i := range k.slots {
			sg := s.t.tb.seg(k.slots[i].end)
			if i == 0 || s.t.tb.seg(k.slots[i-1].end) != sg {
				s.segs[sg] = append(s.segs[sg], k)
			}
		}
	}
}

func (s *memTimed) clear() {
	clear(s.keys)
	clear(s.segs)
	clear(s.free)
	s.free = s.free[:0]
	s.last = nil
	clear(s.dirty)
	s.dirty, s.ndirty = s.dirty[:0], 0
}

func slotLess(aEnd, aStart, bEnd, bStart int64) bool {
	return aEnd < bEnd || (aEnd == bEnd && aStart < bStart)
}

// search returns the index of the first slot of k at or after (end,
// start), and whether it is that slot.
func (k *memTimedKey) search(start, end int64) (int, bool) {
	lo, hi := 0, len(k.slots)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if slotLess(k.slots[m].end, k.slots[m].start, end, start) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(k.slots) && k.slots[lo].start == start && k.slots[lo].end == end
}

// at returns the index of k's slot (start, end), trying hint first.
func (k *memTimedKey) at(start, end int64, hint int) (int, bool) {
	if hint >= 0 && hint < len(k.slots) && k.slots[hint].start == start && k.slots[hint].end == end {
		return hint, true
	}
	return k.search(start, end)
}

func (s *memTimed) find(key []byte) *memTimedKey {
	if l := s.last; l != nil && l.key == string(key) {
		return l
	}
	k := s.keys[string(key)]
	if k != nil {
		s.last = k
	}
	return k
}

// slot returns key's slot (start, end), or nil.
func (s *memTimed) slot(key []byte, start, end int64) *memSlot {
	k := s.find(key)
	if k == nil {
		return nil
	}
	if i, ok := k.search(start, end); ok {
		s.lastIdx = i
		return &k.slots[i]
	}
	return nil
}

// insert returns key's slot (start, end), creating it (cur and stored nil,
// clean) if absent. The pointer is valid until the key's slots change.
func (s *memTimed) insert(key []byte, start, end int64) (*memTimedKey, *memSlot) {
	k := s.find(key)
	if k == nil {
		k = &memTimedKey{key: string(key)}
		if n := len(s.free); n > 0 {
			k.slots, s.free[n-1] = s.free[n-1], nil
			s.free = s.free[:n-1]
		}
		s.keys[k.key] = k
		s.last = k
	}
	hint := -1
	if k == s.last {
		hint = s.lastIdx
	}
	i, ok := k.at(start, end, hint)
	if !ok {
		sg := s.t.tb.seg(end)
		listed := (i > 0 && s.t.tb.seg(k.slots[i-1].end) == sg) || (i < len(k.slots) && s.t.tb.seg(k.slots[i].end) == sg)
		if !listed {
			s.segs[sg] = append(s.segs[sg], k)
		}
		k.slots = slices.Insert(k.slots, i, memSlot{start: start, end: end})
	}
	s.lastIdx = i
	return k, &k.slots[i]
}

// remove deletes slot i of k, and k if it has no slots left.
func (s *memTimed) remove(k *memTimedKey, i int) {
	k.slots = slices.Delete(k.slots, i, i+1)
	if len(k.slots) == 0 {
		s.forgetKey(k)
	}
}

// minFreeSlots is how many slot arrays free may hold however few keys
// the store has.
const minFreeSlots = 1024

// forgetKey removes k, which has no slots left. NB: k may still be listed
// in segs or referenced by a stale write in dirty; those find it with no
// slots (its array moved to free, if it was in keys).
func (s *memTimed) forgetKey(k *memTimedKey) {
	if s.keys[k.key] == k {
		delete(s.keys, k.key)
		if cap(k.slots) > 0 && len(s.free) < max(minFreeSlots, s.freeMax) {
			clear(k.slots[:cap(k.slots)])
			s.free = append(s.free, k.slots[:0])
		}
		k.slots = nil
	}
	if s.last == k {
		s.last = nil
	}
}

// dropBelow drops the segments below seg. Dirty slots stay until their
// write-back, which finds them expired.
func (s *memTimed) dropBelow(cs int64) error {
	s.freeMax = len(s.keys)
	for sg, ks := range s.segs {
		if sg >= cs {
			continue
		}
		delete(s.segs, sg)
		for _, k := range ks {
			keep := k.slots[:0]
			for _, w := range k.slots {
				if w.dirty || s.t.tb.seg(w.end) >= cs {
					keep = append(keep, w)
				}
			}
			clear(k.slots[len(keep):])
			k.slots = keep
			if len(keep) == 0 {
				s.forgetKey(k)
			}
		}
	}
	return nil
}

// set writes value (nil: deletes) as the stored value of key's slot
// (start, end).
func (s *memTimed) set(key []byte, start, end int64, value []byte) error {
	if value == nil {
		if k := s.find(key); k != nil {
			if i, ok := k.search(start, end); ok {
				if w := &k.slots[i]; w.dirty {
					w.stored = nil
				} else {
					s.remove(k, i)
				}
			}
		}
		return nil
	}
	_, w := s.insert(key, start, end)
	if w.dirty {
		w.stored = setValue(w.stored, value)
	} else {
		w.cur = setValue(w.cur, value)
		w.stored = w.cur
	}
	return nil
}

func (s *memTimed) get(key []byte, start, end int64) ([]byte, error) {
	return s.getValue(false, key, start, end), nil
}

// getValue returns a copy of the value of key's slot (start, end) in one
// of the two views (cached: the current values, else the stored ones).
func (s *memTimed) getValue(cached bool, key []byte, start, end int64) []byte {
	if w := s.slot(key, start, end); w != nil {
		if v := w.value(cached); v != nil {
			return append(make([]byte, 0, len(v)), v...)
		}
	}
	return nil
}

// value returns w's value in one of the two views.
func (w *memSlot) value(cached bool) []byte {
	if cached {
		return w.cur
	}
	return w.stored
}

func (s *memTimed) scan(key []byte, endFrom, endTo, latestStart int64, reverse bool) (timedIter, error) {
	return s.view(false, key, endFrom, endTo, latestStart, reverse), nil
}

// view lists the slots of a view (cached: the current values, else the
// stored ones) as scan does.
func (s *memTimed) view(cached bool, key []byte, endFrom, endTo, latestStart int64, reverse bool) timedIter {
	var it *memListIter
	if key == nil {
		it = s.listAll(cached, endFrom, endTo, latestStart, reverse)
	} else {
		it = s.list(cached, key, endFrom, endTo, latestStart, reverse)
	}
	if it == nil {
		return emptyIter{}
	}
	return it
}

// list lists key's slots of a view with ends in [endFrom, endTo] and
// starts at or before latestStart, in slot order (reversed with reverse);
// nil if key has none.
func (s *memTimed) list(cached bool, key []byte, endFrom, endTo, latestStart int64, reverse bool) *memListIter {
	k := s.find(key)
	if k == nil {
		return nil
	}
	i, _ := k.search(math.MinInt64, endFrom)
	for ; i < len(k.slots) && k.slots[i].end <= endTo; i++ {
		if w := &k.slots[i]; w.start <= latestStart && w.value(cached) != nil {
			break
		}
	}
	if i == len(k.slots) || k.slots[i].end > endTo {
		return nil // none: spare the iterator
	}
	it := s.newListIter()
	it.kb = append(it.kb[:0], key...)
	kb := it.kb
	for ; i < len(k.slots) && k.slots[i].end <= endTo; i++ {
		w := &k.slots[i]
		if w.start > latestStart {
			continue
		}
		if v := w.value(cached); v != nil {
			vo, vn := it.vals.add(v, len(k.slots)-i-1)
			it.ents = append(it.ents, memListEnt{key: kb, start: w.start, end: w.end, vo: vo, vn: vn})
		}
	}
	if reverse {
		slices.Reverse(it.ents)
	}
	return it
}

// listAll lists every slot of a view with its end in [endFrom, endTo],
// ordered by time segment, key, end and start as the Pebble stores' keys
// are (reversed with reverse).
func (s *memTimed) listAll(cached bool, endFrom, endTo, latestStart int64, reverse bool) *memListIter {
	it := &memListIter{i: -1}
	for _, k := range s.keys {
		var kb []byte
		for i := range k.slots {
			w := &k.slots[i]
			if w.end < endFrom || w.end > endTo || w.start > latestStart {
				continue
			}
			if v := w.value(cached); v != nil {
				if kb == nil {
					kb = []byte(k.key)
				}
				vo, vn := it.vals.add(v, 16)
				it.ents = append(it.ents, memListEnt{key: kb, start: w.start, end: w.end, vo: vo, vn: vn})
			}
		}
	}
	slices.SortFunc(it.ents, func(a, b memListEnt) int {
		if c := cmp.Compare(s.t.tb.seg(a.end), s.t.tb.seg(b.end)); c != 0 {
			return c
		}
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		if c := cmp.Compare(a.end, b.end); c != 0 {
			return c
		}
		return cmp.Compare(a.start, b.start)
	})
	if reverse {
		slices.Reverse(it.ents)
	}
	return it
}

// newListIter returns an empty iterator: the one last closed, if any, so
// that a fetch per record (a join's) allocates nothing.
func (s *memTimed) newListIter() *memListIter {
	it := s.spareIter
	if it == nil {
		it = &memListIter{}
		it.ents, it.kb = it.inline[:0], it.keyBuf[:0]
	} else {
		s.spareIter = nil
		clear(it.ents)
		it.ents = it.ents[:0]
		it.vals.reset()
	}
	it.i, it.owner = -1, s
	return it
}

// memListEnt is a window or session listed by an iterator of an in-memory
// store; its value is at vo, vn in the iterator's arena.
type memListEnt struct {
	key        []byte
	start, end int64
	vo, vn     int
}

// memListIter walks a list of windows or sessions, with copies of their
// values, taken when it was created: writes during the iteration are not
// seen. It is both a WindowIterator and a SessionIterator.
type memListIter struct {
	ents []memListEnt
	i    int
	vals valArena
	// kb holds the key of a one-key list.
	kb []byte
	// owner takes the iterator back on Close (see newListIter); nil if it
	// is not to be reused.
	owner  *memTimed
	inline [4]memListEnt
	keyBuf [32]byte
}

func (it *memListIter) Next() bool {
	if it.i+1 >= len(it.ents) {
		it.i = len(it.ents)
		return false
	}
	it.i++
	return true
}
func (it *memListIter) Key() []byte        { return it.ents[it.i].key }
func (it *memListIter) WindowStart() int64 { return it.ents[it.i].start }
func (it *memListIter) Start() int64       { return it.ents[it.i].start }
func (it *memListIter) End() int64         { return it.ents[it.i].end }
func (it *memListIter) Value() []byte {
	e := &it.ents[it.i]
	return it.vals.at(e.vo, e.vn)
}
func (it *memListIter) Err() error { return nil }
func (it *memListIter) Close() error {
	it.i = len(it.ents)
	if o := it.owner; o != nil {
		it.owner = nil
		if o.spareIter == nil {
			o.spareIter = it
		}
	}
	return nil
}

// valArena holds copies of the values an iterator lists: a write during
// the iteration may overwrite a value's buffer in place (setValue), so an
// iterator never hands out the store's own buffers.
type valArena struct {
	b      []byte
	inline [64]byte
}

// reset empties the arena (non-nil, so an empty value stays non-nil).
func (a *valArena) reset() {
	if a.b == nil {
		a.b = a.inline[:0]
	}
	a.b = a.b[:0]
}

// add copies v in, returning where it is. If the arena must grow, it
// grows to hold more values of v's size (more: how many are likely to
// follow) in one step.
func (a *valArena) add(v []byte, more int) (off, n int) {
	if a.b == nil {
		a.b = a.inline[:0]
	}
	off = len(a.b)
	if off+len(v) > cap(a.b) {
		nb := make([]byte, off, max(2*cap(a.b), off+len(v)*(1+more)))
		copy(nb, a.b)
		a.b = nb
	}
	a.b = append(a.b, v...)
	return off, len(v)
}

// at returns the value add put at off.
func (a *valArena) at(off, n int) []byte { return a.b[off : off+n : off+n] }

// writeCur returns the new current value and spare buffer of an entry
// cached in place (memTimed) written value (nil: a
// tombstone). A clean entry's cur is its stored value, which a write must
// leave alone: the new value goes into the spare buffer. A dirty entry's cur
// is overwritten in place, or parked as the spare when deleted.
func writeCur(cur, spare, value []byte, dirty bool) (newCur, newSpare []byte) {
	switch {
	case !dirty && value == nil:
		return nil, spare
	case !dirty:
		return setValue(spare, value), nil
	case value == nil:
		if cur != nil {
			spare = cur
		}
		return nil, spare
	case cur != nil:
		return setValue(cur, value), spare
	default:
		return setValue(spare, value), nil
	}
}

// setValue copies v into buf when it fits, else into a new slice; the
// result is never nil.
func setValue(buf, v []byte) []byte {
	if buf != nil && cap(buf) >= len(v) {
		return append(buf[:0], v...)
	}
	return append(make([]byte, 0, len(v)), v...)
}

// The cache's part: cachedTimed calls these when it caches s in place.

// forgetDirty forgets the writes not written back (each dirty slot gets its
// stored value back) and the tags. NB: not named dropCached, which Restore
// calls on cache wrappers: the unwrapped store must not have it.
func (s *memTimed) forgetDirty() {
	for _, d := range s.dirty {
		i, ok := d.k.search(d.start, d.end)
		if !ok {
			continue
		}
		w := &d.k.slots[i]
		if !w.dirty || w.seq != d.seq {
			continue
		}
		w.dirty = false
		s.ndirty--
		if w.stored == nil || s.t.tb.isExpired(w.end, s.t.m.observed) {
			s.remove(d.k, i)
			continue
		}
		w.cur = w.stored
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	// Tags live while a slot is cached: a restore empties the cache.
	for _, k := range s.keys {
		for i := range k.slots {
			k.slots[i].tag = nil
		}
	}
}

// cachedPut writes into the cached view. The cache checked the arguments
// and retention.
func (s *memTimed) cachedPut(key []byte, start, end int64, value []byte, tag any, setTag bool) {
	k, w := s.insert(key, start, end)
	w.cur, w.spare = writeCur(w.cur, w.spare, value, w.dirty)
	if !w.dirty {
		w.dirty = true
		s.ndirty++
	}
	if setTag {
		w.tag = tag
	}
	s.seq++
	w.seq = s.seq
	s.dirty = append(s.dirty, memTimedDirty{k: k, start: start, end: end, seq: s.seq})
	if !s.flushing && len(s.dirty) > 2*s.ndirty+64 {
		s.compactDirty()
	}
}

// compactDirty drops the writes that a later write to the same slot
// superseded.
func (s *memTimed) compactDirty() {
	keep := s.dirty[:0]
	for _, d := range s.dirty {
		if i, ok := d.k.search(d.start, d.end); ok {
			if w := &d.k.slots[i]; w.dirty && w.seq == d.seq {
				keep = append(keep, d)
			}
		}
	}
	clear(s.dirty[len(keep):])
	s.dirty = keep
}

// flush writes the dirty slots back in the order of their last write.
// On error the slots not written back stay dirty.
func (s *memTimed) flush() error {
	s.flushing = true
	var err error
	i := 0
	for ; i < len(s.dirty); i++ {
		if err = s.writeBack(s.dirty[i]); err != nil {
			break
		}
	}
	s.flushing = false
	if err != nil {
		n := copy(s.dirty, s.dirty[i:])
		clear(s.dirty[n:])
		s.dirty = s.dirty[:n]
		return err
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	return nil
}

// writeBack writes one listed write back if it is live: as the store
// below a cache would take it, then tells the listener. On error the slot
// stays dirty.
func (s *memTimed) writeBack(d memTimedDirty) error {
	k, start, end := d.k, d.start, d.end
	i, ok := k.search(start, end)
	if !ok {
		return nil
	}
	w := &k.slots[i]
	if !w.dirty || w.seq != d.seq {
		return nil
	}
	value := w.cur
	s.kscratch = append(s.kscratch[:0], k.key...)
	l := s.c.listener
	if s.t.tb.isExpired(end, s.t.m.observed) {
		// Expired while dirty: the store drops it (see
		// timedKind.tellExpired). Its old value is gone with the slot.
		s.c.expired++
		if s.t.kind.tellExpired && l != nil && value != nil {
			if err := l(s.kscratch, start, end, value, nil, w.tag); err != nil {
				return err
			}
		}
		s.clean(k, start, end, i, d.seq, true)
		return nil
	}
	old, tag := w.stored, w.tag
	if err := s.t.logEntry(s.kscratch, start, end, value); err != nil {
		return err
	}
	if err := s.t.advance(end); err != nil {
		return err
	}
	if l != nil && (value != nil || old != nil) {
		if err := l(s.kscratch, start, end, value, old, tag); err != nil {
			return err
		}
	}
	s.clean(k, start, end, i, d.seq, value == nil)
	return nil
}

// clean marks k's slot (start, end) written back, unless it was written
// again meanwhile (by a listener), and removes it if gone.
func (s *memTimed) clean(k *memTimedKey, start, end int64, hint int, seq uint64, gone bool) {
	i, ok := k.at(start, end, hint)
	if !ok {
		return
	}
	w := &k.slots[i]
	if !w.dirty || w.seq != seq {
		return
	}
	w.dirty = false
	s.ndirty--
	if gone {
		s.remove(k, i)
		return
	}
	w.spare, w.stored = w.stored, w.cur
}
