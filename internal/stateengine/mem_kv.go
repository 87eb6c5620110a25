package stateengine

import (
	"context"
	"github.com/weir-dev/weir/state"
	"strings"

	"github.com/RaduBerinde/btreemap"
)

// memKVStore is the in-memory KeyValueStore: a hash map of entries. Key
// order, which only iterators need, is a B-tree built by the first
// iterator and maintained from then on, so a store that is never iterated
// (an aggregation's, a table's) costs a map lookup per read or write.
//
// Wrapped by a Cache (memKVCached) it caches in place, as memWindowStore
// does: each entry has its current value (cur) and the value written back
// last (stored); dirty entries are on a ring in the order of their last
// write; a flush writes them back in that order (changelog append, then
// the listener with the new and the old value). Reads through the wrapper
// see cur, reads of the store itself see stored.
type memKVStore struct {
	*base
	m map[string]*memKVEntry
	// last is the entry last looked up or written, or nil. Invariant: if
	// set, it is in m.
	last *memKVEntry
	// t orders the entries of m; nil until an iterator needs it.
	t *btreemap.BTreeMap[string, *memKVEntry]
	// nstored counts the entries with a stored value.
	nstored int64

	// The cache's part, in use once wrapped.
	wrapped  bool
	listener KeyValueTagListener
	// dirty is the sentinel of the ring of dirty entries; dirty.dnext is
	// the one whose last write is the oldest.
	dirty    memKVEntry
	ndirty   int
	kscratch []byte
}

// memKVEntry is one key of a memKVStore.
type memKVEntry struct {
	key string
	// cur is the current value (nil: deleted, a dirty tombstone); stored
	// is the value written back last (nil: absent). While the entry is
	// clean they are the same slice.
	cur, stored []byte
	// spare is a buffer for cur's next value.
	spare []byte
	dirty bool
	// seq counts the entry's writes while dirty.
	seq          uint64
	dprev, dnext *memKVEntry
	// tag is the caller's (see TaggedKeyValueStore).
	tag any
}

func newMemKVStore(b *base) *memKVStore {
	s := &memKVStore{base: b, m: map[string]*memKVEntry{}}
	s.dirty.dnext, s.dirty.dprev = &s.dirty, &s.dirty
	b.onWipe = s.clear
	return s
}

func (s *memKVStore) clear() {
	clear(s.m)
	s.t, s.last, s.nstored = nil, nil, 0
	s.dirty.dnext, s.dirty.dprev = &s.dirty, &s.dirty
	s.ndirty = 0
}

func (s *memKVStore) find(key []byte) *memKVEntry {
	if l := s.last; l != nil && l.key == string(key) {
		return l
	}
	e := s.m[string(key)]
	if e != nil {
		s.last = e
	}
	return e
}

// insert returns key's entry, creating it (clean, no values) if absent.
func (s *memKVStore) insert(key []byte) *memKVEntry {
	if e := s.find(key); e != nil {
		return e
	}
	e := &memKVEntry{key: string(key)}
	s.m[e.key] = e
	if s.t != nil {
		s.t.ReplaceOrInsert(e.key, e)
	}
	s.last = e
	return e
}

func (s *memKVStore) remove(e *memKVEntry) {
	if s.m[e.key] != e {
		return
	}
	delete(s.m, e.key)
	if s.t != nil {
		s.t.Delete(e.key)
	}
	if s.last == e {
		s.last = nil
	}
}

func (s *memKVStore) ordered() *btreemap.BTreeMap[string, *memKVEntry] {
	if s.t == nil {
		s.t = btreemap.New[string, *memKVEntry](16, strings.Compare)
		for k, e := range s.m {
			s.t.ReplaceOrInsert(k, e)
		}
	}
	return s.t
}

// setStored sets the value written back (nil: absent), keeping cur in
// step while the entry is clean; a clean entry with no value leaves.
func (s *memKVStore) setStored(e *memKVEntry, value []byte) {
	had := e.stored != nil
	switch {
	case value == nil && e.dirty:
		e.stored = nil
	case value == nil:
		e.stored, e.cur = nil, nil
		s.remove(e)
	case e.dirty:
		e.stored = setValue(e.stored, value)
	default:
		e.cur = setValue(e.cur, value)
		e.stored = e.cur
	}
	if has := e.stored != nil; has != had {
		if has {
			s.nstored++
		} else {
			s.nstored--
		}
	}
}

// apply writes a change without logging it (Restore calls it directly).
func (s *memKVStore) apply(key, value []byte) {
	if value == nil {
		if e := s.find(key); e != nil {
			s.setStored(e, nil)
		}
		return
	}
	s.setStored(s.insert(key), value)
}

func (s *memKVStore) applyChange(key, value []byte) error {
	s.apply(key, value)
	return nil
}

func (s *memKVStore) Get(key []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if e := s.find(key); e != nil && e.stored != nil {
		return append(make([]byte, 0, len(e.stored)), e.stored...), nil
	}
	return nil, nil
}

