package stateengine

import (
	"bytes"
	"fmt"
	"github.com/weir-dev/weir/state"
	"unsafe"

	"github.com/RaduBerinde/btreemap"
)

// Cache is the write-back cache of one task: every cached store of the task
// keeps its dirty entries here until Flush, so a key updated many times
// between commits reaches the store, the changelog and downstream once. When
// the engine's write-cache budget fills, the least recently used entries of
// the writing task's cache are written to their store early (their
// listeners are called then). Create one per task with Engine.NewCache. Like
// the stores, a Cache belongs to the task's goroutine.
//
// Reads see the cache first: a cached store never loses a write that is
// only in the cache, and Restore drops a store's cache entries.
type Cache struct {
	e *Engine
	// lru is a ring through every entry of the cache; lru.next is the most
	// recently used.
	lru centry
	// used is the bytes this cache holds (its share of e.cacheUsed).
	used int64
	// evicting guards against re-entrant eviction from a listener.
	evicting bool
}

// entryOverhead is what an entry costs on the Go heap beyond its key and
// value buffers: the centry (rounded up to its allocation size class) and
// its slot in the table's map (a string header and a pointer, at the
// map's load and growth: 43-58 bytes measured). TestCacheAccountsWhatItHolds
// checks the sum against the heap.
var entryOverhead = allocSize(int(unsafe.Sizeof(centry{}))) + 52

