// Package state holds the interfaces of Weir's state stores and what an
// application needs to use them: the key-value, window and session store
// interfaces and their iterators, the Spec that declares a store of a
// topology, the changelog a store is recovered from (ChangelogWriter,
// ChangelogReader, ChangelogTopicFor), and typed views over the byte-level
// stores (TypedKeyValue, TypedWindow, TypedSession, Timestamped).
//
// A processor reaches its stores through its ProcessorContext (or a typed
// handle of package dsl) and works with these interfaces only:
//
//	raw, err := ctx.Store("counts")
//	kv := state.NewTypedKeyValue(raw.(state.KeyValueStore), serde.String(), serde.Int64())
//	n, _, err := kv.Get("word")
//	err = kv.Put("word", n+1)
//
// The engine that implements them (the Pebble and in-memory backends, the
// write-back cache, restore from a changelog, the memory budget) is
// internal to Weir: the runtime and the test driver open it, and
// applications never do. This package imports neither Pebble nor a cache
// library; its changelogs are written and read through small interfaces
// that the runtime implements with franz-go and the test driver with
// in-memory topics.
//
// docs/ARCHITECTURE.md describes the store engine: the restore path (2.8),
// the key layout (3.5), the commit protocol, the cache and the memory
// budget (5.5) and the tests (8).
package state
