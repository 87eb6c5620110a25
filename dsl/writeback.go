package dsl

import (
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
// §5.6 gives the order of events at a commit (with 2.7).

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
	kv, err := storeAs[state.KeyValueStore](ctx, name, "key-value")
	if err != nil {
		return nil, err
	}
	if wb, ok := kv.(writeBackKV); ok {
		return wb, nil
	}
	return &throughKV{KeyValueStore: kv}, nil
}

func openWriteBackWindow[K, V any](ctx streams.ProcessorContext[K, V], name string) (writeBackWindow, error) {
	ws, err := storeAs[state.WindowStore](ctx, name, "window")
	if err != nil {
		return nil, err
	}
	if wb, ok := ws.(writeBackWindow); ok {
		return wb, nil
	}
	return &throughWindow{WindowStore: ws}, nil
}

func openWriteBackSession[K, V any](ctx streams.ProcessorContext[K, V], name string) (writeBackSession, error) {
	ss, err := storeAs[state.SessionStore](ctx, name, "session")
	if err != nil {
		return nil, err
	}
	if wb, ok := ss.(writeBackSession); ok {
		return wb, nil
	}
	return &throughSession{SessionStore: ss}, nil
}

// storeAs returns the processor's store name as an S, a store of the kind
// what.
func storeAs[S any, K, V any](ctx streams.ProcessorContext[K, V], name, what string) (S, error) {
	var zero S
	s, err := ctx.Store(name)
	if err != nil {
		return zero, err
	}
	st, ok := s.(S)
	if !ok {
		return zero, &streams.TopologyError{Node: name, Problem: "store is not a " + what + " store"}
	}
	return st, nil
}

// throughKV is the write-through view of an uncached key-value store: a
// tagged write goes to the store and runs the hook before it returns, for
// that write only. The hook is given the new value and no old one: its
// owner has the change at hand (kvChanges.cur) and forwards that, with no
// value read back or decoded again.
type throughKV struct {
	state.KeyValueStore
	hook func(key, newValue, oldValue []byte, tag any) error
	// tag is the tag of the last write, whose hook has run: GetTagged
	// returns it for any key, so that the caller reuses it.
	tag any
}

func (w *throughKV) OnWriteBack(h func(key, newValue, oldValue []byte, tag any) error) { w.hook = h }

func (w *throughKV) GetTagged(key []byte) ([]byte, any, error) {
	v, err := w.KeyValueStore.Get(key)
	return v, w.tag, err
}

func (w *throughKV) PutTagged(key, value []byte, tag any) error {
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

// throughWindow is throughKV for window stores.
type throughWindow struct {
	state.WindowStore
	hook func(key []byte, windowStart int64, newValue, oldValue []byte, tag any) error
	tag  any
}

func (w *throughWindow) OnWriteBack(h func(key []byte, windowStart int64, newValue, oldValue []byte, tag any) error) {
	w.hook = h
}

func (w *throughWindow) GetTagged(key []byte, start int64) ([]byte, any, error) {
	v, err := w.WindowStore.Get(key, start)
	return v, w.tag, err
}

func (w *throughWindow) PutTagged(key []byte, start int64, value []byte, tag any) error {
	w.tag = tag
	if err := w.WindowStore.Put(key, start, value); err != nil || w.hook == nil {
		return err
	}
	return w.hook(key, start, value, nil, tag)
}

// throughSession is throughKV for session stores.
type throughSession struct {
	state.SessionStore
	hook func(key []byte, start, end int64, newValue, oldValue []byte, tag any) error
}

func (w *throughSession) OnWriteBack(h func(key []byte, start, end int64, newValue, oldValue []byte, tag any) error) {
	w.hook = h
}

func (w *throughSession) PutTagged(key []byte, start, end int64, value []byte, tag any) error {
	if err := w.SessionStore.Put(key, start, end, value); err != nil || w.hook == nil {
		return err
	}
	return w.hook(key, start, end, value, nil, tag)
}

func (w *throughSession) RemoveTagged(key []byte, start, end int64, tag any) error {
	if err := w.SessionStore.Remove(key, start, end); err != nil || w.hook == nil {
		return err
	}
	return w.hook(key, start, end, nil, nil, tag)
}
