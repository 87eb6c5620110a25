package stateengine

import "github.com/weir-dev/weir/state"

// KeyValueFlushListener is told, during a cached store's flush or eviction,
// that key changed from oldValue (nil: absent) to newValue (nil: deleted),
// after the change reached the store below. Aggregations forward downstream
// from here, so a key updated many times between flushes is forwarded once.
// An error stops the flush and is returned by it. Both values are valid
// only during the call (the cache reuses their memory).
type KeyValueFlushListener func(key, newValue, oldValue []byte) error

// WindowFlushListener is KeyValueFlushListener for a window store.
type WindowFlushListener func(key []byte, windowStart int64, newValue, oldValue []byte) error

// SessionFlushListener is KeyValueFlushListener for a session store.
type SessionFlushListener func(key []byte, start, end int64, newValue, oldValue []byte) error

// TaggedWindowStore is implemented by cached window stores: beside each
// cached window they keep a tag, a value of the caller's that the flush
// listener set with SetWindowTagListener receives when the window is
// written back. An aggregation keeps there the input record its flushed
// result is forwarded with, instead of in a map of its own. A tag stays
// with its window while the window is cached (an uncached store keeps
// none: GetTagged then returns a nil tag).
type TaggedWindowStore interface {
	state.WindowStore
	// GetTagged returns the value of key's window at windowStart, as Get,
	// and its tag (nil if none). Unlike Get's, the value is not a copy:
	// it is valid until the next write to the store, and must not be
	// modified.
	GetTagged(key []byte, windowStart int64) ([]byte, any, error)
	// PutTagged is Put, and sets the window's tag.
	PutTagged(key []byte, windowStart int64, value []byte, tag any) error
}

// WindowTagListener is WindowFlushListener with the window's tag (nil if
// none; see TaggedWindowStore).
type WindowTagListener func(key []byte, windowStart int64, newValue, oldValue []byte, tag any) error

// TaggedKeyValueStore is TaggedWindowStore for key-value stores: cached
// key-value stores keep a tag beside each cached key, which the listener
// set with SetKeyValueTagListener receives at write-back.
type TaggedKeyValueStore interface {
	state.KeyValueStore
	// GetTagged returns key's value, as Get, and its tag (nil if none).
	// The value is not a copy: it is valid until the next write to the
	// store, and must not be modified.
	GetTagged(key []byte) ([]byte, any, error)
	// PutTagged is Put, and sets the key's tag. A nil value deletes the key
	// (the tag stays with the tombstone until it is written back).
	PutTagged(key, value []byte, tag any) error
}

// KeyValueTagListener is KeyValueFlushListener with the key's tag (nil if
// none; see TaggedKeyValueStore).
type KeyValueTagListener func(key, newValue, oldValue []byte, tag any) error
