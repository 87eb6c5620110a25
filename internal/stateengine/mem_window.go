package stateengine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/state"
	"math"
	"slices"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// memWindowStore is the in-memory WindowStore: a hash map from each key to
// its windows (sorted by start), and per time segment the keys that got a
// window in it, so that expiry drops whole segments without a scan. A point
// read or write costs one map lookup, none when the key is the one used
// last (an aggregation reads a window and writes it back at once). Ordered
// iteration is built on demand.
//
// Wrapped by a Cache (memWindowCached), the store caches in place: each
// window keeps its current value (cur) beside the value written back last
// (stored), and the dirty windows are listed in the order of their last
// write. A flush writes them back in that order, each as a cache in front
// of a store would: changelog, stream time and expiry, then the listener
// with the new and the old value. Reads through the wrapper see cur, reads
// of the store itself see stored. There is no second copy of an entry, and
// no eviction: the values are in memory either way.
type memWindowStore struct {
	*base
	tb   timeBox
	keys map[string]*memWinKey
	// last is the key last looked up or written, or nil. Invariant: if
	// set, it is in keys.
	last *memWinKey
	// lastWin is the index in last of the window last found, a hint
	// (checked before use).
	lastWin int
	// segs lists, per time segment, the keys that got a window in it; a
	// key may be listed twice, or after it left keys (then with no
	// windows).
	segs map[int64][]*memWinKey
	cbuf []byte

	// The cache's part, in use once wrapped.
	wrapped  bool
	listener WindowTagListener
	// cobs is the largest window start put through the cache.
	cobs     int64
	cexpired int64
	// dirty lists the writes to dirty windows in order; a write is live
	// while its window is dirty with the same seq, older writes to the
	// window are skipped (and compacted away).
	dirty    []memDirty
	ndirty   int
	seq      uint64
	flushing bool
	// kscratch hands keys to the listener.
	kscratch []byte
}

type memWinKey struct {
	key  string
	wins []memWin // sorted by start
}

// memWin is one window of a key.
type memWin struct {
	start int64
	// cur is the current value (nil: deleted, a dirty tombstone); stored
	// is the value written back last (nil: absent). While the window is
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

type memDirty struct {
	k     *memWinKey
	start int64
	seq   uint64
}

func newMemWindowStore(b *base) *memWindowStore {
	s := &memWindowStore{base: b, keys: map[string]*memWinKey{}, segs: map[int64][]*memWinKey{}, cobs: math.MinInt64}
	s.tb = newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed)
	b.onReload = func() {
		s.tb = newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed)
		s.relist()
	}
	b.onWipe = s.clear
	return s
}

// relist rebuilds the segment listings from the windows. A reload can
// lower stream time below the point where advance dropped a segment's
// listing while keeping its dirty windows; once live again, such a window
// would never be dropped.
func (s *memWindowStore) relist() {
	clear(s.segs)
	for _, k := range s.keys {
		for i := range k.wins {
			sg := s.tb.seg(k.wins[i].start)
			if i == 0 || s.tb.seg(k.wins[i-1].start) != sg {
				s.segs[sg] = append(s.segs[sg], k)
			}
		}
	}
}

func (s *memWindowStore) clear() {
	clear(s.keys)
	clear(s.segs)
	s.last = nil
	s.dirty, s.ndirty = s.dirty[:0], 0
}

