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
	// m holds the entries by key; nil in a grouped table (groups).
	m map[string]*centry
	// groups, in the table of a timed store's cache (newGroupedTable),
	// holds the entries instead of m: by the escaped user key inside
	// their keys, the latest of the key's entries, each linked to the
	// next earlier one (centry.gnext, and back by centry.gprev) in
	// descending (end, start) order. A lookup hashes the user key and
	// walks its entries from the latest, where an aggregation's and a
	// join's reads and writes are; a fetch of one key walks them with no
	// B-tree and no merge (cachedTimed.fetchKey). kind splits the keys.
	groups map[string]*centry
	kind   *timedKind
	// In a grouped table, missKey is the key the last lookup did not
	// find, and missHead its group's first entry then, while missed is
	// set: until the next insert or removal. A window store's Get before
	// its Put looks a new key up twice, and the insert needs the group
	// again.
	missKey  []byte
	missHead *centry
	missed   bool
	t        *btreemap.BTreeMap[string, *centry]
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
	return &entryTable{groups: map[string]*centry{}, kind: kind}
}

// before reports whether en orders before (end, start) in its group.
func (en *centry) before(end, start int64) bool {
	return en.end < end || en.end == end && en.start < start
}

// group returns the first entry of the escaped user key ek in a grouped
// table, or nil.
func (t *entryTable) group(ek []byte) *centry { return t.groups[string(ek)] }

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
		head := t.groups[string(ek)]
		for e := head; e != nil && e.end >= end; e = e.gnext {
			if e.end == end && e.start == start {
				en = e
				break
			}
		}
		if en == nil {
			t.missKey, t.missHead, t.missed = append(t.missKey[:0], key...), head, true
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
		en.start, en.end = start, end
		var head *centry
		if t.missed && bytes.Equal(t.missKey, k) {
			head = t.missHead
		} else {
			head = t.groups[viewString(ek)]
		}
		t.missed, t.missHead = false, nil
		if head == nil || head.before(end, start) {
			en.gnext = head
			if head != nil {
				head.gprev = en
			}
			t.groups[viewString(ek)] = en
		} else {
			prev := head
			for prev.gnext != nil && !prev.gnext.before(end, start) {
				prev = prev.gnext
			}
			en.gnext, en.gprev, prev.gnext = prev.gnext, prev, en
			if en.gnext != nil {
				en.gnext.gprev = en
			}
		}
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
	for _, head := range t.groups {
		// NB: the yielded entry may be removed: step past it first.
		for en := head; en != nil; {
			next := en.gnext
			if !yield(en) {
				return
			}
			en = next
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
	t.missed, t.missHead = false, nil
	if next := en.gnext; next != nil {
		next.gprev = en.gprev
	}
	switch {
	case en.gprev != nil:
		en.gprev.gnext = en.gnext
	case en.gnext == nil:
		ek, _, _ := t.kind.splitKey(en.key)
		delete(t.groups, string(ek))
	default:
		ek, _, _ := t.kind.splitKey(en.key)
		t.groups[string(ek)] = en.gnext
	}
	en.gnext, en.gprev = nil, nil
}

// clear empties the table.
func (t *entryTable) clear() {
	clear(t.m)
	clear(t.groups)
	t.t, t.last, t.nstored = nil, nil, 0
	t.missed, t.missHead = false, nil
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
