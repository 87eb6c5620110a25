package dsl

import (
	"bytes"
	"time"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// An aggregation (and a table's source) forwards in one way: it writes each
// result with a tag, the input record the result is forwarded with, and
// forwards from the store's write-back hook, which receives the key, the
// new and the old serialized value and the tag when the result is written
// back to the store. A store behind the task's write-back cache writes back
// at the commit's flush (or an eviction), so a key updated many times
// between commits is forwarded once; an uncached store is adapted here by a
// write-through view whose writes run the hook at once. docs/ARCHITECTURE.md
// §5.5 gives the order of events at a commit.

// writeBackKV is a key-value store with a write-back hook: the cached
// stores of the state engine implement it.
type writeBackKV interface {
	state.KeyValueStore
	// GetTagged is Get, with the key's tag; the value is not a copy.
	GetTagged(key []byte) ([]byte, any, error)
	// PutTagged is Put (a nil value deletes), setting the key's tag.
	PutTagged(key, value []byte, tag any) error
	// OnWriteBack sets the hook the store calls when it writes a key back.
	OnWriteBack(func(key, newValue, oldValue []byte, tag any) error)
}

// writeBackWindow is writeBackKV for window stores.
type writeBackWindow interface {
	state.WindowStore
	GetTagged(key []byte, windowStart int64) ([]byte, any, error)
	PutTagged(key []byte, windowStart int64, value []byte, tag any) error
	OnWriteBack(func(key []byte, windowStart int64, newValue, oldValue []byte, tag any) error)
}

// writeBackSession is writeBackKV for session stores.
type writeBackSession interface {
	state.SessionStore
	PutTagged(key []byte, start, end int64, value []byte, tag any) error
	RemoveTagged(key []byte, start, end int64, tag any) error
	OnWriteBack(func(key []byte, start, end int64, newValue, oldValue []byte, tag any) error)
}

// fwdRec is a write's tag: the input record its result is forwarded with.
// An aggregation reuses a key's tag from one write to the next (the hook
// has run for the previous one, or the entry still waits with it and the
// newer record replaces the older).
type fwdRec[K any] struct {
	key     K
	ts      time.Time
	headers streams.Headers
	// rewritten lists, for a session aggregation's key, the [start, end]
	// bounds of sessions removed and put again since their write-back (a
	// record inside them): their write-back forwards the old session's
	// deletion before the new value, as the write-through path does.
	rewritten [][2]int64
}

// keyRec is the record a write-back of an entry written without a tag
// forwards with: the key read back, at stream time now.
// NB: the hooks call it only when the tag is missing: converting their
// serde and context to narrower interfaces on every write-back costs an
// itab lookup each.
func keyRec[K any](ks serde.Serde[K], store string, kb []byte, now time.Time) (*fwdRec[K], error) {
	k, err := ks.Deserialize(store, kb)
	if err != nil {
		return nil, err
	}
	return &fwdRec[K]{key: k, ts: now}, nil
}

// openWriteBackKV returns store name with a write-back hook: the store
// itself if cached, else a write-through view of it.
func openWriteBackKV[K, V any](ctx streams.ProcessorContext[K, V], name string) (writeBackKV, error) {
	kv, err := kvStore(ctx, name)
	if err != nil {
		return nil, err
	}
	if wb, ok := kv.(writeBackKV); ok {
		return wb, nil
	}
	return &throughKV{KeyValueStore: kv}, nil
}

func openWriteBackWindow[K, V any](ctx streams.ProcessorContext[K, V], name string) (writeBackWindow, error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	ws, ok := s.(state.WindowStore)
	if !ok {
		return nil, &streams.TopologyError{Node: name, Problem: "store is not a window store"}
	}
	if wb, ok := ws.(writeBackWindow); ok {
		return wb, nil
	}
	return &throughWindow{WindowStore: ws}, nil
}

func openWriteBackSession[K, V any](ctx streams.ProcessorContext[K, V], name string) (writeBackSession, error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	ss, ok := s.(state.SessionStore)
	if !ok {
		return nil, &streams.TopologyError{Node: name, Problem: "store is not a session store"}
	}
	if wb, ok := ss.(writeBackSession); ok {
		return wb, nil
	}
	return &throughSession{SessionStore: ss}, nil
}

// throughKV is the write-through view of an uncached key-value store: a
// tagged write goes to the store and runs the hook before it returns.
type throughKV struct {
	state.KeyValueStore
	hook func(key, newValue, oldValue []byte, tag any) error
	// known is set by a processor that forwards the change it put itself
	// (its hook runs inside its own put): the view then reads no old value
	// and runs the hook on every tagged write, with a nil old value.
	known bool
	// lastKey and lastVal are the key GetTagged read last and its value:
	// an aggregation reads a key and writes it at once, and the hook's old
	// value need not be read again. has says they are valid (no write
	// since).
	lastKey, lastVal []byte
	has              bool
	// tag is the tag of the last write, whose hook has run: GetTagged
	// returns it for any key, so that the caller reuses it.
	tag any
}

func (w *throughKV) OnWriteBack(h func(key, newValue, oldValue []byte, tag any) error) { w.hook = h }

func (w *throughKV) GetTagged(key []byte) ([]byte, any, error) {
	v, err := w.KeyValueStore.Get(key)
	if err != nil || w.known {
		return v, w.tag, err
	}
	w.lastKey, w.lastVal, w.has = append(w.lastKey[:0], key...), v, true
	return v, w.tag, nil
}

func (w *throughKV) PutTagged(key, value []byte, tag any) error {
	if w.known {
		w.tag = tag
		var err error
		if value == nil {
			err = w.KeyValueStore.Delete(key)
		} else {
			err = w.KeyValueStore.Put(key, value)
		}
		if err != nil || w.hook == nil {
			return err
		}
		return w.hook(key, value, nil, tag)
	}
	var old []byte
	if w.hook != nil {
		if w.has && bytes.Equal(key, w.lastKey) {
			old = w.lastVal
		} else {
			var err error
			if old, err = w.KeyValueStore.Get(key); err != nil {
				return err
			}
		}
	}
	w.has, w.tag = false, tag
	var err error
	if value == nil {
		err = w.KeyValueStore.Delete(key)
	} else {
		err = w.KeyValueStore.Put(key, value)
	}
	if err != nil || w.hook == nil || (value == nil && old == nil) {
		return err
	}
	return w.hook(key, value, old, tag)
}

func (w *throughKV) Put(key, value []byte) error {
	w.has = false
	return w.KeyValueStore.Put(key, value)
}

func (w *throughKV) Delete(key []byte) error {
	w.has = false
	return w.KeyValueStore.Delete(key)
}

func (w *throughKV) PutIfAbsent(key, value []byte) ([]byte, error) {
	w.has = false
	return w.KeyValueStore.PutIfAbsent(key, value)
}

// throughWindow is throughKV for window stores.
type throughWindow struct {
	state.WindowStore
	hook             func(key []byte, windowStart int64, newValue, oldValue []byte, tag any) error
	known            bool
	lastKey, lastVal []byte
	lastStart        int64
	has              bool
	tag              any
}

func (w *throughWindow) OnWriteBack(h func(key []byte, windowStart int64, newValue, oldValue []byte, tag any) error) {
	w.hook = h
}

func (w *throughWindow) GetTagged(key []byte, start int64) ([]byte, any, error) {
	v, err := w.WindowStore.Get(key, start)
	if err != nil || w.known {
		return v, w.tag, err
	}
	w.lastKey, w.lastVal, w.lastStart, w.has = append(w.lastKey[:0], key...), v, start, true
	return v, w.tag, nil
}

func (w *throughWindow) PutTagged(key []byte, start int64, value []byte, tag any) error {
	if w.known {
		w.tag = tag
		if err := w.WindowStore.Put(key, start, value); err != nil || w.hook == nil {
			return err
		}
		return w.hook(key, start, value, nil, tag)
	}
	var old []byte
	if w.hook != nil {
		if w.has && start == w.lastStart && bytes.Equal(key, w.lastKey) {
			old = w.lastVal
		} else {
			var err error
			if old, err = w.WindowStore.Get(key, start); err != nil {
				return err
			}
		}
	}
	w.has, w.tag = false, tag
	if err := w.WindowStore.Put(key, start, value); err != nil || w.hook == nil || (value == nil && old == nil) {
		return err
	}
	return w.hook(key, start, value, old, tag)
}

func (w *throughWindow) Put(key []byte, start int64, value []byte) error {
	w.has = false
	return w.WindowStore.Put(key, start, value)
}

// throughSession is throughKV for session stores. It keeps no read value:
// a session aggregation finds its sessions by iterating.
type throughSession struct {
	state.SessionStore
	hook func(key []byte, start, end int64, newValue, oldValue []byte, tag any) error
}

func (w *throughSession) OnWriteBack(h func(key []byte, start, end int64, newValue, oldValue []byte, tag any) error) {
	w.hook = h
}

func (w *throughSession) PutTagged(key []byte, start, end int64, value []byte, tag any) error {
	var old []byte
	if w.hook != nil {
		var err error
		if old, err = w.SessionStore.Get(key, start, end); err != nil {
			return err
		}
	}
	var err error
	if value == nil {
		err = w.SessionStore.Remove(key, start, end)
	} else {
		err = w.SessionStore.Put(key, start, end, value)
	}
	if err != nil || w.hook == nil || (value == nil && old == nil) {
		return err
	}
	return w.hook(key, start, end, value, old, tag)
}

func (w *throughSession) RemoveTagged(key []byte, start, end int64, tag any) error {
	return w.PutTagged(key, start, end, nil, tag)
}