// search returns the index of the first window of k starting at or after
// start, and whether it starts at start.
func (k *memWinKey) search(start int64) (int, bool) {
	lo, hi := 0, len(k.wins)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if k.wins[m].start < start {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(k.wins) && k.wins[lo].start == start
}

func (s *memWindowStore) find(key []byte) *memWinKey {
	if l := s.last; l != nil && l.key == string(key) {
		return l
	}
	k := s.keys[string(key)]
	if k != nil {
		s.last = k
	}
	return k
}

// window returns key's window at start, or nil.
func (s *memWindowStore) window(key []byte, start int64) *memWin {
	k := s.find(key)
	if k == nil {
		return nil
	}
	if i, ok := k.search(start); ok {
		s.lastWin = i
		return &k.wins[i]
	}
	return nil
}

// at returns the index of k's window at start, trying hint first.
func (k *memWinKey) at(start int64, hint int) (int, bool) {
	if hint >= 0 && hint < len(k.wins) && k.wins[hint].start == start {
		return hint, true
	}
	return k.search(start)
}

// insert returns key's window at start, creating it (cur and stored nil,
// clean) if absent. The pointer is valid until the key's windows change.
func (s *memWindowStore) insert(key []byte, start int64) (*memWinKey, *memWin) {
	k := s.find(key)
	if k == nil {
		k = &memWinKey{key: string(key)}
		s.keys[k.key] = k
		s.last = k
	}
	hint := -1
	if k == s.last {
		hint = s.lastWin
	}
	i, ok := k.at(start, hint)
	if !ok {
		sg := s.tb.seg(start)
		listed := (i > 0 && s.tb.seg(k.wins[i-1].start) == sg) || (i < len(k.wins) && s.tb.seg(k.wins[i].start) == sg)
		if !listed {
			s.segs[sg] = append(s.segs[sg], k)
		}
		k.wins = slices.Insert(k.wins, i, memWin{start: start})
	}
	s.lastWin = i
	return k, &k.wins[i]
}

// remove deletes window i of k, and k if it has no windows left.
func (s *memWindowStore) remove(k *memWinKey, i int) {
	k.wins = slices.Delete(k.wins, i, i+1)
	if len(k.wins) == 0 {
		s.forgetKey(k)
	}
}

func (s *memWindowStore) forgetKey(k *memWinKey) {
	if s.keys[k.key] == k {
		delete(s.keys, k.key)
	}
	if s.last == k {
		s.last = nil
	}
}

// setValue copies v into buf when it fits, else into a new slice; the
// result is never nil.
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

func setValue(buf, v []byte) []byte {
	if buf != nil && cap(buf) >= len(v) {
		return append(buf[:0], v...)
	}
	return append(make([]byte, 0, len(v)), v...)
}

// advance raises the store's observed stream time to start and drops the
// segments that became wholly expired. Dirty windows stay until their
// write-back, which finds them expired.
func (s *memWindowStore) advance(start int64) {
	if start <= s.m.observed {
		return
	}
	s.m.observed = start
	cs := s.tb.seg(s.tb.cutoff(start))
	if cs <= s.tb.dropped {
		return
	}
	s.tb.dropped = cs
	for sg, ks := range s.segs {
		if sg >= cs {
			continue
		}
		delete(s.segs, sg)
		for _, k := range ks {
			keep := k.wins[:0]
			for _, w := range k.wins {
				if w.dirty || s.tb.seg(w.start) >= cs {
					keep = append(keep, w)
				}
			}
			clear(k.wins[len(keep):])
			k.wins = keep
			if len(keep) == 0 {
				s.forgetKey(k)
			}
		}
	}
}

func (s *memWindowStore) ObservedStreamTime() int64 { return s.m.observed }
func (s *memWindowStore) ExpiredPuts() int64        { return s.tb.expired }

// Put writes through: store, stream time, changelog.
func (s *memWindowStore) Put(key []byte, start int64, value []byte) error {
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
	s.apply(key, start, value)
	s.cbuf = layout.AppendWindowChangelogKey(s.cbuf[:0], key, start)
	return s.logChange(s.cbuf, value)
}

// apply writes a change to the stored values (no changelog) and advances
// stream time. Restore calls it directly.
func (s *memWindowStore) apply(key []byte, start int64, value []byte) {
	if start < s.tb.cutoff(s.m.observed) {
		return
	}
	if value == nil {
		if k := s.find(key); k != nil {
			if i, ok := k.search(start); ok {
				if w := &k.wins[i]; w.dirty {
					w.stored = nil
				} else {
					s.remove(k, i)
				}
			}
		}
	} else {
		_, w := s.insert(key, start)
		if w.dirty {
			w.stored = setValue(w.stored, value)
		} else {
			w.cur = setValue(w.cur, value)
			w.stored = w.cur
		}
	}
	s.advance(start)
}

func (s *memWindowStore) applyChange(key, value []byte) error {
	k, start, err := layout.ParseWindowChangelogKey(key)
	if err != nil {
		return fmt.Errorf("window changelog key of %d bytes: %w", len(key), err)
	}
	if len(k) == 0 {
		return errors.New("window changelog key has an empty user key")
	}
	s.apply(k, start, value)
	return nil
}

func (s *memWindowStore) Get(key []byte, start int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if start < s.tb.cutoff(s.m.observed) || start > s.m.observed {
		return nil, nil
	}
	if w := s.window(key, start); w != nil && w.stored != nil {
		return append(make([]byte, 0, len(w.stored)), w.stored...), nil
	}
	return nil, nil
}

// clampTo narrows [from, to] to the live times as of observed.
func (s *memWindowStore) clampTo(observed, from, to int64) (int64, int64, bool) {
	if observed == math.MinInt64 {
		return 0, 0, false
	}
	from = max(from, s.tb.cutoff(observed))
	to = min(to, observed)
	return from, to, from <= to
}

func (s *memWindowStore) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.fetch(false, s.m.observed, key, timeFrom, timeTo, reverse), nil
}

func (s *memWindowStore) FetchAll(timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.fetchAll(false, s.m.observed, timeFrom, timeTo, reverse), nil
}

