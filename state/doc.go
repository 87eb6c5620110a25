// Package state holds Weir's state stores: key-value, window and session
// stores on Pebble or in memory, a per-task write-back cache, and the
// changelog machinery that makes a store recoverable on another machine.
//
// The package depends on no Kafka client: changelogs are written and read
// through small interfaces that the runtime implements with franz-go and the
// test driver with in-memory topics.
package state
