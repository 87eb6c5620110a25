package stateengine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

func TestOptionsValidateReportsEverything(t *testing.T) {
	_, err := stateengine.Open(stateengine.Options{FS: vfs.NewMem(), MemoryBudget: 1})
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"Dir is required", "MemoryBudget 1 is below"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestEngineStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	e := openEngineLog(t, fs, nil)
	defer e.Close()
	cl := statetest.NewChangelog("c", 0)
	s := openKV(t, e, cl, false)
	if _, err := e.OpenKeyValue(ctx, state.Spec{Name: "kv"}, 0, cl); !errors.Is(err, stateengine.ErrAlreadyOpen) {
		t.Fatalf("second open: %v, want ErrAlreadyOpen", err)
	}
	if _, err := e.OpenKeyValue(ctx, state.Spec{Name: "kv2"}, 0, nil); err == nil {
		t.Fatal("a logged store without a changelog writer was accepted")
	}
	// Another partition of the same store is a different store.
	other, err := e.OpenKeyValue(ctx, state.Spec{Name: "kv"}, 1, statetest.NewChangelog("c", 1))
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", "p0")
	put(t, other, "a", "p1")
	for _, x := range []state.KeyValueStore{s, other} {
		if err := x.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(get(t, s, "a")); got != "p0" {
		t.Fatalf("partition 0 sees %q", got)
	}
	if err := e.Drop("kv", 0); err == nil {
		t.Fatal("dropped an open store")
	}
	_ = s.Close()
	_ = other.Close()
	if err := e.Drop("kv", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Drop("never-existed", 3); err != nil {
		t.Fatalf("dropping an unknown store: %v", err)
	}
	// Dropped: partition 0 is empty (and restores from nothing), partition
	// 1 is untouched.
	s = openKV(t, e, statetest.NewChangelog("c", 0), false)
	if d := cmp.Diff([]kvPair(nil), drainKV(t)(s.All(false))); d != "" {
		t.Fatalf("dropped store not empty:\n%s", d)
	}
	_ = s.Close()
	other, err = e.OpenKeyValue(ctx, state.Spec{Name: "kv"}, 1, statetest.NewChangelog("c", 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, other, "a")); got != "p1" {
		t.Fatalf("partition 1 = %q after dropping partition 0", got)
	}
	_ = other.Close()
	// The topology changed the store's kind: it is wiped, not misread.
	w, err := e.OpenWindow(ctx, state.Spec{Name: "kv"}, 1, statetest.NewChangelog("c", 1))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]winEntry(nil), drainWin(t)(w.All(false))); d != "" {
		t.Fatalf("store of a new kind not empty:\n%s", d)
	}
	_ = w.Close()
}

// TestApproximateCountLargeStore: past the exact-scan limit the Pebble
// store estimates its count from table statistics; the estimate must be in
// the right range, and stay so with other stores' data around it.
func TestApproximateCountLargeStore(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	open := func(name string) state.KeyValueStore {
		s, err := e.OpenKeyValue(ctx, state.Spec{Name: name}, 0, statetest.NewChangelog(name, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	const n = 30_000
	big, other := open("big"), open("other")
	for i := range n {
		put(t, big, fmt.Sprintf("k%06d", i), "value")
		put(t, other, fmt.Sprintf("k%06d", i), "value")
	}
	for _, s := range []state.KeyValueStore{big, other} {
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := stateengine.FlushMemtablesForTest(e); err != nil {
		t.Fatal(err)
	}
	got, err := big.ApproximateCount()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("approximate count %d of %d keys", got, n)
	if got < n*3/4 || got > n*3/2 {
		t.Fatalf("approximate count %d, want within [%d, %d]", got, n*3/4, n*3/2)
	}
	small := open("small")
	for i := range 10 {
		put(t, small, fmt.Sprint(i), "v")
	}
	if got, err := small.ApproximateCount(); err != nil || got != 10 {
		t.Fatalf("small store count %d %v, want exactly 10", got, err)
	}
}