func (s *memWindowStore) All(reverse bool) (state.WindowIterator, error) {
	return s.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

// value returns w's value in one of the two views.
func (w *memWin) value(cached bool) []byte {
	if cached {
		return w.cur
	}
	return w.stored
}

// fetch lists key's windows in [from, to] of a view (cached: the current
// values, else the stored ones) as of observed.
func (s *memWindowStore) fetch(cached bool, observed int64, key []byte, from, to int64, reverse bool) state.WindowIterator {
	from, to, ok := s.clampTo(observed, from, to)
	if !ok {
		return emptyIter{}
	}
	k := s.find(key)
	if k == nil {
		return emptyIter{}
	}
	it := &memListIter{i: -1}
	it.ents = it.inline[:0]
	kb := append(it.keyBuf[:0], key...)
	i, _ := k.search(from)
	for ; i < len(k.wins) && k.wins[i].start <= to; i++ {
		w := &k.wins[i]
		if v := w.value(cached); v != nil {
			vo, vn := it.vals.add(v, len(k.wins)-i-1)
			it.ents = append(it.ents, memListEnt{key: kb, start: w.start, vo: vo, vn: vn})
		}
	}
	if reverse {
		slices.Reverse(it.ents)
	}
	return it
}

// fetchAll lists every window in [from, to] of a view, ordered by time
// segment, key and start as the Pebble store's keys are.
func (s *memWindowStore) fetchAll(cached bool, observed int64, from, to int64, reverse bool) state.WindowIterator {
	from, to, ok := s.clampTo(observed, from, to)
	if !ok {
		return emptyIter{}
	}
	it := &memListIter{i: -1}
	for _, k := range s.keys {
		var kb []byte
		for i := range k.wins {
			w := &k.wins[i]
			if w.start < from || w.start > to {
				continue
			}
			if v := w.value(cached); v != nil {
				if kb == nil {
					kb = []byte(k.key)
				}
				vo, vn := it.vals.add(v, 16)
				it.ents = append(it.ents, memListEnt{key: kb, start: w.start, vo: vo, vn: vn})
			}
		}
	}
	slices.SortFunc(it.ents, func(a, b memListEnt) int {
		if c := cmp.Compare(s.tb.seg(a.start), s.tb.seg(b.start)); c != 0 {
			return c
		}
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.start, b.start)
	})
	if reverse {
		slices.Reverse(it.ents)
	}
	return it
}

// memListEnt is a window or session listed by an iterator of an in-memory
// store; its value is at vo, vn in the iterator's arena. end is a
// session's (windows leave it 0).
type memListEnt struct {
	key        []byte
	start, end int64
	vo, vn     int
}

// memListIter walks a list of windows or sessions, with copies of their values,
// taken when it was created: writes during the iteration are not seen. It
// is both a WindowIterator and a SessionIterator.
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

// memWindowCached is a memWindowStore wrapped by a Cache: see
// memWindowStore.
type memWindowCached struct{ s *memWindowStore }

func (c *memWindowCached) baseStore() *base { return c.s.base }
func (c *memWindowCached) applyChange(key, value []byte) error {
	return c.s.applyChange(key, value)
}
func (c *memWindowCached) Name() string { return c.s.Name() }

// dropCached forgets the writes not written back (each dirty window gets
// its stored value back) and the tags.
func (c *memWindowCached) dropCached() {
	s := c.s
	for _, d := range s.dirty {
		i, ok := d.k.search(d.start)
		if !ok {
			continue
		}
		w := &d.k.wins[i]
		if !w.dirty || w.seq != d.seq {
			continue
		}
		w.dirty = false
		s.ndirty--
		if w.stored == nil || w.start < s.tb.cutoff(s.m.observed) {
			s.remove(d.k, i)
			continue
		}
		w.cur = w.stored
	}
	s.dirty = s.dirty[:0]
	s.cobs = math.MinInt64
	// Tags live while a window is cached: a restore empties the cache.
	for _, k := range s.keys {
		for i := range k.wins {
			k.wins[i].tag = nil
		}
	}
}

func (c *memWindowCached) obs() int64 { return max(c.s.cobs, c.s.m.observed) }

func (c *memWindowCached) ObservedStreamTime() int64 { return c.obs() }
func (c *memWindowCached) ExpiredPuts() int64        { return c.s.cexpired + c.s.tb.expired }

func (c *memWindowCached) Put(key []byte, start int64, value []byte) error {
	return c.put(key, start, value, nil, false)
}

// PutTagged implements TaggedWindowStore.
func (c *memWindowCached) PutTagged(key []byte, start int64, value []byte, tag any) error {
	return c.put(key, start, value, tag, true)
}

