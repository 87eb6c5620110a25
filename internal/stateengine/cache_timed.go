package stateengine

import (
	"context"
	"fmt"
	"math"

	"github.com/weir-dev/weir/state"
)

// Window returns s wrapped by the cache, as KeyValue.
func (c *Cache) Window(s state.WindowStore, listener WindowFlushListener) (state.WindowStore, error) {
	var f timedFacer
	if ws, ok := s.(*windowStore); ok {
		f = ws
	}
	ct, err := c.wrapTimed(s, f)
	if err != nil {
		return nil, err
	}
	w := &cachedWindowStore{windowStore{timedFace{ct}}, ct}
	w.OnWriteBack(untagged(listener))
	return w, nil
}

// Session returns s wrapped by the cache, as KeyValue.
func (c *Cache) Session(s state.SessionStore, listener SessionFlushListener) (state.SessionStore, error) {
	var f timedFacer
	if ss, ok := s.(*sessionStore); ok {
		f = ss
	}
	ct, err := c.wrapTimed(s, f)
	if err != nil {
		return nil, err
	}
	ct.listener = untaggedSession(listener)
	return &cachedSessionStore{sessionStore{timedFace{ct}}, ct}, nil
}

// cachedTimed is the write-back cache over a timed store, for both kinds.
// In front of Pebble its entries are in a cacheNS of the Cache (LRU,
// budget, eviction), keyed by the store's Pebble keys, so that cached and
// stored entries merge in order. In front of the in-memory backend it
// caches in place (see memTimed): no second copy, no eviction.
type cachedTimed struct {
	under *timedStore
	kind  *timedKind
	// listener is told of each write-back (the window store's hook is
	// adapted to it: its start and end are the window's start).
	listener SessionTagListener
	// observed is the largest end put through the cache: the cached
	// view's stream time is max(observed, the store's).
	observed int64
	expired  int64

	// mem is the in-memory backend the cache keeps its entries in, or
	// nil; then ns holds them.
	mem  *memTimed
	ns   *cacheNS
	kbuf []byte
	pbuf []byte // see write
	// ekbuf holds the escaped key of fetchKey, and spareWalk is the walk
	// of the fetchKey iterator last closed, for the next (see
	// cachedKeyIter).
	ekbuf     []byte
	spareWalk *keyWalk
	// flushing is set during Flush, and flushFloor is the store's
	// observed stream time when the flush began: no entry ending after it
	// was in the store then, and a flush writes each entry once, so such an
	// entry has no old value to read below.
	flushing   bool
	flushFloor int64
	// floor: every entry of the store below ending after floor is in ns
	// (clean or dirty), unless a Put or restore wrote the store directly
	// (see timedStore.directMax): a fetch above it reads ns alone, with
	// no merge. Evictions raise it; floorStale defers setting it to the
	// store's stream time until the store is next used after a restore.
	floor      int64
	floorStale bool
}

// timedFacer is a window or session store (its timedFace).
type timedFacer interface {
	raw() bool
	timedStore() *timedStore
}

// wrapTimed returns a cache over the timed store of store, whose face f
// is (nil: store is not a window or session store of the right kind).
func (c *Cache) wrapTimed(store state.Store, f timedFacer) (*cachedTimed, error) {
	if _, err := checkCached(store); err != nil {
		return nil, err
	}
	if f == nil || !f.raw() {
		return nil, fmt.Errorf("state: cache: store %q is already wrapped", store.Name())
	}
	s := f.timedStore()
	w := &cachedTimed{under: s, kind: s.kind, observed: s.m.observed, floorStale: true}
	if s.mem != nil {
		if s.mem.c != nil {
			return nil, fmt.Errorf("state: cache: %s store %q is already wrapped", s.kind.what, s.Name())
		}
		s.mem.c, w.mem = w, s.mem
		return w, nil
	}
	w.ns = newTimedCacheNS(c, s.kind)
	w.ns.write = w.write
	w.ns.evicted = w.evicted
	return w, nil
}

func (w *cachedTimed) baseStore() *base                    { return w.under.base }
func (w *cachedTimed) applyChange(key, value []byte) error { return w.under.applyChange(key, value) }
func (w *cachedTimed) Name() string                        { return w.under.Name() }
func (w *cachedTimed) observedTime() int64                 { return max(w.observed, w.under.m.observed) }
func (w *cachedTimed) expiredPuts() int64                  { return w.expired + w.under.expiredPuts() }

// dropCached forgets every write not written back, and the tags.
func (w *cachedTimed) dropCached() {
	if w.mem != nil {
		w.mem.forgetDirty()
	} else {
		w.ns.drop()
	}
	w.observed = math.MinInt64
	w.floorStale = true
}

func (w *cachedTimed) ckey(key []byte, start, end int64) []byte {
	w.kbuf = w.kind.appendKey(w.kbuf[:0], w.under.tb.seg(end), key, start, end)
	return w.kbuf
}

func (w *cachedTimed) checkPut(key []byte, start, end int64) error {
	return w.under.checkPut(key, start, end)
}

