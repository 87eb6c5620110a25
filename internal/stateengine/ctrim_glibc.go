//go:build cgo

package stateengine

// #include <stdlib.h>
// #ifdef __GLIBC__
// #include <malloc.h>
// // One malloc arena for the process (see below), set by a constructor:
// // it runs before the Go runtime starts any thread, and glibc attaches
// // each thread to an arena at its first malloc. MALLOC_ARENA_MAX, if
// // set, is left to rule.
// __attribute__((constructor)) static void weirOneArena(void) {
// 	if (getenv("MALLOC_ARENA_MAX") == NULL) mallopt(M_ARENA_MAX, 1);
// }
// static void weirTrim(void) { malloc_trim(0); }
// #else
// static void weirTrim(void) {}
// #endif
import "C"

// Pebble's block cache and memtables are malloc'd (with cgo). glibc (the
// only C library tuned here; elsewhere this does nothing) gives each thread
// that allocates an arena of its own, up to 8 per core, and a block freed
// by another thread goes back to its own arena, where glibc keeps it;
// Pebble allocates and frees blocks from whatever threads its goroutines
// run on, so every arena grows towards the whole cache's size. bench
// state (10 million keys, a 102 MiB cache with memtables) measured the
// RSS outside the Go runtime, the binary's pages included, at 285-292 MiB
// with glibc's default arenas, 169 MiB with MALLOC_ARENA_MAX=2 and 118 MiB
// with 1 and the trim below. The C constructor above sets one arena for
// any process that links this package (mallopt at Open came too late:
// threads that had allocated kept their own arenas). One arena means one
// lock for every C allocation: Pebble makes one per block read into the
// cache, which is small beside the read.

// trimCHeap returns the C allocator's free memory to the OS (glibc's
// malloc_trim, which also releases free pages inside its arenas), after a
// flush frees a memtable or a compaction the blocks it read.
func trimCHeap() { C.weirTrim() }
