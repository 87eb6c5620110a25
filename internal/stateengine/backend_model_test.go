package stateengine

import (
	"maps"
	"slices"
)

// modelBackend is the trivial model the Pebble backend is compared with: a
// Go map, every write applied at once, iterators over a sorted snapshot
// (the tests do not write while an iterator is open).
type modelBackend struct {
	kv map[string][]byte
	m  meta
}

func newModelBackend() *modelBackend {
	return &modelBackend{kv: map[string][]byte{}, m: zeroMeta}
}

func (b *modelBackend) get(key []byte) ([]byte, error) {
	v, ok := b.kv[string(key)]
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

func (b *modelBackend) set(key, value []byte) error {
	b.kv[string(key)] = append([]byte{}, value...)
	return nil
}

func (b *modelBackend) del(key []byte) error {
	delete(b.kv, string(key))
	return nil
}

// inRange reports whether k is in [lo, hi); nil bounds are open.
func inRange(k string, lo, hi []byte) bool {
	return (lo == nil || k >= string(lo)) && (hi == nil || k < string(hi))
}

func (b *modelBackend) delRange(from, to []byte) error {
	for k := range b.kv {
		if inRange(k, from, to) {
			delete(b.kv, k)
		}
	}
	return nil
}

func (b *modelBackend) iter(lower, upper []byte, reverse bool) (rawIter, error) {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(b.kv)) {
		if inRange(k, lower, upper) {
			keys = append(keys, k)
		}
	}
	if reverse {
		slices.Reverse(keys)
	}
	it := &modelIter{i: -1}
	for _, k := range keys {
		it.keys = append(it.keys, []byte(k))
		it.vals = append(it.vals, b.kv[k])
	}
	return it, nil
}

func (b *modelBackend) count() (int64, error)   { return int64(len(b.kv)), nil }
func (b *modelBackend) pending() int            { return 0 }
func (b *modelBackend) commit(m meta) error     { b.m = m; return nil }
func (b *modelBackend) loadMeta() (meta, error) { return b.m, nil }
func (b *modelBackend) wipe() error             { clear(b.kv); b.m = zeroMeta; return nil }
func (b *modelBackend) bulk()                   {}
func (b *modelBackend) close() error            { return nil }

type modelIter struct {
	keys, vals [][]byte
	i          int
}

func (it *modelIter) next() bool {
	if it.i+1 >= len(it.keys) {
		it.i = len(it.keys)
		return false
	}
	it.i++
	return true
}
func (it *modelIter) key() []byte   { return it.keys[it.i] }
func (it *modelIter) value() []byte { return it.vals[it.i] }
func (it *modelIter) err() error    { return nil }
func (it *modelIter) close() error  { return nil }
