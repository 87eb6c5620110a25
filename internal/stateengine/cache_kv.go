package stateengine

import (
	"bytes"
	"context"
	"fmt"
	"github.com/weir-dev/weir/state"
)

// KeyValue returns s wrapped by the cache; listener (may be nil) is called
// once per changed key when the key's entry is written back, by Flush or by
// eviction. s must be a store opened by an Engine.
func (c *Cache) KeyValue(s state.KeyValueStore, listener KeyValueFlushListener) (state.KeyValueStore, error) {
	b, err := checkCached(s)
	if err != nil {
		return nil, err
	}
	w := &cachedKV{under: s, b: b, listener: untaggedKV(listener)}
	if ks, ok := s.(*kvStore); ok {
		if mb, ok := ks.data.(*memBackend); ok {
			// An in-memory store is cached in place (see memBackend).
			if mb.wrapped {
				return nil, fmt.Errorf("state: cache: key-value store %q is already wrapped", s.Name())
			}
			mb.wrapped = true
			w.ns = newCacheNSOn(c, mb.tab, true)
			w.ns.write = w.writeInPlace
			return w, nil
		}
	}
	w.ns = newCacheNS(c)
	w.ns.write = w.write
	return w, nil
}

// cachedKV is a KeyValueStore behind a write-back cache. Cache keys are the
// user keys. In front of an in-memory store the cache's entries are the
// store's data (ns.inPlace): a read that misses the cache misses the store
// too, and a write-back only logs the change.
type cachedKV struct {
	under    state.KeyValueStore
	b        *base
	ns       *cacheNS
	listener KeyValueTagListener
}

func (w *cachedKV) baseStore() *base { return w.b }

// OnWriteBack implements TaggedKeyValueStore.
func (w *cachedKV) OnWriteBack(h KeyValueTagListener) { w.listener = h }
func (w *cachedKV) applyChange(key, value []byte) error {
	return w.under.(restorer).applyChange(key, value)
}
func (w *cachedKV) dropCached()  { w.ns.drop() }
func (w *cachedKV) Name() string { return w.under.Name() }

func (w *cachedKV) write(en *centry) error {
	var old []byte
	if w.listener != nil {
		if en.oldKnown {
			old = en.old
		} else {
			var err error
			if old, err = w.under.Get(en.key); err != nil {
				return err
			}
		}
	}
	var err error
	if en.value == nil {
		err = w.under.Delete(en.key)
	} else {
		err = w.under.Put(en.key, en.value)
	}
	if err != nil || w.listener == nil {
		return err
	}
	if en.value == nil && old == nil {
		return nil // deleting an absent key changes nothing downstream
	}
	return w.listener(en.key, en.value, old, en.tag)
}

// writeInPlace writes back an entry cached in place: the entry is the
// store's data already, so only the changelog and the listener hear of it.
func (w *cachedKV) writeInPlace(en *centry) error {
	if err := w.b.logChange(en.key, en.value); err != nil {
		return err
	}
	if w.listener == nil || (en.value == nil && en.old == nil) {
		return nil
	}
	return w.listener(en.key, en.value, en.old, en.tag)
}

func (w *cachedKV) Get(key []byte) ([]byte, error) {
	if err := w.baseStore().check(); err != nil {
		return nil, err
	}
	if en := w.ns.get(key); en != nil {
		if en.value == nil {
			return nil, nil
		}
		return append(make([]byte, 0, len(en.value)), en.value...), nil
	}
	if w.ns.inPlace {
		return nil, nil
	}
	v, err := w.under.Get(key)
	if err != nil || v == nil {
		return v, err
	}
	return v, w.ns.put(key, v, false)
}

func (w *cachedKV) Put(key, value []byte) error {
	return w.put(key, value, nil, false)
}

// PutTagged implements TaggedKeyValueStore.
func (w *cachedKV) PutTagged(key, value []byte, tag any) error {
	return w.put(key, value, tag, true)
}

func (w *cachedKV) put(key, value []byte, tag any, setTag bool) error {
	b := w.baseStore()
	if err := b.check(); err != nil {
		return err
	}
	if err := b.keyErr(key); err != nil {
		return err
	}
	return w.ns.putTagged(key, value, true, tag, setTag, false)
}