// sizeClasses are the Go allocator's small-object size classes (up to 32
// KiB); larger objects take whole 8 KiB pages.
var sizeClasses = [...]int32{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
	2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880,
	12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// smallSizes[(n+7)/8] is allocSize(n) for n up to 1 KiB, without a search.
var smallSizes = func() (t [1024/8 + 1]int32) {
	c := 0
	for i := range t {
		for int(sizeClasses[c]) < i*8 {
			c++
		}
		t[i] = sizeClasses[c]
	}
	return t
}()

// allocSize is the heap bytes an allocation of n bytes takes.
func allocSize(n int) int64 {
	switch {
	case n <= 0:
		return 0
	case n <= 1024:
		return int64(smallSizes[(n+7)>>3])
	case n > 32768:
		return int64((n + 8191) &^ 8191)
	}
	lo, hi := 0, len(sizeClasses)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if int(sizeClasses[mid]) < n {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return int64(sizeClasses[lo])
}

// centry is one cached key of one store.
type centry struct {
	ns    *cacheNS
	key   []byte // the store's cache key (see each wrapper)
	value []byte // nil: deleted (a dirty tombstone)
	// old is the store's value below while the entry is dirty, when known:
	// oldKnown is set when a clean entry (a copy of what the store holds)
	// turns dirty, so that the flush need not read the old value back.
	old []byte
	// tag is the caller's (see TaggedKeyValueStore).
	tag  any
	size int64
	// seq counts the entry's dirty writes: a write-back leaves an entry
	// written again during it dirty. NB: 32 bits are enough, as it is
	// only compared across one write-back (a wrap needs 2^32 writes of
	// the entry during its own write-back), and with the flags beside it
	// the struct fits a smaller size class.
	seq      uint32
	dirty    bool
	oldKnown bool
	// gone is set when the entry left the cache.
	gone       bool
	prev, next *centry
	// dprev and dnext link the dirty entries of the namespace, in the
	// order of their last write. Invariant: linked iff dirty.
	dprev, dnext *centry
	// In a grouped table (newGroupedTable): start and end are the
	// entry's times, and gnext links the entries of its user key, in
	// descending (end, start) order; gprev is the entry before it (nil:
	// the key's latest), so that removing one (an eviction takes a key's
	// oldest) neither walks the list nor hashes the key.
	start, end   int64
	gnext, gprev *centry
}

// NewCache returns a new, empty write-back cache for one task. Its memory is
// counted against the engine's budget.
func (e *Engine) NewCache() *Cache {
	c := &Cache{e: e}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// Bytes returns the memory the cache holds, by its own accounting.
func (c *Cache) Bytes() int64 { return c.used }

func (c *Cache) touch(en *centry) {
	if c.lru.next == en {
		return
	}
	en.prev.next, en.next.prev = en.next, en.prev
	c.pushFront(en)
}

func (c *Cache) pushFront(en *centry) {
	en.next, en.prev = c.lru.next, &c.lru
	c.lru.next.prev = en
	c.lru.next = en
}

func (c *Cache) unlink(en *centry) {
	en.prev.next, en.next.prev = en.next, en.prev
	en.prev, en.next = nil, nil
}

func (c *Cache) account(delta int64) {
	if delta == 0 {
		return
	}
	c.used += delta
	c.e.cacheUsed.Add(delta)
}

// maybeEvict writes back and drops least recently used entries while the
// engine's write caches together are over budget.
func (c *Cache) maybeEvict() error {
	if c.evicting || c.e.cacheUsed.Load() <= c.e.split.writeCache {
		return nil
	}
	c.evicting = true
	defer func() { c.evicting = false }()
	for c.e.cacheUsed.Load() > c.e.split.writeCache && c.lru.prev != &c.lru {
		en := c.lru.prev
		if en.dirty {
			if err := en.ns.writeBack(en); err != nil {
				return err
			}
		}
		if en.ns.evicted != nil {
			en.ns.evicted(en)
		}
		en.ns.remove(en)
	}
	return nil
}

// cacheNS is the part of a Cache that belongs to one wrapped store.
type cacheNS struct {
	c *Cache
	// tab holds the entries. In front of a Pebble store it is the cache's
	// own; in front of an in-memory store it is the store's data (see
	// inPlace).
	tab *entryTable
	// inPlace is set when tab is an in-memory store's data: its entries
	// are cached in place, so they are not on the LRU ring, not counted
	// against the budget and never evicted; a clean entry's value is the
	// stored value, a dirty one's stored value is old (always known).
	inPlace bool
	// dirty is the sentinel of the ring of dirty entries; dirty.dnext is the
	// entry dirty the longest.
	dirty centry
	// ndirty is the number of dirty entries.
	ndirty int
	// write writes an entry's value to the store below and tells the
	// listener; set by the wrapper.
	write func(en *centry) error
	// evicted, if set, is told of each entry evicted, before it leaves.
	evicted func(en *centry)
	// removals counts the entries that left the namespace (not in
	// place): evicted, or tombstones once written back. An iterator that
	// merges the cache with the store below, or reads the cache alone,
	// checks it at each step: such an entry (or the tombstone hiding
	// one) is now only in the store's batch, where the store's iterator,
	// which sees the batch as of when it was made, does not see it.
	removals uint64
}

func newCacheNS(c *Cache) *cacheNS {
	return newCacheNSOn(c, newEntryTable(), false)
}

// newTimedCacheNS returns a namespace for a timed store's cache: its
// table groups the entries by user key (newGroupedTable).
func newTimedCacheNS(c *Cache, kind *timedKind) *cacheNS {
	return newCacheNSOn(c, newGroupedTable(kind), false)
}

// newCacheNSOn returns a namespace over tab: the cache's own, or an
// in-memory store's data (inPlace).
func newCacheNSOn(c *Cache, tab *entryTable, inPlace bool) *cacheNS {
	ns := &cacheNS{c: c, tab: tab, inPlace: inPlace}
	ns.dirty.dnext, ns.dirty.dprev = &ns.dirty, &ns.dirty
	return ns
}

// markDirty links en last in the dirty ring, moving it there if it was
// dirty already: a flush writes entries back in the order of their last
// write, so what listeners forward keeps the order the task processed.
func (ns *cacheNS) markDirty(en *centry) {
	if en.dirty {
		if ns.dirty.dprev == en {
			return
		}
		en.dprev.dnext, en.dnext.dprev = en.dnext, en.dprev
		en.dprev, en.dnext = ns.dirty.dprev, &ns.dirty
		ns.dirty.dprev.dnext = en
		ns.dirty.dprev = en
		return
	}
	en.dirty = true
	en.dprev, en.dnext = ns.dirty.dprev, &ns.dirty
	ns.dirty.dprev.dnext = en
	ns.dirty.dprev = en
	ns.ndirty++
}

func (ns *cacheNS) markClean(en *centry) {
	if !en.dirty {
		return
	}
	en.dirty = false
	en.oldKnown = false // en.old's buffer stays for the next stash
	en.dprev.dnext, en.dnext.dprev = en.dnext, en.dprev
	en.dprev, en.dnext = nil, nil
	ns.ndirty--
}

func (ns *cacheNS) ordered() *btreemap.BTreeMap[string, *centry] { return ns.tab.ordered() }

func (ns *cacheNS) get(key []byte) *centry {
	en := ns.tab.lookup(key)
	if en != nil && !ns.inPlace {
		ns.c.touch(en)
	}
	return en
}

// put records value for key; dirty says whether it is a write (or a clean
// copy of what the store holds). value is copied.
func (ns *cacheNS) put(key, value []byte, dirty bool) error {
	return ns.putTagged(key, value, dirty, nil, false, false)
}

// putTagged is put, setting the entry's tag if setTag (before an eviction
// may write the entry back). noneBelow says that the store below holds
// nothing for key if the cache lacks it: a new entry's old value is then
// known to be absent, and its write-back need not read it.
func (ns *cacheNS) putTagged(key, value []byte, dirty bool, tag any, setTag, noneBelow bool) error {
	en := ns.tab.lookup(key)
	if en == nil {
		en = ns.tab.insert(key, value)
		en.ns = ns
		// In place, nothing is stored below a new entry.
		en.oldKnown = ns.inPlace || noneBelow
		if !ns.inPlace {
			ns.c.pushFront(en)
		}
	} else {
		if !ns.inPlace {
			ns.c.touch(en)
		}
		if dirty && !en.dirty {
			// NB: a clean entry never holds a tombstone (writeBack drops
			// them), so its value is what the store holds.
			en.old, en.value, en.oldKnown = en.value, en.old[:0], true
		}
	}
	switch {
	case value == nil:
		en.value = nil
	case en.value != nil && cap(en.value) >= len(value):
		en.value = append(en.value[:0], value...)
	default:
		en.value = append(make([]byte, 0, len(value)), value...)
	}
	if dirty {
		ns.markDirty(en)
		en.seq++
	}
	if setTag {
		en.tag = tag
	}
	if ns.inPlace {
		return nil
	}
	// NB: the key and the first value share one allocation (see
	// entryTable.insert); a later value or the old one is an allocation
	// of its own.
	size := allocSize(len(en.key)+cap(en.value)) + allocSize(cap(en.old)) + entryOverhead
	ns.c.account(size - en.size)
	en.size = size
	return ns.c.maybeEvict()
}

func (ns *cacheNS) remove(en *centry) {
	if en.gone {
		return
	}
	ns.markClean(en)
	en.tag = nil
	ns.tab.remove(en)
	if !ns.inPlace {
		ns.removals++
		ns.c.unlink(en)
		ns.c.account(-en.size)
	}
}

// writeBack writes one dirty entry to the store below. On error the entry
// stays dirty, and so does an entry written again meanwhile (by the
// listener).
func (ns *cacheNS) writeBack(en *centry) error {
	seq, had := en.seq, en.old != nil
	if err := ns.write(en); err != nil {
		return err
	}
	if en.gone || !en.dirty || en.seq != seq {
		return nil
	}
	ns.markClean(en)
	if ns.inPlace {
		// The entry's value is now the stored one.
		ns.tab.countStored(had, en.value != nil)
	}
	if en.value == nil {
		// A written tombstone need not stay cached.
		ns.remove(en)
	}
	return nil
}

// flush writes every dirty entry below, in the order they became dirty.
// On error the entries not written stay dirty, for a retry.
func (ns *cacheNS) flush() error {
	for ns.dirty.dnext != &ns.dirty {
		if err := ns.writeBack(ns.dirty.dnext); err != nil {
			return err
		}
	}
	return nil
}

// drop forgets every write not written back, and the tags: in front of
// a store below, every entry; in place, each dirty entry gets its stored
// value back.
func (ns *cacheNS) drop() {
	if !ns.inPlace {
		for en := range ns.tab.all {
			ns.remove(en)
		}
		return
	}
	for ns.dirty.dnext != &ns.dirty {
		en := ns.dirty.dnext
		old := en.old
		ns.markClean(en)
		if old == nil {
			ns.remove(en)
			continue
		}
		en.value, en.old = old, en.value
	}
	for en := range ns.tab.all {
		en.tag = nil
	}
}

// cacheIter walks the entries of a namespace in [lo, hi) in key order,
// seeking afresh each step so writes during iteration are safe.
type cacheIter struct {
	ns      *cacheNS
	lo, hi  []byte
	reverse bool
	started bool
	cur     *centry
	last    []byte
}

func (it *cacheIter) next() bool {
	var lo btreemap.LowerBound[string]
	var hi btreemap.UpperBound[string]
	it.cur = nil
	if !it.reverse {
		lo = btreemap.GE(viewString(it.lo))
		if it.started {
			lo = btreemap.GT(viewString(it.last))
		}
		hi = btreemap.Max[string]()
		if it.hi != nil {
			hi = btreemap.LT(viewString(it.hi))
		}
		for _, en := range it.ns.ordered().Ascend(lo, hi) {
			it.cur = en
			break
		}
	} else {
		hi = btreemap.Max[string]()
		if it.hi != nil {
			hi = btreemap.LT(viewString(it.hi))
		}
		if it.started {
			hi = btreemap.LT(viewString(it.last))
		}
		lo = btreemap.GE(viewString(it.lo))
		for _, en := range it.ns.ordered().Descend(hi, lo) {
			it.cur = en
			break
		}
	}
	it.started = true
	if it.cur == nil {
		return false
	}
	it.last = it.cur.key
	return true
}

// viewString returns b's bytes as a string, without a copy. NB: only for
// bytes not written while the string is in use: a cache iterator's bounds
// (held unchanged while it lives) and entry keys (never written).
func viewString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// mergeIter merges a cache iterator over spans with the store's own
// iterator, both yielding cache keys in the same order; the cache wins on
// equal keys and its tombstones hide the store's entries.
//
// Writes during the iteration: the cache side seeks afresh at each step,
// but the store's iterator sees the store as it was when it was made, so
// an entry evicted since (written to the store, gone from the cache)
// would be missed, or an older value or a deleted entry returned in its
// place; so would an entry a written-back tombstone hid. After such a
// removal (ns.removals moved past gen), Next therefore reopens both sides
// past the key it returned last (resume); without one, a step costs one
// comparison more.
//
// NB: the flags sit together, so the struct fits a smaller size class.
type mergeIter struct {
	spans []span
	si    int
	c     *cacheIter
	ns    *cacheNS
	// below yields the store's entries as cache keys.
	below mergeBelow
	// gen is ns.removals when below was made.
	gen          uint64
	reverse, cOK bool
	bOK          bool
	// stepBelow: the entry last returned came from below; step it first.
	stepBelow bool
	started   bool
	// done: Next returned false (a resume must not revive the iterator).
	done  bool
	key   []byte
	value []byte
	// vbuf holds a copy of the value last taken from the cache: a write
	// during the iteration may overwrite the entry's buffer in place.
	vbuf []byte
	err  error
	// accept filters cache entries (time bounds); nil accepts all.
	accept cacheAcceptor
	// cbuf is the cache iterator of the current span (c points to it).
	cbuf cacheIter
}

// cacheAcceptor filters the cache entries a merge yields.
type cacheAcceptor interface {
	acceptCached(ckey []byte) bool
}

// mergeBelow is the store's side of a merge.
type mergeBelow interface {
	next() bool
	ckey() []byte
	value() []byte
	err() error
	close() error
	// reopen closes the store's iterator and makes a new one over spans
	// (descending with reverse), which sees every write to the store so
	// far.
	reopen(spans []span, reverse bool) error
}

func (m *mergeIter) advanceCache() {
	for {
		if m.c == nil {
			if m.si >= len(m.spans) {
				m.cOK = false
				return
			}
			sp := m.spans[m.si]
			m.si++
			m.cbuf = cacheIter{ns: m.ns, lo: sp.lo, hi: sp.hi, reverse: m.reverse}
			m.c = &m.cbuf
		}
		if m.c.next() {
			if m.accept == nil || m.accept.acceptCached(m.c.cur.key) {
				m.cOK = true
				return
			}
			continue
		}
		m.c = nil
	}
}

func (m *mergeIter) less(a, b []byte) bool {
	if m.reverse {
		return bytes.Compare(a, b) > 0
	}
	return bytes.Compare(a, b) < 0
}

func (m *mergeIter) Next() bool {
	if m.err != nil || m.done {
		return false
	}
	if m.ns.removals != m.gen && !m.resume() {
		return false
	}
	if !m.started {
		m.started = true
		m.advanceCache()
		m.bOK = m.below.next()
	} else if m.stepBelow {
		m.stepBelow = false
		m.bOK = m.below.next()
	}
	for {
		if !m.bOK {
			if err := m.below.err(); err != nil {
				m.err = err
				return false
			}
		}
		switch {
		case !m.cOK && !m.bOK:
			m.done = true
			return false
		case m.cOK && (!m.bOK || !m.less(m.below.ckey(), m.c.cur.key)):
			en := m.c.cur
			if m.bOK && bytes.Equal(m.below.ckey(), en.key) {
				m.bOK = m.below.next()
			}
			m.advanceCache()
			if en.value == nil {
				continue
			}
			if m.vbuf == nil {
				m.vbuf = make([]byte, 0, 64) // non-nil: an empty value is not absent
			}
			m.vbuf = append(m.vbuf[:0], en.value...)
			m.key, m.value = en.key, m.vbuf
			return true
		default:
			m.key, m.value = m.below.ckey(), m.below.value()
			m.stepBelow = true
			return true
		}
	}
}

// resume restarts the merge after the key it returned last (from the
// first span if none), over the store's writes so far; it reports false
// on error.
func (m *mergeIter) resume() bool {
	m.gen = m.ns.removals
	spans := m.spans
	if m.key != nil {
		// NB: m.key may be below's buffer: clipSpans copies it before
		// reopen moves below.
		spans = clipSpans(m.spans, m.key, m.reverse)
	}
	if err := m.below.reopen(spans, m.reverse); err != nil {
		m.err = err
		return false
	}
	m.spans, m.si, m.c = spans, 0, nil
	m.started, m.stepBelow = false, false
	return true
}

// clipSpans returns the part of spans (in iteration order) that comes
// after key in that order, in new memory.
func clipSpans(spans []span, key []byte, reverse bool) []span {
	out := make([]span, 0, len(spans))
	for _, sp := range spans {
		if !reverse {
			if sp.hi != nil && bytes.Compare(sp.hi, key) <= 0 {
				continue
			}
			if sp.lo == nil || bytes.Compare(sp.lo, key) <= 0 {
				// The first key after key: key followed by a zero byte.
				sp.lo = append(append(make([]byte, 0, len(key)+1), key...), 0)
			}
		} else {
			if sp.lo != nil && bytes.Compare(sp.lo, key) >= 0 {
				continue
			}
			if sp.hi == nil || bytes.Compare(sp.hi, key) > 0 {
				sp.hi = append([]byte(nil), key...)
			}
		}
		out = append(out, sp)
	}
	return out
}

func (m *mergeIter) Err() error { return m.err }
func (m *mergeIter) Close() error {
	if err := m.below.close(); err != nil && m.err == nil {
		m.err = err
	}
	return m.err
}

// checkCached rejects stores not opened by an Engine.
func checkCached(s state.Store) (*base, error) {
	so, ok := s.(storeOf)
	if !ok {
		return nil, fmt.Errorf("state: cache: store %q was not opened by an Engine", s.Name())
	}
	b := so.baseStore()
	if b.spec.Uncached {
		return nil, fmt.Errorf("state: cache: store %q is declared Uncached", s.Name())
	}
	return b, nil
}
