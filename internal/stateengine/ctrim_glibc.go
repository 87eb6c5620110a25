//go:build cgo

package stateengine

// #include <stdlib.h>
// #ifdef __GLIBC__
// #include <malloc.h>
// static void weirLimitArenas(int n) { mallopt(M_ARENA_MAX, n); }
// static void weirTrim(void) { malloc_trim(0); }
// #else
// static void weirLimitArenas(int n) { (void)n; }
// static void weirTrim(void) {}
// #endif
import "C"

import "sync"

// Pebble's block cache and memtables are malloc'd (with cgo). glibc (the
// only C library this tunes; elsewhere these do nothing) gives
// each thread that allocates an arena of its own, up to 8 per core, and a
// block freed by another thread goes back to its own arena, where glibc
// keeps it; Pebble allocates and frees blocks from whatever threads its
// goroutines run on, so every arena grows towards the whole cache's size.
// bench state (10 million keys, a 102 MiB cache with memtables) measured
// the C heap (RSS outside the Go runtime) at 285-292 MiB with the default
// arenas, 169 MiB with two and 118 MiB with one (and the trim below),
// the binary's pages included. One arena means one lock for every C
// allocation: Pebble makes one per block read into the cache, which is
// small beside the read.

var limitArenasOnce sync.Once

// limitCArenas caps glibc's malloc arenas for the process, before Pebble
// allocates: called by Open.
func limitCArenas() {
	limitArenasOnce.Do(func() { C.weirLimitArenas(1) })
}

// trimCHeap returns the C allocator's free memory to the OS (glibc's
// malloc_trim, which also releases free pages inside its arenas), after a
// flush frees a memtable or a compaction the blocks it read.
func trimCHeap() { C.weirTrim() }
