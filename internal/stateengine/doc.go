// Package stateengine implements Weir's state stores (the interfaces of
// package state): key-value, window and session stores on Pebble or in
// memory, a per-task write-back cache, and the restore machinery that makes
// a store recoverable on another machine from its changelog.
//
// It is internal: the runtime, the test driver and the DSL's aggregations
// use it; applications see only package state. It depends on no Kafka
// client: changelogs are written and read through state.ChangelogWriter and
// state.ChangelogReader, which the runtime implements with franz-go and the
// test driver with in-memory topics.
//
// An application instance opens one Engine: one Pebble database shared by
// all its persistent stores (each store and partition under its own key
// prefix) and one memory budget for all of them. A task opens its stores
// from the engine, wraps them with its write-back Cache, restores them, and
// flushes them on commit:
//
//	e, err := stateengine.Open(stateengine.Options{Dir: dir, MemoryBudget: 256 << 20})
//	raw, err := e.OpenKeyValue(ctx, state.Spec{Name: "counts"}, partition, changelogWriter)
//	kv, err := e.NewCache().KeyValue(raw, func(key, newValue, oldValue []byte) error {
//		return forward(key, newValue, oldValue) // once per key per flush
//	})
//	_, err = stateengine.Restore(ctx, kv, changelogReader) // replays only the tail
//	...
//	err = kv.Flush(ctx) // cache -> store -> changelog; data and offset commit together
//
// docs/ARCHITECTURE.md describes the restore path (2.8), the key layout (3.5), the commit
// protocol, the cache and the memory budget (5.5) and the tests (8).
package stateengine
