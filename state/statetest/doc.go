// Package statetest provides an in-memory changelog partition for tests of
// code that uses state stores: Changelog implements both
// state.ChangelogWriter and state.ChangelogReader, and can simulate a
// producer that dies (DropPending), log compaction (Compact) and a topic
// that was deleted and recreated (Truncate).
package statetest