// GetTagged implements TaggedKeyValueStore.
func (w *cachedKV) GetTagged(key []byte) ([]byte, any, error) {
	if err := w.baseStore().check(); err != nil {
		return nil, nil, err
	}
	if en := w.ns.get(key); en != nil {
		return en.value, en.tag, nil
	}
	if w.ns.inPlace {
		return nil, nil, nil
	}
	v, err := w.under.Get(key)
	if err != nil || v == nil {
		return v, nil, err
	}
	return v, nil, w.ns.put(key, v, false)
}

func (w *cachedKV) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := w.Get(key)
	if err != nil || old != nil {
		return old, err
	}
	return nil, w.Put(key, value)
}

func (w *cachedKV) Delete(key []byte) error { return w.Put(key, nil) }

func (w *cachedKV) Range(from, to []byte, reverse bool) (state.Iterator, error) {
	if err := w.baseStore().check(); err != nil {
		return nil, err
	}
	if from != nil && to != nil && bytes.Compare(from, to) >= 0 {
		return emptyIter{}, nil
	}
	if w.ns.inPlace {
		return kvIter{newMemIter(w.ns.tab, true, from, to, reverse)}, nil
	}
	it, err := w.under.Range(from, to, reverse)
	if err != nil {
		return nil, err
	}
	m := &mergeKV{below: kvBelow{it: it, under: w.under}, spanArr: [1]span{{from, to}}}
	m.mergeIter = mergeIter{spans: m.spanArr[:], reverse: reverse, ns: w.ns, below: &m.below, gen: w.ns.removals}
	return m, nil
}

func (w *cachedKV) Prefix(prefix []byte, reverse bool) (state.Iterator, error) {
	return w.Range(prefix, prefixEnd(prefix), reverse)
}

func (w *cachedKV) All(reverse bool) (state.Iterator, error) { return w.Range(nil, nil, reverse) }

// ApproximateCount counts the store below plus the dirty entries, so it
// may count a key twice or a deleted key once. In place it is exact: the
// stored values corrected by the dirty entries.
func (w *cachedKV) ApproximateCount() (int64, error) {
	if !w.ns.inPlace {
		n, err := w.under.ApproximateCount()
		return n + int64(w.ns.ndirty), err
	}
	if err := w.b.check(); err != nil {
		return 0, err
	}
	n := w.ns.tab.nstored
	for en := w.ns.dirty.dnext; en != &w.ns.dirty; en = en.dnext {
		switch {
		case en.value != nil && en.old == nil:
			n++
		case en.value == nil && en.old != nil:
			n--
		}
	}
	return n, nil
}

func (w *cachedKV) Flush(ctx context.Context) error {
	if err := w.baseStore().check(); err != nil {
		return err
	}
	if err := w.ns.flush(); err != nil {
		return err
	}
	return w.under.Flush(ctx)
}

func (w *cachedKV) Close() error {
	w.ns.drop()
	return w.under.Close()
}

// kvBelow is the store's side of a key-value merge.
type kvBelow struct {
	it    state.Iterator
	under state.KeyValueStore
}

func (k *kvBelow) next() bool    { return k.it.Next() }
func (k *kvBelow) ckey() []byte  { return k.it.Key() }
func (k *kvBelow) value() []byte { return k.it.Value() }
func (k *kvBelow) err() error    { return k.it.Err() }
func (k *kvBelow) close() error  { return k.it.Close() }

func (k *kvBelow) reopen(spans []span, reverse bool) error {
	if err := k.it.Close(); err != nil {
		return err
	}
	k.it = emptyIter{}
	if len(spans) == 0 {
		return nil
	}
	// A key-value merge has one span.
	it, err := k.under.Range(spans[0].lo, spans[0].hi, reverse)
	if err != nil {
		return err
	}
	k.it = it
	return nil
}

// mergeKV is a cached key-value store's iterator, in one allocation.
type mergeKV struct {
	mergeIter
	below   kvBelow
	spanArr [1]span
}

func (m *mergeKV) Key() []byte   { return m.key }
func (m *mergeKV) Value() []byte { return m.value }
