package stateengine

import (
	"context"
	"fmt"
	"github.com/weir-dev/weir/state"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// Window returns s wrapped by the cache, as KeyValue. Cache keys are the
// store's own key layout, so cached and stored entries merge in order.
func (c *Cache) Window(s state.WindowStore, listener WindowFlushListener) (state.WindowStore, error) {
	if _, err := checkCached(s); err != nil {
		return nil, err
	}
	if ms, ok := s.(*memWindowStore); ok {
		// An in-memory store caches in place (see memTimedStore).
		if err := ms.wrap(wrapWindow(untagged(listener))); err != nil {
			return nil, err
		}
		return &memWindowCached{s: ms}, nil
	}
	ws, ok := s.(*windowStore)
	if !ok {
		return nil, fmt.Errorf("state: cache: window store %q is already wrapped", s.Name())
	}
	w := &cachedWindow{under: ws, ns: newCacheNS(c), listener: untagged(listener), observed: ws.m.observed}
	w.ns.write = w.write
	return w, nil
}

type cachedWindow struct {
	under    *windowStore
	ns       *cacheNS
	listener WindowTagListener
	// observed is the largest window start put through the cache.
	observed int64
	expired  int64
	kbuf     []byte
	pbuf     []byte // see write
	// flushing is set during Flush, and flushFloor is the store's
	// observed stream time when the flush began: no key starting after it
	// was in the store then, and a flush writes each key once, so such a
	// key has no old value to read below.
	flushing   bool
	flushFloor int64
}

func (w *cachedWindow) baseStore() *base                    { return w.under.base }
func (w *cachedWindow) applyChange(key, value []byte) error { return w.under.applyChange(key, value) }
func (w *cachedWindow) dropCached() {
	w.ns.drop()
	w.observed = math.MinInt64
}
func (w *cachedWindow) Name() string { return w.under.Name() }

func (w *cachedWindow) obs() int64 { return max(w.observed, w.under.m.observed) }

func (w *cachedWindow) ObservedStreamTime() int64 { return w.obs() }
func (w *cachedWindow) ExpiredPuts() int64        { return w.expired + w.under.ExpiredPuts() }

func (w *cachedWindow) ckey(key []byte, start int64) []byte {
	w.kbuf = layout.AppendWindowKey(w.kbuf[:0], w.under.tb.seg(start), key, start)
	return w.kbuf
}

func (w *cachedWindow) write(en *centry) error {
	// NB: the key is decoded into a reused buffer: the listener may use it
	// only during the call, and a write-back does not nest in another of
	// the same store (eviction does not re-enter).
	_, key, start, err := layout.ParseWindowKey(w.pbuf[:0], en.key)
	w.pbuf = key
	if err != nil {
		return corruptKey(w.Name(), en.key, err)
	}
	if w.under.tb.isExpired(start, w.under.m.observed) {
		// Expired while cached: the store would ignore it, but the
		// listener still hears of the window's last value: it may be a
		// window's final result (one commit interval can span more event
		// time than the retention). Its old value is gone with the window.
		w.expired++
		if w.listener == nil || en.value == nil {
			return nil
		}
		return w.listener(key, start, en.value, nil, en.tag)
	}
	var old []byte
	switch {
	case w.listener == nil:
	case en.oldKnown:
		old = en.old
	case !w.flushing || start <= w.flushFloor:
		if old, err = w.under.Get(key, start); err != nil {
			return err
		}
	}
	if err := w.under.Put(key, start, en.value); err != nil {
		return err
	}
	if w.listener == nil || (en.value == nil && old == nil) {
		return nil
	}
	return w.listener(key, start, en.value, old, en.tag)
}

// OnWriteBack implements TaggedWindowStore.
func (w *cachedWindow) OnWriteBack(h WindowTagListener) { w.listener = h }

func (w *cachedWindow) Put(key []byte, start int64, value []byte) error {
	return w.put(key, start, value, nil, false)
}

// PutTagged implements TaggedWindowStore.
func (w *cachedWindow) PutTagged(key []byte, start int64, value []byte, tag any) error {
	return w.put(key, start, value, tag, true)
}

// GetTagged implements TaggedWindowStore.
func (w *cachedWindow) GetTagged(key []byte, start int64) ([]byte, any, error) {
	if err := w.under.check(); err != nil {
		return nil, nil, err
	}
	if w.under.tb.isExpired(start, w.obs()) {
		return nil, nil, nil
	}
	if en := w.ns.get(w.ckey(key, start)); en != nil {
		return en.value, en.tag, nil
	}
	v, err := w.under.Get(key, start)
	if err != nil || v == nil {
		return v, nil, err
	}
	return v, nil, w.ns.put(w.ckey(key, start), v, false)
}

func (w *cachedWindow) put(key []byte, start int64, value []byte, tag any, setTag bool) error {
	b := w.under.base
	if err := b.check(); err != nil {
		return err
	}
	if err := b.keyErr(key); err != nil {
		return err
	}
	if w.under.tb.isExpired(start, w.obs()) {
		w.expired++
		return nil
	}
	if start > w.observed {
		w.observed = start
	}
	return w.ns.putTagged(w.ckey(key, start), value, true, tag, setTag)
}

func (w *cachedWindow) Get(key []byte, start int64) ([]byte, error) {
	if err := w.under.check(); err != nil {
		return nil, err
	}
	if w.under.tb.isExpired(start, w.obs()) {
		return nil, nil
	}
	if en := w.ns.get(w.ckey(key, start)); en != nil {
		if en.value == nil {
			return nil, nil
		}
		return append(make([]byte, 0, len(en.value)), en.value...), nil // an empty value is not absent
	}
	v, err := w.under.Get(key, start)
	if err != nil || v == nil {
		return v, err
	}
	return v, w.ns.put(w.ckey(key, start), v, false)
}

func (w *cachedWindow) Fetch(key []byte, timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := w.under.check(); err != nil {
		return nil, err
	}
	from, to, ok := w.under.tb.clamp(w.obs(), timeFrom, timeTo)
	if !ok {
		return emptyIter{}, nil
	}
	// The cache and the store below walk the same spans (cache keys are the
	// store's key layout).
	it := &cachedWindowIter{}
	below := &it.store
	w.under.initIter(below, from, to)
	spans := fetchSpans(below.spanBuf[:0], below.spanKeys[:0], &w.under.tb, key, from, to, reverse)
	return w.initMerge(it, spans, reverse, w.under.startIter(below, spans, reverse), from, to), nil
}

func (w *cachedWindow) FetchAll(timeFrom, timeTo int64, reverse bool) (state.WindowIterator, error) {
	if err := w.under.check(); err != nil {
		return nil, err
	}
	from, to, ok := w.under.tb.clamp(w.obs(), timeFrom, timeTo)
	if !ok {
		return emptyIter{}, nil
	}
	below := w.under.newIter(from, to)
	spans := fetchAllSpans(below.spanBuf[:0], &w.under.tb, from, to)
	return w.merge(spans, reverse, w.under.startIter(below, spans, reverse), from, to), nil
}

func (w *cachedWindow) All(reverse bool) (state.WindowIterator, error) {
	return w.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

// merge merges the cache's entries in spans (in iteration order) with below.
func (w *cachedWindow) merge(spans []span, reverse bool, below state.WindowIterator, from, to int64) *cachedWindowIter {
	return w.initMerge(&cachedWindowIter{}, spans, reverse, below, from, to)
}

func (w *cachedWindow) initMerge(it *cachedWindowIter, spans []span, reverse bool, below state.WindowIterator, from, to int64) *cachedWindowIter {
	it.from, it.to = from, to
	it.key, it.kbuf = it.keyBuf[:0], it.kbufArr[:0]
	it.below = windowBelow{it: below, tb: &w.under.tb, buf: it.belowBuf[:0]}
	it.m = mergeIter{spans: spans, reverse: reverse, ns: w.ns, below: &it.below, accept: it}
	return it
}

func (it *cachedWindowIter) acceptCached(ck []byte) bool {
	_, k, start, err := layout.ParseWindowKey(it.kbuf[:0], ck)
	it.kbuf = k
	return err == nil && start >= it.from && start <= it.to
}

type windowBelow struct {
	it  state.WindowIterator
	tb  *timeBox
	buf []byte
}

func (b *windowBelow) next() bool {
	if !b.it.Next() {
		return false
	}
	b.buf = layout.AppendWindowKey(b.buf[:0], b.tb.seg(b.it.WindowStart()), b.it.Key(), b.it.WindowStart())
	return true
}
func (b *windowBelow) ckey() []byte  { return b.buf }
func (b *windowBelow) value() []byte { return b.it.Value() }
func (b *windowBelow) err() error    { return b.it.Err() }
func (b *windowBelow) close() error  { return b.it.Close() }

type cachedWindowIter struct {
	m        mergeIter
	below    windowBelow
	from, to int64
	// store is the store's iterator of a Fetch, kept here to spare an
	// allocation; the arrays back the key buffers of short keys.
	store    windowIter
	keyBuf   [32]byte
	kbufArr  [32]byte
	belowBuf [64]byte
	kbuf     []byte
	key      []byte
	start    int64
}

func (it *cachedWindowIter) Next() bool {
	if !it.m.Next() {
		return false
	}
	_, key, start, err := layout.ParseWindowKey(it.key[:0], it.m.key)
	if err != nil {
		it.m.err = err
		return false
	}
	it.key, it.start = key, start
	return true
}
func (it *cachedWindowIter) Key() []byte        { return it.key }
func (it *cachedWindowIter) WindowStart() int64 { return it.start }
func (it *cachedWindowIter) Value() []byte      { return it.m.value }
func (it *cachedWindowIter) Err() error         { return it.m.Err() }
func (it *cachedWindowIter) Close() error       { return it.m.Close() }

func (w *cachedWindow) Flush(ctx context.Context) error {
	if err := w.under.check(); err != nil {
		return err
	}
	w.flushing, w.flushFloor = true, w.under.m.observed
	err := w.ns.flush()
	w.flushing = false
	if err != nil {
		return err
	}
	return w.under.Flush(ctx)
}

func (w *cachedWindow) Close() error {
	w.ns.drop()
	return w.under.Close()
}