func (s *memKVStore) Put(key, value []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	s.apply(key, value)
	return s.logChange(key, value)
}

func (s *memKVStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := s.Get(key)
	if err != nil || old != nil {
		return old, err
	}
	return nil, s.Put(key, value)
}

func (s *memKVStore) Delete(key []byte) error { return s.Put(key, nil) }

func (s *memKVStore) Range(from, to []byte, reverse bool) (state.Iterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.rangeOf(false, from, to, reverse), nil
}

func (s *memKVStore) Prefix(prefix []byte, reverse bool) (state.Iterator, error) {
	return s.Range(prefix, prefixEnd(prefix), reverse)
}

func (s *memKVStore) All(reverse bool) (state.Iterator, error) { return s.Range(nil, nil, reverse) }

func (s *memKVStore) ApproximateCount() (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return s.nstored, nil
}

// rangeOf iterates [from, to) of a view (cached: the current values, else
// the stored ones).
func (s *memKVStore) rangeOf(cached bool, from, to []byte, reverse bool) state.Iterator {
	if from != nil && to != nil && string(from) >= string(to) {
		return emptyIter{}
	}
	it := &memKVIter{s: s, cached: cached, reverse: reverse, hasFrom: from != nil, hasTo: to != nil}
	it.from, it.to = string(from), string(to)
	return it
}

// view returns e's value in one of the two views (nil: absent there).
func (e *memKVEntry) view(cached bool) []byte {
	if cached {
		return e.cur
	}
	return e.stored
}

// memKVIter walks the entries in key order in chunks (the first one
// small: most iterators read a few entries), each chunk seeking afresh from
// the last key it returned, so writes during the iteration are safe. A
// chunk holds copies of its values (a write may overwrite an entry's
// buffer in place): a value is the one the entry had when its chunk was
// read.
type memKVIter struct {
	s              *memKVStore
	cached         bool
	reverse        bool
	from, to       string
	hasFrom, hasTo bool
	started        bool
	exhausted      bool // the last fill reached the end of the range
	done           bool
	buf            []memKVPair
	vals           valArena
	first          [memIterFirstChunk]memKVPair
	pos            int
	last           string
	key, value     []byte
}

// memKVIter reads memIterFirstChunk entries first, memIterChunk per chunk
// after that.
const (
	memIterChunk      = 64
	memIterFirstChunk = 4
)

// memKVPair is an entry of a chunk; its value is at vo, vn in the
// iterator's arena.
type memKVPair struct {
	key    string
	vo, vn int
}

func (it *memKVIter) fill() {
	limit := memIterChunk
	if !it.started {
		limit = memIterFirstChunk
	}
	switch {
	case limit == memIterFirstChunk:
		it.buf = it.first[:0]
	case cap(it.buf) < limit:
		it.buf = make([]memKVPair, 0, limit)
	}
	it.buf, it.pos = it.buf[:0], 0
	it.vals.reset()
	t := it.s.ordered()
	// Forward, the chunk starts after the last key returned (or at from)
	// and stops before to; in reverse it starts before the last key (or
	// before to) and stops at from.
	lo, hi := btreemap.Min[string](), btreemap.Max[string]()
	if it.hasFrom {
		lo = btreemap.GE(it.from)
	}
	if it.hasTo {
		hi = btreemap.LT(it.to)
	}
	if it.started {
		if it.reverse {
			hi = btreemap.LT(it.last)
		} else {
			lo = btreemap.GT(it.last)
		}
	}
	seq := t.Ascend(lo, hi)
	if it.reverse {
		seq = t.Descend(hi, lo)
	}
	for k, e := range seq {
		if v := e.view(it.cached); v != nil {
			vo, vn := it.vals.add(v, limit-len(it.buf)-1)
			it.buf = append(it.buf, memKVPair{k, vo, vn})
			if len(it.buf) == limit {
				break
			}
		}
	}
	it.exhausted = len(it.buf) < limit
}

func (it *memKVIter) Next() bool {
	if it.done {
		return false
	}
	if it.pos >= len(it.buf) {
		if it.started && it.exhausted {
			it.done, it.key, it.value = true, nil, nil
			return false
		}
		it.fill()
		it.started = true
		if len(it.buf) == 0 {
			it.done, it.key, it.value = true, nil, nil
			return false
		}
	}
	p := it.buf[it.pos]
	it.pos++
	it.last = p.key
	it.key, it.value = append(it.key[:0], p.key...), it.vals.at(p.vo, p.vn)
	return true
}

func (it *memKVIter) Key() []byte   { return it.key }
func (it *memKVIter) Value() []byte { return it.value }
func (it *memKVIter) Err() error    { return nil }
func (it *memKVIter) Close() error  { it.done = true; return nil }

// memKVCached is a memKVStore wrapped by a Cache: see memKVStore.
type memKVCached struct{ s *memKVStore }

func (c *memKVCached) baseStore() *base                    { return c.s.base }
func (c *memKVCached) applyChange(key, value []byte) error { return c.s.applyChange(key, value) }
func (c *memKVCached) Name() string                        { return c.s.Name() }

