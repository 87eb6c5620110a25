package stateengine

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/weir-dev/weir/state"
)

// memTimedStore is the in-memory store of entries placed in time, the one
// implementation behind the in-memory window store (memWindowStore) and
// session store (memSessionStore). An entry is a key's slot (start, end):
// a window is the slot (start, start), a session its own start and end.
// Slots order by end, then start, which is the order of a window store's
// starts and of a session store's ends; the time segment and the retention
// of a slot are its end's.
//
// The data: a hash map from each key to its slots (sorted), and per time
// segment the keys that got a slot in it, so that expiry drops whole
// segments without a scan. A point read or write costs one map lookup, none
// when the key is the one used last (an aggregation reads an entry and
// writes it back at once). Ordered iteration is built on demand.
//
// Wrapped by a Cache (memWindowCached, memSessionCached), the store caches
// in place: each slot keeps its current value (cur) beside the value
// written back last (stored), and the dirty slots are listed in the order
// of their last write. A flush writes them back in that order, each as a
// cache in front of a store would: changelog, stream time and expiry, then
// the listener with the new and the old value. Reads through the wrapper
// see cur, reads of the store itself see stored. There is no second copy of
// an entry, and no eviction: the values are in memory either way.
type memTimedStore struct {
	*base
	kind *memTimedKind
	tb   timeBox
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
	cbuf    []byte

	// The cache's part, in use once wrapped.
	wrapped  bool
	listener memTimedListener
	// cobs is the largest slot end put through the cache.
	cobs     int64
	cexpired int64
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

// memTimedKind is what differs between the window and the session store.
type memTimedKind struct {
	// what names the kind in errors: "window" or "session".
	what string
	// appendChangelogKey appends the changelog key of a slot.
	appendChangelogKey func(dst, key []byte, start, end int64) []byte
	// parseChangelogKey decodes a changelog key.
	parseChangelogKey func(ck []byte) (key []byte, start, end int64, err error)
	// tellExpired: a dirty slot found expired at its write-back still
	// reaches the listener with its last value (a window's final result
	// may be in it: one commit interval can span more event time than the
	// retention). A session store drops it silently, as the cache in front
	// of the Pebble session store does.
	tellExpired bool
}

// memTimedListener is the write-back hook of a wrapped memTimedStore; the
// window store adapts its own hook type to it.
type memTimedListener = SessionTagListener

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

func newMemTimedStore(b *base, kind *memTimedKind) *memTimedStore {
	s := &memTimedStore{base: b, kind: kind, keys: map[string]*memTimedKey{}, segs: map[int64][]*memTimedKey{}, cobs: math.MinInt64}
	s.tb = b.newTimeBox()
	b.onReload = func() {
		s.tb = b.newTimeBox()
		s.relist()
	}
	b.onWipe = s.clear
	return s
}

// relist rebuilds the segment listings from the slots. A reload can lower
// stream time below the point where advance dropped a segment's listing
// while keeping its dirty slots; once live again, such a slot would never
// be dropped.
func (s *memTimedStore) relist() {
	clear(s.segs)
	for _, k := range s.keys {
		for i := range k.slots {
			sg := s.tb.seg(k.slots[i].end)
			if i == 0 || s.tb.seg(k.slots[i-1].end) != sg {
				s.segs[sg] = append(s.segs[sg], k)
			}
		}
	}
}

func (s *memTimedStore) clear() {
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

func (s *memTimedStore) find(key []byte) *memTimedKey {
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
func (s *memTimedStore) slot(key []byte, start, end int64) *memSlot {
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
func (s *memTimedStore) insert(key []byte, start, end int64) (*memTimedKey, *memSlot) {
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
		sg := s.tb.seg(end)
		listed := (i > 0 && s.tb.seg(k.slots[i-1].end) == sg) || (i < len(k.slots) && s.tb.seg(k.slots[i].end) == sg)
		if !listed {
			s.segs[sg] = append(s.segs[sg], k)
		}
		k.slots = slices.Insert(k.slots, i, memSlot{start: start, end: end})
	}
	s.lastIdx = i
	return k, &k.slots[i]
}

// remove deletes slot i of k, and k if it has no slots left.
func (s *memTimedStore) remove(k *memTimedKey, i int) {
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
func (s *memTimedStore) forgetKey(k *memTimedKey) {
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

// advance raises the store's observed stream time to end and drops the
// segments that became wholly expired. Dirty slots stay until their
// write-back, which finds them expired.
func (s *memTimedStore) advance(end int64) {
	if end <= s.m.observed {
		return
	}
	s.m.observed = end
	cs, ok := s.tb.expire(end)
	if !ok {
		return
	}
	s.freeMax = len(s.keys)
	for sg, ks := range s.segs {
		if sg >= cs {
			continue
		}
		delete(s.segs, sg)
		for _, k := range ks {
			keep := k.slots[:0]
			for _, w := range k.slots {
				if w.dirty || s.tb.seg(w.end) >= cs {
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
}

func (s *memTimedStore) ObservedStreamTime() int64 { return s.m.observed }
func (s *memTimedStore) ExpiredPuts() int64        { return s.tb.expired }

// checkPut reports a closed store or an empty key.
func (s *memTimedStore) checkPut(key []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.keyErr(key)
}

// putThrough writes through: store, stream time, changelog. The caller
// checked the arguments (checkPut and its kind's own checks).
func (s *memTimedStore) putThrough(key []byte, start, end int64, value []byte) error {
	if s.tb.isExpired(end, s.m.observed) {
		s.tb.expired++
		return nil
	}
	s.apply(key, start, end, value)
	s.cbuf = s.kind.appendChangelogKey(s.cbuf[:0], key, start, end)
	return s.logChange(s.cbuf, value)
}

// apply writes a change to the stored values (no changelog) and advances
// stream time. Restore calls it directly.
func (s *memTimedStore) apply(key []byte, start, end int64, value []byte) {
	if s.tb.isExpired(end, s.m.observed) {
		return
	}
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
	} else {
		_, w := s.insert(key, start, end)
		if w.dirty {
			w.stored = setValue(w.stored, value)
		} else {
			w.cur = setValue(w.cur, value)
			w.stored = w.cur
		}
	}
	s.advance(end)
}

func (s *memTimedStore) applyChange(key, value []byte) error {
	k, start, end, err := s.kind.parseChangelogKey(key)
	if err != nil {
		return fmt.Errorf("%s changelog key of %d bytes: %w", s.kind.what, len(key), err)
	}
	if len(k) == 0 {
		return fmt.Errorf("%s changelog key has an empty user key", s.kind.what)
	}
	s.apply(k, start, end, value)
	return nil
}

// getValue returns a copy of the value of key's slot (start, end) in one
// of the two views (cached: the current values, else the stored ones).
func (s *memTimedStore) getValue(cached bool, key []byte, start, end int64) []byte {
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

// list lists key's slots of a view with ends in [endFrom, endTo] and
// starts at or before latestStart, in slot order (reversed with reverse);
// nil if key has none.
func (s *memTimedStore) list(cached bool, key []byte, endFrom, endTo, latestStart int64, reverse bool) *memListIter {
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
	it := &memListIter{i: -1}
	it.ents = it.inline[:0]
	kb := append(it.keyBuf[:0], key...)
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
func (s *memTimedStore) listAll(cached bool, endFrom, endTo int64, reverse bool) *memListIter {
	it := &memListIter{i: -1}
	for _, k := range s.keys {
		var kb []byte
		for i := range k.slots {
			w := &k.slots[i]
			if w.end < endFrom || w.end > endTo {
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
		if c := cmp.Compare(s.tb.seg(a.end), s.tb.seg(b.end)); c != 0 {
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

// windowIter and sessionIter return it as a store's iterator: emptyIter
// if nil.
func (it *memListIter) windowIter() state.WindowIterator {
	if it == nil {
		return emptyIter{}
	}
	return it
}

func (it *memListIter) sessionIter() state.SessionIterator {
	if it == nil {
		return emptyIter{}
	}
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
	ents   []memListEnt
	i      int
	vals   valArena
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
func (it *memListIter) Err() error   { return nil }
func (it *memListIter) Close() error { it.i = len(it.ents); return nil }

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
// cached in place (memTimedStore) written value (nil: a
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

// The cache's part: the methods the wrappers (memWindowCached,
// memSessionCached) share.

// wrap turns on caching in place, with listener l.
func (s *memTimedStore) wrap(l memTimedListener) error {
	if s.wrapped {
		return fmt.Errorf("state: cache: %s store %q is already wrapped", s.kind.what, s.Name())
	}
	s.wrapped, s.listener, s.cobs = true, l, s.m.observed
	return nil
}

// cachedObserved is the stream time of the cached view.
func (s *memTimedStore) cachedObserved() int64 { return max(s.cobs, s.m.observed) }

func (s *memTimedStore) cachedExpiredPuts() int64 { return s.cexpired + s.tb.expired }

// forgetDirty forgets the writes not written back (each dirty slot gets its
// stored value back) and the tags. NB: not named dropCached, which Restore
// calls on cache wrappers: the unwrapped store must not have it.
func (s *memTimedStore) forgetDirty() {
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
		if w.stored == nil || s.tb.isExpired(w.end, s.m.observed) {
			s.remove(d.k, i)
			continue
		}
		w.cur = w.stored
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.cobs = math.MinInt64
	// Tags live while a slot is cached: a restore empties the cache.
	for _, k := range s.keys {
		for i := range k.slots {
			k.slots[i].tag = nil
		}
	}
}

// cachedPut writes into the cached view. The caller checked the arguments
// (checkPut and its kind's own checks).
func (s *memTimedStore) cachedPut(key []byte, start, end int64, value []byte, tag any, setTag bool) error {
	if s.tb.isExpired(end, s.cachedObserved()) {
		s.cexpired++
		return nil
	}
	if end > s.cobs {
		s.cobs = end
	}
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
	return nil
}

// compactDirty drops the writes that a later write to the same slot
// superseded.
func (s *memTimedStore) compactDirty() {
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

// flush writes the dirty slots back in the order of their last write,
// then commits. On error the slots not written back stay dirty.
func (s *memTimedStore) flush(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
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
	return s.base.Flush(ctx)
}

// writeBack writes one listed write back if it is live: as the store
// below a cache would take it, then tells the listener. On error the slot
// stays dirty.
func (s *memTimedStore) writeBack(d memTimedDirty) error {
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
	if s.tb.isExpired(end, s.m.observed) {
		// Expired while dirty: the store drops it (see
		// memTimedKind.tellExpired). Its old value is gone with the slot.
		s.cexpired++
		if s.kind.tellExpired && s.listener != nil && value != nil {
			if err := s.listener(s.kscratch, start, end, value, nil, w.tag); err != nil {
				return err
			}
		}
		s.clean(k, start, end, i, d.seq, true)
		return nil
	}
	old, tag := w.stored, w.tag
	s.cbuf = s.kind.appendChangelogKey(s.cbuf[:0], s.kscratch, start, end)
	if err := s.logChange(s.cbuf, value); err != nil {
		return err
	}
	s.advance(end)
	if s.listener != nil && (value != nil || old != nil) {
		if err := s.listener(s.kscratch, start, end, value, old, tag); err != nil {
			return err
		}
	}
	s.clean(k, start, end, i, d.seq, value == nil)
	return nil
}

// clean marks k's slot (start, end) written back, unless it was written
// again meanwhile (by a listener), and removes it if gone.
func (s *memTimedStore) clean(k *memTimedKey, start, end int64, hint int, seq uint64, gone bool) {
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
