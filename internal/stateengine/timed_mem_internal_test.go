package stateengine

import (
	"context"
	"fmt"
	"github.com/weir-dev/weir/state"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Expiry frees the windows of the in-memory store, not only hides them:
// once stream time passes their segments, their keys leave the map, also
// when they were dirty in the cache at the time (their write-back drops
// them).
func TestMemWindowExpiryFreesKeys(t *testing.T) {
	ctx := context.Background()
	e, err := Open(Options{Dir: "/s", FS: vfs.NewMem(), MemoryBudget: MinMemoryBudget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", InMemory: true, Unlogged: true, Retention: time.Minute}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := raw.(*windowStore).timedStore().mem
	w, err := e.NewCache().Window(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		if err := raw.Put(fmt.Appendf(nil, "raw%d", i), 0, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := w.Put(fmt.Appendf(nil, "cached%d", i), 1000, []byte("y")); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(ms.keys); got != 2*n {
		t.Fatalf("%d keys before expiry, want %d", got, 2*n)
	}
	// Far ahead: every window above expires; the dirty ones go at flush.
	if err := raw.Put([]byte("late"), 10*60_000, []byte("z")); err != nil {
		t.Fatal(err)
	}
	if got := len(ms.keys); got != n+1 {
		t.Fatalf("%d keys after the raw store's expiry, want %d (the dirty ones and the new one)", got, n+1)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(ms.keys); got != 1 {
		t.Fatalf("%d keys after flush, want 1", got)
	}
	if got := len(ms.segs); got != 1 {
		t.Fatalf("%d segments listed, want 1", got)
	}
}

// emptyChangelog is a ChangelogReader of an empty log.
type emptyChangelog struct{}

func (emptyChangelog) Topic() string                                   { return "empty" }
func (emptyChangelog) Partition() int32                                { return 0 }
func (emptyChangelog) EndOffset(context.Context) (state.Offset, error) { return 0, nil }
func (emptyChangelog) Read(context.Context, state.Offset, state.Offset, func([]state.ChangelogRecord) error) error {
	return nil
}

// A restore that lowers stream time below a segment advance dropped while
// a window in it was dirty (kept until its write-back) lists the window's
// segment again, so a later advance still frees it.
func TestMemWindowRestoreRelistsSegments(t *testing.T) {
	ctx := context.Background()
	e, err := Open(Options{Dir: "/s", FS: vfs.NewMem(), MemoryBudget: MinMemoryBudget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", InMemory: true, Unlogged: true, Retention: time.Minute}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := raw.(*windowStore).timedStore().mem
	w, err := e.NewCache().Window(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Put([]byte("dirty"), 1000, []byte("y")); err != nil {
		t.Fatal(err)
	}
	// The raw store's stream time passes the dirty window's segment.
	if err := raw.Put([]byte("late"), 10*60_000, []byte("z")); err != nil {
		t.Fatal(err)
	}
	// Back to the committed state (nothing flushed: no stream time), then
	// the dirty window is written back, live again.
	if _, err := Restore(ctx, raw, emptyChangelog{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := ms.keys["dirty"]; !ok {
		t.Fatal("the written-back window is missing")
	}
	if err := raw.Put([]byte("later"), 20*60_000, []byte("z")); err != nil {
		t.Fatal(err)
	}
	if _, ok := ms.keys["dirty"]; ok {
		t.Fatal("the window at 1000 outlived stream time 20 minutes: its segment is not listed")
	}
}

// A forgotten key's slot array goes to the free list and to the next new
// key, while the forgotten key may still be listed in a segment: when that
// segment expires, the stale listing must neither drop the new key's
// windows early nor put the array on the free list twice.
func TestMemWindowReusedSlotArrays(t *testing.T) {
	ctx := context.Background()
	e, err := Open(Options{Dir: "/s", FS: vfs.NewMem(), MemoryBudget: MinMemoryBudget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", InMemory: true, Unlogged: true, Retention: time.Minute}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := raw.(*windowStore).timedStore().mem
	put := func(key string, start int64, value []byte) {
		t.Helper()
		if err := raw.Put([]byte(key), start, value); err != nil {
			t.Fatal(err)
		}
	}
	const minute = 60_000
	put("a", 10*minute, []byte("1"))
	put("a", 10*minute+1, []byte("2"))
	// Deleting a's windows forgets a (listed in segment 10 still).
	put("a", 10*minute, nil)
	put("a", 10*minute+1, nil)
	if _, ok := ms.keys["a"]; ok || len(ms.free) != 1 {
		t.Fatalf("after deleting a: a kept %v, %d free arrays; want a gone, 1 free array", ok, len(ms.free))
	}
	// b takes a's array, and lives in segments 10 and 11.
	put("b", 10*minute+2, []byte("3"))
	put("b", 11*minute+30_000, []byte("4"))
	if len(ms.free) != 0 {
		t.Fatalf("%d free arrays after b took one, want 0", len(ms.free))
	}
	// Segment 10 expires: its listing holds the old a and b.
	put("c", 12*minute+1, []byte("5"))
	it, err := raw.Fetch([]byte("b"), 0, 13*minute, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for it.Next() {
		got = append(got, it.WindowStart())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != 11*minute+30_000 {
		t.Fatalf("b's windows after segment 10 expired: %v, want [%d]", got, 11*minute+30_000)
	}
	if len(ms.free) != 0 {
		t.Fatalf("%d free arrays, want 0: b kept its array, the old a gave none", len(ms.free))
	}
	// Everything but the newest expires: b's array is freed once.
	put("d", 20*minute, []byte("6"))
	if len(ms.keys) != 1 {
		t.Fatalf("%d keys, want 1 (d)", len(ms.keys))
	}
	seen := map[*memSlot]bool{}
	for _, a := range ms.free {
		p := &a[:1][0]
		if seen[p] {
			t.Fatal("a slot array is on the free list twice")
		}
		seen[p] = true
	}
}
