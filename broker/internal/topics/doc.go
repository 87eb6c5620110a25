// Package topics is the broker's topic registry: which topics exist, their
// ids, partition counts and per-topic configuration, each partition's log,
// and the broker's small persistent metadata (cluster id, producer id
// allocation). Everything here survives a restart.
//
// # On disk
//
//	<data-dir>/meta.json                    cluster id (written once)
//	<data-dir>/producer-ids                 first producer id not yet handed out
//	<data-dir>/topics/<name>/topic.json     id, partition count, explicit configs
//	<data-dir>/topics/<name>/<partition>/   one partition log (storage package)
//	<data-dir>/deleted/                     topics being removed
//
// A topic exists exactly when its topic.json exists: creation opens the
// partition logs first and writes topic.json last (atomically, by rename);
// deletion renames the topic directory into deleted/ first and removes it
// afterwards, and Open finishes interrupted removals and discards
// directories without a topic.json. Creation syncs topics/ after
// topic.json, so an acknowledged topic survives a machine crash.
//
// The registry's files go through Options.FS (Pebble's vfs.FS; the
// operating system's by default), so its crash behaviour is tested on a
// memory filesystem that forgets what was not synced (crash_test.go).
//
// # Concurrency
//
// Lookups (Get, Topic.Partition) are lock-free reads of immutable snapshots
// published with atomic pointers, so the produce and fetch paths take no
// registry lock. Mutations (create, delete, add partitions, alter configs)
// serialize on Registry.mu, which is never held while a partition's log is
// appended to or read.
package topics
