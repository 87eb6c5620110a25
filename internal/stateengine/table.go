package stateengine

import (
	"bytes"
	"strings"

	"github.com/RaduBerinde/btreemap"
)

// entryTable is a hash map of entries (centry). It is both the data of an
// in-memory key-value store (memBackend) and the entries a Cache keeps for
// one store: in front of a Pebble store the cache has a table of its own,
// in front of an in-memory store it uses the store's table, so the store's
// data is cached in place, with no second copy (see cacheNS.inPlace).
//
// Key order, which only iterators need, is a B-tree built by the first
// iterator and kept up to date from then on: a table no one iterates (an
// aggregation's) costs a map lookup per read or write.
type entryTable struct {
	m map[string]*centry
	t *btreemap.BTreeMap[string, *centry]
	// last is the entry last looked up or inserted, or nil: an aggregation
	// reads a key and writes it back at once, and comparing the key with
	// last.key is cheaper than hashing it again. Invariant: if set, it is
	// in m.
	last *centry
	// nstored counts the entries with a stored value (see centry.stored);
	// kept for an in-memory store's table only.
	nstored int64
}

func newEntryTable() *entryTable { return &entryTable{m: map[string]*centry{}} }

// lookup returns key's entry, or nil.
func (t *entryTable) lookup(key []byte) *centry {
	if l := t.last; l != nil && bytes.Equal(l.key, key) {
		return l
	}
	en := t.m[string(key)]
	if en != nil {
		t.last = en
	}
	return en
}

// insert adds a clean entry for key, which is absent, holding value (nil:
// none yet); key and value are copied into one allocation.
func (t *entryTable) insert(key, value []byte) *centry {
	buf := make([]byte, len(key)+len(value))
	k := buf[:len(key):len(key)]
	copy(k, key)
	en := &centry{key: k}
	if value != nil {
		en.value = buf[len(key):len(key)]
	}
	sk := string(k)
	t.m[sk] = en
	if t.t != nil {
		t.t.ReplaceOrInsert(sk, en)
	}
	t.last = en
	return en
}

// remove deletes en from the table and marks it gone.
func (t *entryTable) remove(en *centry) {
	if en.gone {
		return
	}
	en.gone = true
	if t.last == en {
		t.last = nil
	}
	delete(t.m, string(en.key))
	if t.t != nil {
		t.t.Delete(viewString(en.key))
	}
}

// ordered returns the entries in key order, building the order on first
// use.
func (t *entryTable) ordered() *btreemap.BTreeMap[string, *centry] {
	if t.t == nil {
		t.t = btreemap.New[string, *centry](16, strings.Compare)
		for k, en := range t.m {
			t.t.ReplaceOrInsert(k, en)
		}
	}
	return t.t
}

// clear empties the table.
func (t *entryTable) clear() {
	clear(t.m)
	t.t, t.last, t.nstored = nil, nil, 0
}

// countStored records that an entry's stored value went from present
// (had) or absent to present (has) or absent.
func (t *entryTable) countStored(had, has bool) {
	switch {
	case has && !had:
		t.nstored++
	case had && !has:
		t.nstored--
	}
}

// stored returns the value of an entry of an in-memory store as the store
// holds it (nil: absent): a clean entry's value, or a dirty one's old
// value (in place, always known).
func (en *centry) stored() []byte {
	if en.dirty {
		return en.old
	}
	return en.value
}

// view returns en's value in the cached view (its current value) or the
// stored one.
func (en *centry) view(cached bool) []byte {
	if cached {
		return en.value
	}
	return en.stored()
}
