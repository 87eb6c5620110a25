package stateengine

import "github.com/weir-dev/weir/state"

// KeyValueFlushListener is told, during a cached store's flush or eviction,
// that key changed from oldValue (nil: absent) to newValue (nil: deleted),
// after the change reached the store below. It is the write-back hook
// without the tag (see KeyValueTagListener), given when a store is wrapped.
// An error stops the flush and is returned by it. Both values are valid
// only during the call (the cache reuses their memory).
type KeyValueFlushListener func(key, newValue, oldValue []byte) error

// WindowFlushListener is KeyValueFlushListener for a window store.
type WindowFlushListener func(key []byte, windowStart int64, newValue, oldValue []byte) error

// SessionFlushListener is KeyValueFlushListener for a session store.
type SessionFlushListener func(key []byte, start, end int64, newValue, oldValue []byte) error

// KeyValueTagListener is a cached key-value store's write-back hook: it is
// told, when the cache writes a key back (by Flush or eviction), that the
// key changed from oldValue to newValue, and receives the key's tag (nil if
// none; see TaggedKeyValueStore). Aggregations forward downstream from
// here, so a key updated many times between flushes is forwarded once.
//
// NB: the hook types are aliases of plain function types, so that a
// package may name the method set it needs (OnWriteBack, GetTagged,
// PutTagged) in an interface of its own, without importing this one.
type KeyValueTagListener = func(key, newValue, oldValue []byte, tag any) error

// WindowTagListener is KeyValueTagListener for a window store.
type WindowTagListener = func(key []byte, windowStart int64, newValue, oldValue []byte, tag any) error

// SessionTagListener is KeyValueTagListener for a session store.
type SessionTagListener = func(key []byte, start, end int64, newValue, oldValue []byte, tag any) error

// TaggedKeyValueStore is implemented by cached key-value stores: beside each
// cached key they keep a tag, a value of the caller's that the write-back
// hook set with OnWriteBack receives when the key is written back. An
// aggregation keeps there the input record its result is forwarded with.
// A tag stays with its key while the key is cached.
type TaggedKeyValueStore interface {
	state.KeyValueStore
	// GetTagged returns key's value, as Get, and its tag (nil if none).
	// The value is not a copy: it is valid until the next write to the
	// store, and must not be modified.
	GetTagged(key []byte) ([]byte, any, error)
	// PutTagged is Put, and sets the key's tag. A nil value deletes the key
	// (the tag stays with the tombstone until it is written back).
	PutTagged(key, value []byte, tag any) error
	// OnWriteBack sets (nil: clears) the write-back hook: the runtime
	// wraps a task's stores, the processor that owns one says where to
	// forward.
	OnWriteBack(h KeyValueTagListener)
}

// TaggedWindowStore is TaggedKeyValueStore for window stores.
type TaggedWindowStore interface {
	state.WindowStore
	// GetTagged returns the value of key's window at windowStart, as Get,
	// and its tag (nil if none); the value is not a copy, as
	// TaggedKeyValueStore's.
	GetTagged(key []byte, windowStart int64) ([]byte, any, error)
	// PutTagged is Put, and sets the window's tag.
	PutTagged(key []byte, windowStart int64, value []byte, tag any) error
	// OnWriteBack sets (nil: clears) the write-back hook.
	OnWriteBack(h WindowTagListener)
}

// TaggedSessionStore is TaggedKeyValueStore for session stores. A removed
// session keeps its tag on the tombstone until it is written back.
type TaggedSessionStore interface {
	state.SessionStore
	// PutTagged is Put, and sets the session's tag.
	PutTagged(key []byte, start, end int64, value []byte, tag any) error
	// RemoveTagged is Remove, and sets the session's tag.
	RemoveTagged(key []byte, start, end int64, tag any) error
	// OnWriteBack sets (nil: clears) the write-back hook.
	OnWriteBack(h SessionTagListener)
}

var (
	_ TaggedKeyValueStore = (*cachedKV)(nil)
	_ TaggedWindowStore   = (*cachedWindowStore)(nil)
	_ TaggedSessionStore  = (*cachedSessionStore)(nil)
)

// untaggedKV adapts a KeyValueFlushListener (nil stays nil).
func untaggedKV(l KeyValueFlushListener) KeyValueTagListener {
	if l == nil {
		return nil
	}
	return func(key, nv, ov []byte, _ any) error { return l(key, nv, ov) }
}

// untagged adapts a WindowFlushListener (nil stays nil).
func untagged(l WindowFlushListener) WindowTagListener {
	if l == nil {
		return nil
	}
	return func(key []byte, start int64, nv, ov []byte, _ any) error { return l(key, start, nv, ov) }
}

// untaggedSession adapts a SessionFlushListener (nil stays nil).
func untaggedSession(l SessionFlushListener) SessionTagListener {
	if l == nil {
		return nil
	}
	return func(key []byte, start, end int64, nv, ov []byte, _ any) error { return l(key, start, end, nv, ov) }
}
