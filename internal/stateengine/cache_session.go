package stateengine

import (
	"context"
	"fmt"
	"github.com/weir-dev/weir/state"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// Session returns s wrapped by the cache, as KeyValue.
func (c *Cache) Session(s state.SessionStore, listener SessionFlushListener) (state.SessionStore, error) {
	if _, err := checkCached(s); err != nil {
		return nil, err
	}
	if ms, ok := s.(*memSessionStore); ok {
		// An in-memory store caches in place (see memTimedStore).
		if err := ms.wrap(untaggedSession(listener)); err != nil {
			return nil, err
		}
		return &memSessionCached{s: ms}, nil
	}
	ss, ok := s.(*sessionStore)
	if !ok {
		return nil, fmt.Errorf("state: cache: session store %q is already wrapped", s.Name())
	}
	w := &cachedSession{under: ss, ns: newCacheNS(c), listener: untaggedSession(listener), observed: ss.m.observed}
	w.ns.write = w.write
	return w, nil
}

type cachedSession struct {
	under    *sessionStore
	ns       *cacheNS
	listener SessionTagListener
	observed int64
	expired  int64
	kbuf     []byte
	pbuf     []byte // see write
}

func (w *cachedSession) baseStore() *base                    { return w.under.base }
func (w *cachedSession) applyChange(key, value []byte) error { return w.under.applyChange(key, value) }
func (w *cachedSession) dropCached() {
	w.ns.drop()
	w.observed = math.MinInt64
}
func (w *cachedSession) Name() string              { return w.under.Name() }
func (w *cachedSession) obs() int64                { return max(w.observed, w.under.m.observed) }
func (w *cachedSession) ObservedStreamTime() int64 { return w.obs() }
func (w *cachedSession) ExpiredPuts() int64        { return w.expired + w.under.ExpiredPuts() }

func (w *cachedSession) ckey(key []byte, start, end int64) []byte {
	w.kbuf = layout.AppendSessionKey(w.kbuf[:0], w.under.tb.seg(end), key, start, end)
	return w.kbuf
}

func (w *cachedSession) write(en *centry) error {
	// NB: into a reused buffer, as cachedWindow.write.
	_, key, start, end, err := layout.ParseSessionKey(w.pbuf[:0], en.key)
	w.pbuf = key
	if err != nil {
		return corruptKey(w.Name(), en.key, err)
	}
	if w.under.tb.isExpired(end, w.under.m.observed) {
		w.expired++
		return nil
	}
	var old []byte
	if w.listener != nil {
		if en.oldKnown {
			old = en.old
		} else if old, err = w.under.Get(key, start, end); err != nil {
			return err
		}
	}
	if err := w.under.Put(key, start, end, en.value); err != nil {
		return err
	}
	if w.listener == nil || (en.value == nil && old == nil) {
		return nil
	}
	return w.listener(key, start, end, en.value, old, en.tag)
}

// OnWriteBack implements TaggedSessionStore.
func (w *cachedSession) OnWriteBack(h SessionTagListener) { w.listener = h }

func (w *cachedSession) Put(key []byte, start, end int64, value []byte) error {
	return w.put(key, start, end, value, nil, false)
}

// PutTagged implements TaggedSessionStore.
func (w *cachedSession) PutTagged(key []byte, start, end int64, value []byte, tag any) error {
	return w.put(key, start, end, value, tag, true)
}

// RemoveTagged implements TaggedSessionStore.
func (w *cachedSession) RemoveTagged(key []byte, start, end int64, tag any) error {
	return w.put(key, start, end, nil, tag, true)
}

func (w *cachedSession) put(key []byte, start, end int64, value []byte, tag any, setTag bool) error {
	b := w.under.base
	if err := b.check(); err != nil {
		return err
	}
	if err := b.keyErr(key); err != nil {
		return err
	}
	if start > end {
		return fmt.Errorf("state: store %q: session start %d after end %d", w.Name(), start, end)
	}
	if w.under.tb.isExpired(end, w.obs()) {
		w.expired++
		return nil
	}
	if end > w.observed {
		w.observed = end
	}
	return w.ns.putTagged(w.ckey(key, start, end), value, true, tag, setTag)
}

func (w *cachedSession) Remove(key []byte, start, end int64) error {
	return w.Put(key, start, end, nil)
}

func (w *cachedSession) Get(key []byte, start, end int64) ([]byte, error) {
	if err := w.under.check(); err != nil {
		return nil, err
	}
	if w.under.tb.isExpired(end, w.obs()) || start > end {
		return nil, nil
	}
	if en := w.ns.get(w.ckey(key, start, end)); en != nil {
		if en.value == nil {
			return nil, nil
		}
		return append(make([]byte, 0, len(en.value)), en.value...), nil // an empty value is not absent
	}
	v, err := w.under.Get(key, start, end)
	if err != nil || v == nil {
		return v, err
	}
	return v, w.ns.put(w.ckey(key, start, end), v, false)
}

func (w *cachedSession) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if err := w.under.check(); err != nil {
		return nil, err
	}
	from, to, ok := w.under.tb.clamp(w.obs(), earliestEnd, math.MaxInt64)
	if !ok {
		return emptyIter{}, nil
	}
	spans := sessionSpans(&w.under.tb, key, from, to)
	// NB: from, not earliestEnd: the store below may not have seen the
	// stream time that expired sessions in the cached view.
	below, err := w.under.FindSessions(key, from, latestStart)
	if err != nil {
		return nil, err
	}
	return w.merge(spans, below, from, latestStart), nil
}

