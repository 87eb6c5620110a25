package storage

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
)

// TestFollowerTracksTransactions: a follower that appends its leader's
// batches (AppendReplica) holds the same open and aborted transactions and
// last stable offset as the leader, so that it answers read_committed
// alike once it leads; and a truncation rebuilds them from what remains.
// Both fail when the follower path does not track transactions.
func TestFollowerTracksTransactions(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	clock := &testClock{ms: 1_000_000}
	opts := Options{FS: fs, Now: clock.Now, Logger: quietLogger(), CleanerBytesPerSecond: -1, Sync: SyncNever}
	leader, err := Open("/leader", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	follower, err := Open("/follower", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()

	txnBatch := func(pid int64, seq int32, v string) []byte {
		return buildBatch(t, batchSpec{pid: pid, pepoch: 0, seq: seq, txn: true, recs: []kv{{key: []byte("k"), value: []byte(v)}}})
	}
	mustAppend := func(b []byte) {
		t.Helper()
		if _, err := leader.Append(ctx, b, 1); err != nil {
			t.Fatal(err)
		}
	}
	mustMarker := func(pid int64, commit bool) {
		t.Helper()
		if _, err := leader.WriteMarker(Marker{ProducerID: pid, Epoch: 0, Commit: commit, CoordinatorEpoch: 0}, 1); err != nil {
			t.Fatal(err)
		}
	}
	replicate := func() {
		t.Helper()
		for follower.LogEndOffset() < leader.LogEndOffset() {
			b, err := leader.ReadReplica(follower.LogEndOffset(), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := follower.AppendReplica(b); err != nil {
				t.Fatal(err)
			}
		}
		leader.SetHighWatermarkLimit(leader.LogEndOffset())
		follower.SetFollowerHighWatermark(leader.HighWatermark())
	}
	type state struct {
		LSO     Offset
		Open    map[int64]Offset
		Aborted []AbortedTxn
	}
	stateOf := func(l *Log) state {
		return state{l.LastStableOffset(), l.OpenTransactions(), l.AbortedTransactions(0, l.LogEndOffset())}
	}

	mustAppend(txnBatch(7, 0, "a1")) // 0: pid 7, aborted below
	mustAppend(txnBatch(8, 0, "c1")) // 1: pid 8, committed below
	mustMarker(7, false)             // 2
	mustAppend(txnBatch(7, 1, "a2")) // 3: pid 7 again, left open
	mustMarker(8, true)              // 4
	replicate()
	want := stateOf(leader)
	if len(want.Aborted) != 1 || len(want.Open) != 1 {
		t.Fatalf("leader state %+v: want one aborted and one open transaction", want)
	}
	if diff := cmp.Diff(want, stateOf(follower)); diff != "" {
		t.Fatalf("follower's transactions differ from the leader's (-leader +follower):\n%s", diff)
	}

	// The follower drops its tail from offset 3 (a new leader lacked it):
	// pid 7's second transaction and pid 8's commit are gone, so pid 8 is
	// open again.
	if _, err := follower.TruncateTo(3); err != nil {
		t.Fatal(err)
	}
	got := stateOf(follower)
	wantOpen := map[int64]Offset{8: 1}
	if diff := cmp.Diff(wantOpen, got.Open); diff != "" {
		t.Fatalf("open transactions after truncation (-want +got):\n%s", diff)
	}
	if len(got.Aborted) != 1 || got.Aborted[0].ProducerID != 7 || got.Aborted[0].LastOffset != 2 {
		t.Fatalf("aborted transactions after truncation: %+v, want pid 7's ending at 2", got.Aborted)
	}
	if got.LSO > 1 {
		t.Fatalf("last stable offset %d after truncation, want at most 1 (pid 8's transaction is open again)", got.LSO)
	}
}
