// Package storage is the partition log under Weir's broker: one Log per
// partition, a directory of segments holding Kafka RecordBatch v2 bytes
// verbatim, with a sparse offset index and a time index per segment, a
// leader-epoch checkpoint, idempotent-producer state, retention, compaction
// and crash recovery.
//
// The produce path validates batch headers and CRCs, patches baseOffset and
// partitionLeaderEpoch in place and appends; it never decodes records. The
// fetch path returns raw bytes. Only compaction and OffsetForTimestamp (the
// one batch holding the timestamp sought) decode records.
//
// Durability is explicit (Options.Sync): with SyncGroupCommit, the default,
// Append returns only once an fsync covers its bytes, and concurrent
// appenders share one fsync; the high watermark is the end of what is
// fsynced, so a reader never sees data a crash could take back. With
// SyncInterval and SyncNever, Append returns once the bytes are written and
// the high watermark equals the log end offset: a machine crash may lose the
// acknowledged tail.
//
// A full disk fails appends (ErrDiskFull) and nothing else: Open writes
// nothing it does not have to (a checkpoint is rewritten only when it no
// longer matches the log, rebuilt indexes stay in memory, sealed segments
// are opened read-only), reads and Close work, and retention deletes whole
// segments without the log-start checkpoint it cannot write, as
// DeleteRecordsBefore does before it tries its checkpoint again.
//
// Every file operation goes through Options.FS, Pebble's vfs.FS (file.go):
// vfs.Default in production; in tests vfs.NewCrashableMem, whose CrashClone
// keeps what was synced and may drop the rest, and errorfs for injected
// faults.
//
// docs/ARCHITECTURE.md describes the data path (2.1, 2.2), the on-disk format (3.2), the lock order
// (4) and the recovery, retention and compaction rules (5.1).
package storage
