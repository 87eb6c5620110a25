// Package vfs is the filesystem layer under Weir's partition log. The log
// never calls the os package directly: it goes through an FS, so tests can
// substitute a filesystem that keeps everything in memory, one that forgets
// whatever was not synced when a crash is simulated (NewCrashableMem), and
// one that injects errors such as a full disk (NewInjecting).
//
// Durability model (followed by the in-memory crash filesystem and relied on
// by the log): a file's bytes are durable once File.Sync returns; the
// existence of a name (create, rename, remove) is durable once SyncDir on
// its parent directory returns.
package vfs
