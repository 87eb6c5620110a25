package state

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
	k := append([]byte(nil), key...)
	v := append(make([]byte, 0, len(value)), value...)
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

// memIter seeks afresh on every step from the last key it returned, so the
// tree may change under it (writes during iteration are allowed).
type memIter struct {
	t            *btreemap.BTreeMap[[]byte, []byte]
	lower, upper []byte
	reverse      bool
	started      bool
	done         bool
	k, v         []byte
}

func (it *memIter) next() bool {
	if it.done {
		return false
	}
	found := false
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
			it.k, it.v, found = k, v, true
			break
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
			it.k, it.v, found = k, v, true
			break
		}
	}
	it.started = true
	if !found {
		it.done = true
		it.k, it.v = nil, nil
	}
	return found
}

func (it *memIter) key() []byte   { return it.k }
func (it *memIter) value() []byte { return it.v }
func (it *memIter) err() error    { return nil }
func (it *memIter) close() error  { it.done = true; return nil }
