package stateengine

import (
	"bytes"

	"github.com/RaduBerinde/btreemap"
)

// memBackend keeps a store in an in-memory B-tree. Writes apply at once;
// commit only records the meta (an in-memory store does not survive its
// process, so there is nothing to make atomic).
type memBackend struct {
	t     *btreemap.BTreeMap[[]byte, []byte]
	m     meta
	dirty int
}

func newMemBackend() *memBackend {
	return &memBackend{t: btreemap.New[[]byte, []byte](16, bytes.Compare), m: zeroMeta}
}

func (b *memBackend) get(key []byte) ([]byte, error) {
	_, v, ok := b.t.Get(key)
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

func (b *memBackend) set(key, value []byte) error {
	// One allocation for both; neither is ever modified in place.
	buf := make([]byte, len(key)+len(value))
	k := buf[:len(key):len(key)]
	copy(k, key)
	v := buf[len(key):]
	copy(v, value)
	b.t.ReplaceOrInsert(k, v)
	b.dirty += len(k) + len(v)
	return nil
}

func (b *memBackend) del(key []byte) error {
	b.t.Delete(key)
	b.dirty += len(key)
	return nil
}

func (b *memBackend) delRange(from, to []byte) error {
	var keys [][]byte
	for k := range b.t.Ascend(btreemap.GE(from), btreemap.LT(to)) {
		keys = append(keys, k)
	}
	for _, k := range keys {
		b.t.Delete(k)
	}
	return nil
}

func (b *memBackend) iter(lower, upper []byte, reverse bool) (rawIter, error) {
	return &memIter{t: b.t, lower: lower, upper: upper, reverse: reverse}, nil
}

func (b *memBackend) count() (int64, error) { return int64(b.t.Len()), nil }
func (b *memBackend) pending() int          { return b.dirty }
func (b *memBackend) commit(m meta) error   { b.m = m; b.dirty = 0; return nil }
func (b *memBackend) loadMeta() (meta, error) {
	return b.m, nil
}
func (b *memBackend) wipe() error  { b.t.Clear(false); b.m = zeroMeta; b.dirty = 0; return nil }
func (b *memBackend) bulk()        {}
func (b *memBackend) close() error { return nil }

// memIter reads the tree in chunks of memIterChunk entries, each chunk
// seeking afresh from the last key it returned, so the tree may change
// under it (writes during iteration are allowed). Keys and values in the
// tree are never modified in place, so buffered slices stay valid.
type memIter struct {
	t            *btreemap.BTreeMap[[]byte, []byte]
	lower, upper []byte
	reverse      bool
	started      bool
	exhausted    bool // the last fill reached the end of the range
	done         bool
	buf          []memKV
	first        [memIterFirstChunk]memKV // backs the first, small chunk
	pos          int
	k, v         []byte
}

type memKV struct{ k, v []byte }

const (
	memIterChunk      = 64
	memIterFirstChunk = 4
)

func (it *memIter) fill() {
	// Most iterators (a window fetch of one key) see a few entries: the
	// first chunk is small, later ones full size.
	limit := memIterChunk
	if !it.started {
		limit = memIterFirstChunk
	}
	switch {
	case limit == memIterFirstChunk:
		it.buf = it.first[:0]
	case cap(it.buf) < limit:
		it.buf = make([]memKV, 0, limit)
	}
	it.buf, it.pos = it.buf[:0], 0
	if !it.reverse {
		lo := btreemap.Min[[]byte]()
		if it.started {
			lo = btreemap.GT(it.k)
		} else if it.lower != nil {
			lo = btreemap.GE(it.lower)
		}
		hi := btreemap.Max[[]byte]()
		if it.upper != nil {
			hi = btreemap.LT(it.upper)
		}
		for k, v := range it.t.Ascend(lo, hi) {
			it.buf = append(it.buf, memKV{k, v})
			if len(it.buf) == limit {
				break
			}
		}
	} else {
		hi := btreemap.Max[[]byte]()
		if it.started {
			hi = btreemap.LT(it.k)
		} else if it.upper != nil {
			hi = btreemap.LT(it.upper)
		}
		lo := btreemap.Min[[]byte]()
		if it.lower != nil {
			lo = btreemap.GE(it.lower)
		}
		for k, v := range it.t.Descend(hi, lo) {
			it.buf = append(it.buf, memKV{k, v})
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
			it.done = true
			it.k, it.v = nil, nil
			return false
		}
		it.fill()
		if len(it.buf) == 0 {
			it.done = true
			it.k, it.v = nil, nil
			return false
		}
	}
	it.started = true
	e := it.buf[it.pos]
	it.pos++
	it.k, it.v = e.k, e.v
	return true
}

func (it *memIter) key() []byte   { return it.k }
func (it *memIter) value() []byte { return it.v }
func (it *memIter) err() error    { return nil }
func (it *memIter) close() error  { it.done = true; return nil }
