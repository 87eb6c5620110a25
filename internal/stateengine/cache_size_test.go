package stateengine_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
)

// liveHeap is the Go heap's live bytes after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestCacheAccountsWhatItHolds checks that what a write-back cache counts
// against the memory budget is what its entries hold on the Go heap: the
// entry, its key and values, and its slot in the table (within 15%), for
// small and larger values, new keys and keys rewritten after a flush.
func TestCacheAccountsWhatItHolds(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	const n = 100_000
	for _, size := range []int{8, 100} {
		e, err := stateengine.Open(stateengine.Options{Dir: "/state", FS: vfs.NewMem(), MemoryBudget: 4 << 30, NoSync: true, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := e.OpenKeyValue(context.Background(), state.Spec{Name: "kv"}, 0, &discardChangelog{})
		if err != nil {
			t.Fatal(err)
		}
		c := e.NewCache()
		s, err := c.KeyValue(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		key := make([]byte, 8)
		val := make([]byte, size)
		putAll := func() {
			for i := range n {
				binary.BigEndian.PutUint64(key, uint64(i)*0x9E3779B97F4A7C15)
				binary.BigEndian.PutUint64(val, uint64(i))
				if err := s.Put(key, val); err != nil {
					t.Fatal(err)
				}
			}
		}
		check := func(what string, heap, counted int64) {
			t.Helper()
			ratio := float64(counted) / float64(heap)
			t.Logf("%d B values, %s: %d entries hold %d B of heap (%.0f B an entry), counted %d B (%.2fx)",
				size, what, n, heap, float64(heap)/n, counted, ratio)
			if ratio < 0.85 || ratio > 1.15 {
				t.Errorf("%d B values, %s: the cache counts %.2fx the heap its entries hold, want 0.85x-1.15x", size, what, ratio)
			}
		}
		h0, b0 := liveHeap(), c.Bytes()
		putAll()
		h1, b1 := liveHeap(), c.Bytes()
		check("new keys", h1-h0, b1-b0)
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Flushed entries stay cached, clean; writing them again keeps the
		// value below (old) beside the new one.
		h2, b2 := liveHeap(), c.Bytes()
		putAll()
		h3, b3 := liveHeap(), c.Bytes()
		check("rewritten after a flush", h3-h0-(h2-h1), b3-b0-(b2-b1))
		runtime.KeepAlive(s)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