// GetTagged implements TaggedWindowStore.
func (c *memWindowCached) GetTagged(key []byte, start int64) ([]byte, any, error) {
	s := c.s
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	if start < s.tb.cutoff(c.obs()) {
		return nil, nil, nil
	}
	if w := s.window(key, start); w != nil {
		return w.cur, w.tag, nil
	}
	return nil, nil, nil
}

func (c *memWindowCached) put(key []byte, start int64, value []byte, tag any, setTag bool) error {
	s := c.s
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	if start < s.tb.cutoff(c.obs()) {
		s.cexpired++
		return nil
	}
	if start > s.cobs {
		s.cobs = start
	}
	k, w := s.insert(key, start)
	if !w.dirty {
		// cur is the stored value (or nil for a new window): write the new
		// one beside it.
		w.dirty = true
		s.ndirty++
		if value == nil {
			w.cur = nil
		} else {
			w.cur = setValue(w.spare, value)
			w.spare = nil
		}
	} else {
		switch {
		case value == nil:
			if w.cur != nil {
				w.spare = w.cur
			}
			w.cur = nil
		case w.cur != nil:
			w.cur = setValue(w.cur, value)
		default:
			w.cur = setValue(w.spare, value)
			w.spare = nil
		}
	}
	if setTag {
		w.tag = tag
	}
	s.seq++
	w.seq = s.seq
	s.dirty = append(s.dirty, memDirty{k: k, start: start, seq: s.seq})
	if !s.flushing && len(s.dirty) > 2*s.ndirty+64 {
		s.compactDirty()
	}
	return nil
}

// compactDirty drops the writes that a later write to the same window
// superseded.
func (s *memWindowStore) compactDirty() {
	keep := s.dirty[:0]
	for _, d := range s.dirty {
		if i, ok := d.k.search(d.start); ok {
			if w := &d.k.wins[i]; w.dirty && w.seq == d.seq {
				keep = append(keep, d)
			}
		}
	}
	clear(s.dirty[len(keep):])
	s.dirty = keep
}

func (c *memWindowCached) Get(key []byte, start int64) ([]byte, error) {
	s := c.s
	if err := s.check(); err != nil {
		return nil, err
	}
	if start < s.tb.cutoff(c.obs()) {
		return nil, nil
	}
	if w := s.window(key, start); w != nil && w.cur != nil {
		return append(make([]byte, 0, len(w.cur)), w.cur...), nil
	}
	return nil, nil
}

func (c *memWindowCached) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.fetch(true, c.obs(), key, timeFrom, timeTo, reverse), nil
}

func (c *memWindowCached) FetchAll(timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.fetchAll(true, c.obs(), timeFrom, timeTo, reverse), nil
}

func (c *memWindowCached) All(reverse bool) (state.WindowIterator, error) {
	return c.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

// Flush writes the dirty windows back in the order of their last write,
// then commits. On error the windows not written back stay dirty.
func (c *memWindowCached) Flush(ctx context.Context) error {
	s := c.s
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
// below a cache would take it, then tells the listener. On error the
// window stays dirty.
func (s *memWindowStore) writeBack(d memDirty) error {
	k, start := d.k, d.start
	i, ok := k.search(start)
	if !ok {
		return nil
	}
	hint := i
	w := &k.wins[i]
	if !w.dirty || w.seq != d.seq {
		return nil
	}
	value := w.cur
	s.kscratch = append(s.kscratch[:0], k.key...)
	if start < s.tb.cutoff(s.m.observed) {
		// Expired while dirty: the store drops it, but the listener still
		// hears of the window's last value, which may be its final result
		// (one commit interval can span more event time than the
		// retention). Its old value is gone with the window.
		s.cexpired++
		if s.listener != nil && value != nil {
			if err := s.listener(s.kscratch, start, value, nil, w.tag); err != nil {
				return err
			}
		}
		s.clean(k, start, hint, d.seq, true)
		return nil
	}
	old, tag := w.stored, w.tag
	s.cbuf = layout.AppendWindowChangelogKey(s.cbuf[:0], s.kscratch, start)
	if err := s.logChange(s.cbuf, value); err != nil {
		return err
	}
	s.advance(start)
	if s.listener != nil && (value != nil || old != nil) {
		if err := s.listener(s.kscratch, start, value, old, tag); err != nil {
			return err
		}
	}
	s.clean(k, start, hint, d.seq, value == nil)
	return nil
}

// clean marks k's window at start written back, unless it was written
// again meanwhile (by a listener), and removes it if gone.
func (s *memWindowStore) clean(k *memWinKey, start int64, hint int, seq uint64, gone bool) {
	i, ok := k.at(start, hint)
	if !ok {
		return
	}
	w := &k.wins[i]
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

func (c *memWindowCached) Close() error {
	c.dropCached()
	return c.s.Close()
}
