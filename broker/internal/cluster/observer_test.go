package cluster

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/quorum"
	"github.com/weir-dev/weir/broker/internal/topics"
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

// TestOptionsRoles: a controller must be a voter, a broker-only node must
// not be one; each mistake is named.
func TestOptionsRoles(t *testing.T) {
	voters, err := quorum.ParseVoters("1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id                 int32
		broker, controller bool
		want               string // in the error; "" for none about roles
	}{
		{id: 4, controller: true, want: "node 4 is not one of the controller voters"},
		{id: 4, broker: true, controller: true, want: "node 4 is not one of the controller voters"},
		{id: 2, broker: true, want: "node 2 is one of the controller voters"},
		{id: 4, broker: true},
		{id: 2, broker: true, controller: true},
	} {
		o := Options{NodeID: tc.id, Voters: voters, Broker: tc.broker, Controller: tc.controller, DataDir: t.TempDir(), Topics: &topics.Registry{}}
		o.EnsureDefaults()
		err := o.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("node %d broker=%v controller=%v: %v", tc.id, tc.broker, tc.controller, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("node %d broker=%v controller=%v: got %v, want %q", tc.id, tc.broker, tc.controller, err, tc.want)
		}
	}
}