func (w *cachedSession) Fetch(key []byte) (state.SessionIterator, error) {
	return w.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (w *cachedSession) All() (state.SessionIterator, error) {
	if err := w.under.check(); err != nil {
		return nil, err
	}
	from, to, ok := w.under.tb.clamp(w.obs(), math.MinInt64, math.MaxInt64)
	if !ok {
		return emptyIter{}, nil
	}
	spans := []span{segmentsSpan(&w.under.tb, from, to)}
	below, err := w.under.All()
	if err != nil {
		return nil, err
	}
	return w.merge(spans, below, from, math.MaxInt64), nil
}

func (w *cachedSession) merge(spans []span, below state.SessionIterator, earliestEnd, latestStart int64) *cachedSessionIter {
	it := &cachedSessionIter{earliestEnd: earliestEnd, latestStart: latestStart}
	it.below = sessionBelow{it: below, tb: &w.under.tb, minEnd: earliestEnd}
	it.m = mergeIter{spans: spans, ns: w.ns, below: &it.below, accept: it}
	return it
}

func (it *cachedSessionIter) acceptCached(ck []byte) bool {
	_, k, start, end, err := layout.ParseSessionKey(it.kbuf[:0], ck)
	it.kbuf = k
	return err == nil && end >= it.earliestEnd && start <= it.latestStart
}

type sessionBelow struct {
	it state.SessionIterator
	tb *timeBox
	// minEnd skips sessions expired in the cached view.
	minEnd int64
	buf    []byte
}

func (b *sessionBelow) next() bool {
	for {
		if !b.it.Next() {
			return false
		}
		if b.it.End() >= b.minEnd {
			break
		}
	}
	b.buf = layout.AppendSessionKey(b.buf[:0], b.tb.seg(b.it.End()), b.it.Key(), b.it.Start(), b.it.End())
	return true
}
func (b *sessionBelow) ckey() []byte  { return b.buf }
func (b *sessionBelow) value() []byte { return b.it.Value() }
func (b *sessionBelow) err() error    { return b.it.Err() }
func (b *sessionBelow) close() error  { return b.it.Close() }

type cachedSessionIter struct {
	m                        mergeIter
	below                    sessionBelow
	earliestEnd, latestStart int64
	kbuf                     []byte
	key                      []byte
	start, end               int64
}

func (it *cachedSessionIter) Next() bool {
	if !it.m.Next() {
		return false
	}
	_, key, start, end, err := layout.ParseSessionKey(it.key[:0], it.m.key)
	if err != nil {
		it.m.err = err
		return false
	}
	it.key, it.start, it.end = key, start, end
	return true
}
func (it *cachedSessionIter) Key() []byte   { return it.key }
func (it *cachedSessionIter) Start() int64  { return it.start }
func (it *cachedSessionIter) End() int64    { return it.end }
func (it *cachedSessionIter) Value() []byte { return it.m.value }
func (it *cachedSessionIter) Err() error    { return it.m.Err() }
func (it *cachedSessionIter) Close() error  { return it.m.Close() }

func (w *cachedSession) Flush(ctx context.Context) error {
	if err := w.under.check(); err != nil {
		return err
	}
	if err := w.ns.flush(); err != nil {
		return err
	}
	return w.under.Flush(ctx)
}

func (w *cachedSession) Close() error {
	w.ns.drop()
	return w.under.Close()
}
