package stateengine_test

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// TestPersisted: Persisted lists the Pebble-backed store partitions of a
// reopened database with the checkpoints their commits wrote (0 for one
// that never committed), and leaves in-memory and dropped stores out.
func TestPersisted(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	e := testEngine(t, fs)
	write := func(spec state.Spec, part int32, records int, flush bool) {
		t.Helper()
		cl := statetest.NewChangelog(spec.Name+"-changelog", part)
		s, err := e.OpenKeyValue(ctx, spec, part, cl)
		if err != nil {
			t.Fatal(err)
		}
		for i := range records {
			if err := s.Put([]byte{byte(i)}, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if flush {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write(state.Spec{Name: "counts", Kind: state.KindKeyValue}, 3, 5, true)
	write(state.Spec{Name: "counts", Kind: state.KindKeyValue}, 1, 2, true)
	write(state.Spec{Name: "never", Kind: state.KindKeyValue}, 0, 1, false)
	write(state.Spec{Name: "gone", Kind: state.KindKeyValue}, 0, 1, true)
	write(state.Spec{Name: "mem", Kind: state.KindKeyValue, InMemory: true}, 0, 4, true)
	if err := e.Drop("gone", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = testEngine(t, fs)
	got, err := e.Persisted()
	if err != nil {
		t.Fatal(err)
	}
	want := []stateengine.PersistedStore{
		{Name: "never", Partition: 0, Checkpoint: 0},
		{Name: "counts", Partition: 1, Checkpoint: 2},
		{Name: "counts", Partition: 3, Checkpoint: 5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Persisted (-want +got):\n%s", diff)
	}
}
