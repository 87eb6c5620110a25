package cluster

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/broker/internal/metadata"
)

// TestEntriesAfter: a voter serves a fetcher the entries after its
// applied offset while it keeps them, its image's snapshot once it no
// longer does (after a restore, or when they fell out of the last
// maxRecent), and nothing to one that is up to date.
func TestEntriesAfter(t *testing.T) {
	sm := newImageSM(slog.Default())
	empty := metadata.EncodeEntry(nil)
	for _, idx := range []uint64{1, 2, 4} { // 3: a raft leader's empty entry, never applied
		if err := sm.Apply(idx, empty); err != nil {
			t.Fatal(err)
		}
	}
	indexes := func(from uint64) ([]uint64, uint64) {
		t.Helper()
		ents, snap, snapIdx, err := sm.entriesAfter(from, maxFetchBytes)
		if err != nil {
			t.Fatal(err)
		}
		if snap != nil {
			return nil, snapIdx
		}
		var out []uint64
		for _, e := range ents {
			out = append(out, e.index)
		}
		return out, 0
	}
	if got, snap := indexes(1); snap != 0 || !cmp.Equal(got, []uint64{2, 4}) {
		t.Fatalf("after 1: %v (snapshot at %d)", got, snap)
	}
	if got, snap := indexes(4); snap != 0 || got != nil {
		t.Fatalf("after 4: %v (snapshot at %d), want nothing", got, snap)
	}
	snap, idx, err := sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Restore(snap, idx+6); err != nil { // as a voter installing a snapshot at 10
		t.Fatal(err)
	}
	if got, snapAt := indexes(5); snapAt != 10 {
		t.Fatalf("behind a restored snapshot: %v, snapshot at %d, want the snapshot at 10", got, snapAt)
	}
	for i := range uint64(maxRecent + 1) {
		if err := sm.Apply(11+i, empty); err != nil {
			t.Fatal(err)
		}
	}
	if _, snapAt := indexes(10); snapAt != 11+maxRecent {
		t.Fatalf("behind the entries kept: snapshot at %d, want %d", snapAt, 11+maxRecent)
	}
	if got, snapAt := indexes(11); snapAt != 0 || len(got) != maxRecent {
		t.Fatalf("at the oldest kept: %d entries (snapshot at %d), want %d", len(got), snapAt, maxRecent)
	}
}
