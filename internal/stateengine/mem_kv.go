package stateengine

import (
	"github.com/RaduBerinde/btreemap"
)

// memBackend is the in-memory backend of a key-value store: its data is an
// entryTable, its meta a memMeta. Wrapped by a Cache, the store is cached
// in place: the cache uses the same table (cacheNS.inPlace), each entry
// keeping its current value beside the stored one, so the data is held
// once and nothing is evicted. The backend's own reads and writes (the
// store's, and Restore's) see and change the stored values.
type memBackend struct {
	memMeta
	tab *entryTable
	// wrapped is set once a cache caches the table in place.
	wrapped bool
}

func newMemBackend(m meta) *memBackend {
	return &memBackend{memMeta: memMeta{m: m}, tab: newEntryTable()}
}

func (b *memBackend) get(key []byte) ([]byte, error) {
	if en := b.tab.lookup(key); en != nil {
		if v := en.stored(); v != nil {
			return append(make([]byte, 0, len(v)), v...), nil
		}
	}
	return nil, nil
}

func (b *memBackend) set(key, value []byte) error {
	en := b.tab.lookup(key)
	switch {
	case en == nil:
		en = b.tab.insert(key, value)
		en.value = append(en.value, value...)
		b.tab.nstored++
	case en.dirty:
		b.tab.countStored(en.old != nil, true)
		en.old = setValue(en.old, value)
	default:
		en.value = setValue(en.value, value)
	}
	return nil
}

func (b *memBackend) del(key []byte) error {
	if en := b.tab.lookup(key); en != nil {
		b.delEntry(en)
	}
	return nil
}

func (b *memBackend) delEntry(en *centry) {
	if en.dirty {
		b.tab.countStored(en.old != nil, false)
		en.old = nil
		return
	}
	b.tab.nstored--
	b.tab.remove(en)
}

func (b *memBackend) delRange(from, to []byte) error {
	var ens []*centry
	lo, hi := btreemap.Min[string](), btreemap.Max[string]()
	if from != nil {
		lo = btreemap.GE(string(from))
	}
	if to != nil {
		hi = btreemap.LT(string(to))
	}
	for _, en := range b.tab.ordered().Ascend(lo, hi) {
		ens = append(ens, en)
	}
	for _, en := range ens {
		b.delEntry(en)
	}
	return nil
}

func (b *memBackend) iter(lower, upper []byte, reverse bool) (rawIter, error) {
	return newMemIter(b.tab, false, lower, upper, reverse), nil
}

func (b *memBackend) count() (int64, error) { return b.tab.nstored, nil }

func (b *memBackend) wipe() error {
	b.tab.clear()
	return b.memMeta.wipe()
}

// memIter walks a table's entries in key order in one of its views (see
// centry.view), in chunks (the first one small: most iterators read a few
// entries), each chunk seeking afresh from the last key it returned, so
// writes during the iteration are safe. A chunk holds copies of its
// values (a write may overwrite an entry's buffer in place): a value is
// the one the entry had when its chunk was read.
type memIter struct {
	tab       *entryTable
	cached    bool
	reverse   bool
	from, to  string
	hasFrom   bool
	hasTo     bool
	started   bool
	exhausted bool // the last fill reached the end of the range
	done      bool
	buf       []memPair
	vals      valArena
	first     [memIterFirstChunk]memPair
	pos       int
	last      string
	k, v      []byte
}

// memIter reads memIterFirstChunk entries first, memIterChunk per chunk
// after that.
const (
	memIterChunk      = 64
	memIterFirstChunk = 4
)

// memPair is an entry of a chunk; its value is at vo, vn in the
// iterator's arena. key is the entry's, which never changes.
type memPair struct {
	key    string
	vo, vn int
}

// newMemIter iterates [from, to) of tab (nil bounds are open).
func newMemIter(tab *entryTable, cached bool, from, to []byte, reverse bool) *memIter {
	it := &memIter{tab: tab, cached: cached, reverse: reverse, hasFrom: from != nil, hasTo: to != nil}
	it.from, it.to = string(from), string(to)
	if it.hasFrom && it.hasTo && it.from >= it.to {
		it.done = true
	}
	return it
}

func (it *memIter) fill() {
	limit := memIterChunk
	if !it.started {
		limit = memIterFirstChunk
	}
	switch {
	case limit == memIterFirstChunk:
		it.buf = it.first[:0]
	case cap(it.buf) < limit:
		it.buf = make([]memPair, 0, limit)
	}
	it.buf, it.pos = it.buf[:0], 0
	it.vals.reset()
	t := it.tab.ordered()
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
	for k, en := range seq {
		if v := en.view(it.cached); v != nil {
			vo, vn := it.vals.add(v, limit-len(it.buf)-1)
			it.buf = append(it.buf, memPair{k, vo, vn})
			if len(it.buf) == limit {
				break
			}
		}
	}
	it.exhausted = len(it.buf) < limit
}

func (it *memIter) next() bool {
	if it.done {
		return false
	}
	if it.pos >= len(it.buf) {
		if it.started && it.exhausted {
			it.done, it.k, it.v = true, nil, nil
			return false
		}
		it.fill()
		it.started = true
		if len(it.buf) == 0 {
			it.done, it.k, it.v = true, nil, nil
			return false
		}
	}
	p := it.buf[it.pos]
	it.pos++
	it.last = p.key
	it.k, it.v = append(it.k[:0], p.key...), it.vals.at(p.vo, p.vn)
	return true
}

func (it *memIter) key() []byte   { return it.k }
func (it *memIter) value() []byte { return it.v }

func (it *memIter) err() error   { return nil }
func (it *memIter) close() error { it.done = true; return nil }
