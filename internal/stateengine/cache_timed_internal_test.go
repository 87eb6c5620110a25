package stateengine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/state"
)

// A cached window store's write-back of a window the cache created above
// its floor (nothing below can hold it) reports no old value without
// reading Pebble: an aggregation's new windows, also those of a window
// start that an earlier flush already wrote for other keys. The read would
// have indexed the flush's Pebble batch (readBatch).
func TestCachedWindowNewEntriesSkipReads(t *testing.T) {
	ctx := context.Background()
	e, err := Open(Options{Dir: "/s", FS: vfs.NewMem(), MemoryBudget: MinMemoryBudget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", Unlogged: true, Retention: 10 * time.Minute, WindowSize: time.Minute}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	pb := raw.(*windowStore).timedStore().be.(*pebbleTimed).data.(*pebbleBackend)
	var indexed, withOld int
	w, err := e.NewCache().Window(raw, func(_ []byte, _ int64, _, old []byte) error {
		if pb.b != nil && pb.b.Indexed() {
			indexed++
		}
		if old != nil {
			withOld++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	put := func(from, to int, start int64) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := w.Put(fmt.Appendf(nil, "k%d", i), start, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, 10, 60_000)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// New keys in the window just written, then in an earlier one and a
	// later one: none was ever stored.
	put(10, 20, 60_000)
	put(20, 30, 0)
	put(30, 40, 120_000)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if indexed != 0 || withOld != 0 {
		t.Fatalf("write-backs of new windows: %d with an indexed batch, %d with an old value; want none", indexed, withOld)
	}
	// A window the store holds still reports its old value.
	put(0, 1, 60_000)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if withOld != 1 {
		t.Fatalf("rewritten window: %d write-backs with an old value, want 1", withOld)
	}
}
