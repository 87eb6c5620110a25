package stateengine

import (
	"bytes"
	"slices"
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
	// m holds the entries by key; nil in a grouped table (groups).
	m map[string]*centry
	// groups, in the table of a timed store's cache (newGroupedTable),
	// holds the entries instead of m: by the escaped user key inside
	// their keys, each key's in (end, start) order, the store's order of
	// one key's entries. A lookup hashes the user key and scans its few
	// entries; a fetch of one key walks them with no B-tree and no merge
	// (cachedTimed.fetchKey). kind splits the keys; n counts the entries.
	groups map[string][]keySlot
	kind   *timedKind
	n      int
	// In a grouped table, missKey is the key the last lookup did not
	// find, and missGroup its group then, while missed is set: until the
	// next insert or removal. A window store's Get before its Put looks a
	// new key up twice, and the insert needs the group again.
	missKey   []byte
	missGroup []keySlot
	missed    bool
	t         *btreemap.BTreeMap[string, *centry]
	// last is the entry last looked up or inserted, or nil: an aggregation
	// reads a key and writes it back at once, and comparing the key with
	// last.key is cheaper than hashing it again. Invariant: if set, it is
	// in the table.
	last *centry
	// nstored counts the entries with a stored value (see centry.stored);
	// kept for an in-memory store's table only.
	nstored int64
}

func newEntryTable() *entryTable { return &entryTable{m: map[string]*centry{}} }

// newGroupedTable returns a table of the entries of a timed store's
// cache, whose keys are in kind's layout, grouped by user key.
func newGroupedTable(kind *timedKind) *entryTable {
	return &entryTable{groups: map[string][]keySlot{}, kind: kind}
}

// keySlot is one entry of a grouped table, with its times.
type keySlot struct {
	en         *centry
	start, end int64
}

// before reports whether s orders before (end, start).
func (s keySlot) before(end, start int64) bool {
	return s.end < end || s.end == end && s.start < start
}

// group returns the entries of the escaped user key ek in a grouped
// table.
func (t *entryTable) group(ek []byte) []keySlot { return t.groups[string(ek)] }

// lookup returns key's entry, or nil.
func (t *entryTable) lookup(key []byte) *centry {
	if l := t.last; l != nil && bytes.Equal(l.key, key) {
		return l
	}
	var en *centry
	if t.groups != nil {
		if t.missed && bytes.Equal(t.missKey, key) {
			return nil
		}
		ek, start, end := t.kind.splitKey(key)
		g := t.groups[string(ek)]
		for _, sl := range g {
			if sl.end == end && sl.start == start {
				en = sl.en
				break
			}
		}
		if en == nil {
			t.missKey, t.missGroup, t.missed = append(t.missKey[:0], key...), g, true
		}
	} else {
		en = t.m[string(key)]
	}
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
	if t.groups != nil {
		// NB: the group's map key aliases the entry's key, never written.
		ek, start, end := t.kind.splitKey(k)
		g := viewString(ek)
		var s []keySlot
		if t.missed && bytes.Equal(t.missKey, k) {
			s = t.missGroup
		} else {
			s = t.groups[g]
		}
		t.missed, t.missGroup = false, nil
		i := len(s)
		for i > 0 && !s[i-1].before(end, start) {
			i--
		}
		t.groups[g] = slices.Insert(s, i, keySlot{en: en, start: start, end: end})
		t.n++
	} else {
		t.m[string(k)] = en
	}
	if t.t != nil {
		t.t.ReplaceOrInsert(viewString(k), en)
	}
	t.last = en
	return en
}

// all yields every entry, in no order; the caller may remove the entry
// it is given.
func (t *entryTable) all(yield func(*centry) bool) {
	if t.groups == nil {
		for _, en := range t.m {
			if !yield(en) {
				return
			}
		}
		return
	}
	for _, s := range t.groups {
		// NB: a removal shifts the group's slice under the loop: walk a
		// copy of the group.
		for _, sl := range slices.Clone(s) {
			if !yield(sl.en) {
				return
			}
		}
	}
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
	if t.groups != nil {
		t.removeGrouped(en)
	} else {
		delete(t.m, string(en.key))
	}
	if t.t != nil {
		t.t.Delete(viewString(en.key))
	}
}

// ordered returns the entries in key order, building the order on first
// use.
func (t *entryTable) ordered() *btreemap.BTreeMap[string, *centry] {
	if t.t == nil {
		t.t = btreemap.New[string, *centry](16, strings.Compare)
		for en := range t.all {
			t.t.ReplaceOrInsert(viewString(en.key), en)
		}
	}
	return t.t
}

func (t *entryTable) removeGrouped(en *centry) {
	t.missed, t.missGroup = false, nil
	ek, _, _ := t.kind.splitKey(en.key)
	s := t.groups[string(ek)]
	i := slices.IndexFunc(s, func(sl keySlot) bool { return sl.en == en })
	if i < 0 {
		return
	}
	t.n--
	if len(s) == 1 {
		delete(t.groups, string(ek))
		return
	}
	t.groups[string(ek)] = slices.Delete(s, i, i+1)
}

// clear empties the table.
func (t *entryTable) clear() {
	clear(t.m)
	clear(t.groups)
	t.t, t.last, t.nstored, t.n = nil, nil, 0, 0
	t.missed, t.missGroup = false, nil
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