// put writes into the cached view; the caller checked the arguments.
func (w *cachedTimed) put(key []byte, start, end int64, value []byte, tag any, setTag bool) error {
	if w.under.tb.isExpired(end, w.observedTime()) {
		w.expired++
		return nil
	}
	if end > w.observed {
		w.observed = end
	}
	if w.mem != nil {
		w.mem.cachedPut(key, start, end, value, tag, setTag)
		return nil
	}
	// NB: the floor is settled before the first write, which the store
	// below holds once written back: were it settled later, at the
	// store's stream time then, every read below it would merge with the
	// store for the whole retention.
	//
	// A new entry above the floor has no value below (nothingBelow): its
	// write-back need not read the store for the listener's old value. A
	// new window of an aggregation is such an entry; the read would also
	// index the Pebble batch (readBatch), making every later write of the
	// flush an indexed insert.
	return w.ns.putTagged(w.ckey(key, start, end), value, true, tag, setTag, w.nothingBelow(end))
}

// getTagged returns the cached view's value of (key, start, end), not a
// copy, and its tag.
func (w *cachedTimed) getTagged(key []byte, start, end int64) ([]byte, any, error) {
	if err := w.under.check(); err != nil {
		return nil, nil, err
	}
	if w.under.tb.isExpired(end, w.observedTime()) || start > end {
		return nil, nil, nil
	}
	if w.mem != nil {
		if sl := w.mem.slot(key, start, end); sl != nil {
			return sl.cur, sl.tag, nil
		}
		return nil, nil, nil
	}
	if en := w.ns.get(w.ckey(key, start, end)); en != nil {
		return en.value, en.tag, nil
	}
	if w.nothingBelow(end) {
		return nil, nil, nil
	}
	v, err := w.under.get(key, start, end)
	if err != nil || v == nil {
		return v, nil, err
	}
	return v, nil, w.ns.put(w.ckey(key, start, end), v, false)
}

// get is getTagged returning a copy.
func (w *cachedTimed) get(key []byte, start, end int64) ([]byte, error) {
	if w.mem != nil {
		if err := w.under.check(); err != nil {
			return nil, err
		}
		if w.under.tb.isExpired(end, w.observedTime()) || start > end {
			return nil, nil
		}
		return w.mem.getValue(true, key, start, end), nil
	}
	v, _, err := w.getTagged(key, start, end)
	if err != nil || v == nil {
		return nil, err
	}
	return append(make([]byte, 0, len(v)), v...), nil // an empty value is not absent
}

// write writes an entry of ns back to the store below and tells the
// listener.
func (w *cachedTimed) write(en *centry) error {
	// NB: the key is decoded into a reused buffer: the listener may use it
	// only during the call, and a write-back does not nest in another of
	// the same store (eviction does not re-enter).
	key, start, end, err := w.kind.parseKey(w.pbuf[:0], en.key)
	w.pbuf = key
	if err != nil {
		return corruptKey(w.Name(), en.key, err)
	}
	if w.under.tb.isExpired(end, w.under.m.observed) {
		// Expired while cached: the store would ignore it (see
		// timedKind.tellExpired). Its old value is gone with the entry.
		w.expired++
		if !w.kind.tellExpired || w.listener == nil || en.value == nil {
			return nil
		}
		return w.listener(key, start, end, en.value, nil, en.tag)
	}
	var old []byte
	switch {
	case w.listener == nil:
	case en.oldKnown:
		old = en.old
	case !w.flushing || end <= w.flushFloor:
		if old, err = w.under.get(key, start, end); err != nil {
			return err
		}
	}
	if err := w.under.writeBack(key, start, end, en.value); err != nil {
		return err
	}
	if w.listener == nil || (en.value == nil && old == nil) {
		return nil
	}
	return w.listener(key, start, end, en.value, old, en.tag)
}

// evicted raises floor past an entry leaving ns.
func (w *cachedTimed) evicted(en *centry) {
	_, _, end, err := w.kind.parseKey(w.pbuf[:0], en.key)
	if err != nil {
		end = math.MaxInt64
	}
	w.floor = max(w.currentFloor(), end)
}

// nothingBelow reports whether the store below holds no entry ending at
// or after from that ns lacks: then ns alone answers a read.
func (w *cachedTimed) nothingBelow(from int64) bool {
	return from > w.currentFloor() && from > w.under.directMax
}

func (w *cachedTimed) currentFloor() int64 {
	if w.floorStale {
		w.floor, w.floorStale = w.under.m.observed, false
	}
	return w.floor
}

// fetch iterates the cached view as timedStore.fetch.
func (w *cachedTimed) fetch(key []byte, endFrom, endTo, latestStart int64, reverse bool) (timedIter, error) {
	if err := w.under.check(); err != nil {
		return nil, err
	}
	from, to, ok := w.under.tb.clamp(w.observedTime(), endFrom, endTo)
	if !ok {
		return emptyIter{}, nil
	}
	if w.mem != nil {
		return w.mem.view(true, key, from, to, latestStart, reverse), nil
	}
	below := w.nothingBelow(from)
	if key != nil && below {
		if it, ok := w.fetchKey(key, from, to, latestStart, reverse); ok {
			return it, nil
		}
	}
	it := &cachedTimedIter{}
	var spans []span
	if key == nil {
		spans = append(it.store.spanBuf[:0], segmentsSpan(&w.under.tb, from, to))
	} else {
		spans = keySpans(it.store.spanBuf[:0], it.store.spanKeys[:0], w.kind, &w.under.tb, key, from, to, reverse)
	}
	w.initMerge(it, spans, from, to, latestStart, reverse, !below)
	return it, nil
}