// dropCached forgets the writes not written back (each dirty entry gets
// its stored value back) and the tags.
func (c *memKVCached) dropCached() {
	s := c.s
	for s.dirty.dnext != &s.dirty {
		e := s.dirty.dnext
		s.unlink(e)
		if e.stored == nil {
			s.remove(e)
			continue
		}
		e.cur = e.stored
	}
	for _, e := range s.m {
		e.tag = nil
	}
}

func (s *memKVStore) unlink(e *memKVEntry) {
	e.dprev.dnext, e.dnext.dprev = e.dnext, e.dprev
	e.dprev, e.dnext = nil, nil
	e.dirty = false
	s.ndirty--
}

// linkLast puts e last on the dirty ring.
func (s *memKVStore) linkLast(e *memKVEntry) {
	e.dprev, e.dnext = s.dirty.dprev, &s.dirty
	s.dirty.dprev.dnext = e
	s.dirty.dprev = e
}

func (c *memKVCached) Get(key []byte) ([]byte, error) {
	s := c.s
	if err := s.check(); err != nil {
		return nil, err
	}
	if e := s.find(key); e != nil && e.cur != nil {
		return append(make([]byte, 0, len(e.cur)), e.cur...), nil
	}
	return nil, nil
}

// OnWriteBack implements TaggedKeyValueStore.
func (c *memKVCached) OnWriteBack(h KeyValueTagListener) { c.s.listener = h }

// GetTagged implements TaggedKeyValueStore.
func (c *memKVCached) GetTagged(key []byte) ([]byte, any, error) {
	s := c.s
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	if e := s.find(key); e != nil {
		return e.cur, e.tag, nil
	}
	return nil, nil, nil
}

func (c *memKVCached) Put(key, value []byte) error { return c.put(key, value, nil, false) }

// PutTagged implements TaggedKeyValueStore.
func (c *memKVCached) PutTagged(key, value []byte, tag any) error {
	return c.put(key, value, tag, true)
}

func (c *memKVCached) put(key, value []byte, tag any, setTag bool) error {
	s := c.s
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	e := s.insert(key)
	e.cur, e.spare = writeCur(e.cur, e.spare, value, e.dirty)
	switch {
	case !e.dirty:
		e.dirty = true
		s.ndirty++
		s.linkLast(e)
	case s.dirty.dprev != e:
		e.dprev.dnext, e.dnext.dprev = e.dnext, e.dprev
		s.linkLast(e)
	}
	e.seq++
	if setTag {
		e.tag = tag
	}
	return nil
}

func (c *memKVCached) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := c.Get(key)
	if err != nil || old != nil {
		return old, err
	}
	return nil, c.Put(key, value)
}

func (c *memKVCached) Delete(key []byte) error { return c.Put(key, nil) }

func (c *memKVCached) Range(from, to []byte, reverse bool) (state.Iterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.rangeOf(true, from, to, reverse), nil
}

func (c *memKVCached) Prefix(prefix []byte, reverse bool) (state.Iterator, error) {
	return c.Range(prefix, prefixEnd(prefix), reverse)
}

func (c *memKVCached) All(reverse bool) (state.Iterator, error) { return c.Range(nil, nil, reverse) }

// ApproximateCount is exact: the stored values corrected by the dirty
// entries.
func (c *memKVCached) ApproximateCount() (int64, error) {
	s := c.s
	if err := s.check(); err != nil {
		return 0, err
	}
	n := s.nstored
	for e := s.dirty.dnext; e != &s.dirty; e = e.dnext {
		switch {
		case e.cur != nil && e.stored == nil:
			n++
		case e.cur == nil && e.stored != nil:
			n--
		}
	}
	return n, nil
}

// Flush writes the dirty entries back in the order of their last write,
// then commits. On error the entries not written back stay dirty.
func (c *memKVCached) Flush(ctx context.Context) error {
	s := c.s
	if err := s.check(); err != nil {
		return err
	}
	for s.dirty.dnext != &s.dirty {
		if err := s.writeBack(s.dirty.dnext); err != nil {
			return err
		}
	}
	return s.base.Flush(ctx)
}

// writeBack writes a dirty entry back: changelog, then the listener; on
// error the entry stays dirty.
func (s *memKVStore) writeBack(e *memKVEntry) error {
	value, old, seq := e.cur, e.stored, e.seq
	s.kscratch = append(s.kscratch[:0], e.key...)
	if err := s.logChange(s.kscratch, value); err != nil {
		return err
	}
	if s.listener != nil && (value != nil || old != nil) {
		if err := s.listener(s.kscratch, value, old, e.tag); err != nil {
			return err
		}
	}
	if !e.dirty || e.seq != seq {
		return nil // written again by the listener: stays dirty
	}
	s.unlink(e)
	if value == nil {
		s.setStored(e, nil)
		return nil
	}
	if old == nil {
		s.nstored++
	}
	e.spare, e.stored = old, value
	return nil
}

func (c *memKVCached) Close() error {
	c.dropCached()
	return c.s.Close()
}
