// Package dirlock gives one process at a time a directory: Acquire takes an
// exclusive, non-blocking flock(2) on a lock file inside the directory and
// writes the holder's pid into it, so that a second process (or a second
// opener in the same process) is refused at once with an error naming the
// directory and the pid holding it.
//
// The lock is the kernel's: it goes away when the holder closes it or dies
// (kill -9 included), so a crash never leaves a stale lock behind. The pid
// in the file is information for the error message only; who holds the
// lock is decided by flock, never by the file's contents.
//
// Weir's broker locks its data directory and the runtime locks its state
// directory with it, before reading or writing anything else there.
package dirlock