// initMerge points it at the merge of ns and the store below over spans
// (in iteration order) with fetch's bounds; scanBelow false leaves the
// store out until an entry leaves ns (see mergeIter).
func (w *cachedTimed) initMerge(it *cachedTimedIter, spans []span, from, to, latestStart int64, reverse, scanBelow bool) {
	it.endFrom, it.endTo, it.latestStart, it.kind = from, to, latestStart, w.kind
	it.key, it.kbuf = it.keyBuf[:0], it.kbufArr[:0]
	// The cache and the store below walk the same spans (cache keys are
	// the store's key layout). NB: the bounds of the cached view, not the
	// store's: the store may not have seen the stream time that expired
	// entries in the cached view.
	p := w.under.be.(*pebbleTimed)
	it.below = timedBelow{it: emptyIter{}, kind: w.kind, tb: &w.under.tb, buf: it.belowBuf[:0],
		p: p, store: &it.store, from: from, to: to, latestStart: latestStart}
	if scanBelow {
		p.scanInto(&it.store, spans, from, to, latestStart, reverse)
		it.below.it = &it.store
	}
	it.m = mergeIter{spans: spans, reverse: reverse, ns: w.ns, below: &it.below, accept: it, gen: w.ns.removals}
}

func (w *cachedTimed) Flush(ctx context.Context) error {
	if err := w.under.check(); err != nil {
		return err
	}
	var err error
	if w.mem != nil {
		err = w.mem.flush()
	} else {
		w.flushing, w.flushFloor = true, w.under.m.observed
		err = w.ns.flush()
		w.flushing = false
	}
	if err != nil {
		return err
	}
	return w.under.Flush(ctx)
}

func (w *cachedTimed) Close() error {
	w.dropCached()
	w.spareWalk = nil
	return w.under.Close()
}

// timedBelow is the store's side of a merge: its entries as cache keys.
type timedBelow struct {
	it   timedIter
	kind *timedKind
	tb   *timeBox
	buf  []byte
	// p is the store, store the iterator reopen scans it with, and the
	// rest the bounds of the scan.
	p                     *pebbleTimed
	store                 *pebbleTimedIter
	from, to, latestStart int64
}

func (b *timedBelow) reopen(spans []span, reverse bool) error {
	if err := b.it.Close(); err != nil {
		return err
	}
	b.p.scanInto(b.store, spans, b.from, b.to, b.latestStart, reverse)
	b.it = b.store
	return nil
}

func (b *timedBelow) next() bool {
	if !b.it.Next() {
		return false
	}
	b.buf = b.kind.appendKey(b.buf[:0], b.tb.seg(b.it.End()), b.it.Key(), b.it.Start(), b.it.End())
	return true
}
func (b *timedBelow) ckey() []byte  { return b.buf }
func (b *timedBelow) value() []byte { return b.it.Value() }
func (b *timedBelow) err() error    { return b.it.Err() }
func (b *timedBelow) close() error  { return b.it.Close() }

// cachedTimedIter merges the cache's entries with the store's.
type cachedTimedIter struct {
	m                           mergeIter
	below                       timedBelow
	kind                        *timedKind
	endFrom, endTo, latestStart int64
	// store is the store's iterator, kept here to spare an allocation;
	// the arrays back the key buffers of short keys.
	store      pebbleTimedIter
	keyBuf     [32]byte
	kbufArr    [32]byte
	belowBuf   [64]byte
	kbuf       []byte
	key        []byte
	start, end int64
}

func (it *cachedTimedIter) acceptCached(ck []byte) bool {
	k, start, end, err := it.kind.parseKey(it.kbuf[:0], ck)
	it.kbuf = k
	return err == nil && end >= it.endFrom && end <= it.endTo && start <= it.latestStart
}

func (it *cachedTimedIter) Next() bool {
	if !it.m.Next() {
		return false
	}
	key, start, end, err := it.kind.parseKey(it.key[:0], it.m.key)
	if err != nil {
		it.m.err = err
		return false
	}
	it.key, it.start, it.end = key, start, end
	return true
}
func (it *cachedTimedIter) Key() []byte        { return it.key }
func (it *cachedTimedIter) WindowStart() int64 { return it.start }
func (it *cachedTimedIter) Start() int64       { return it.start }
func (it *cachedTimedIter) End() int64         { return it.end }
func (it *cachedTimedIter) Value() []byte      { return it.m.value }
func (it *cachedTimedIter) Err() error         { return it.m.Err() }
func (it *cachedTimedIter) Close() error       { return it.m.Close() }
