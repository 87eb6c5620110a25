package state_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

func TestOptionsValidateReportsEverything(t *testing.T) {
	_, err := state.Open(state.Options{FS: vfs.NewMem(), MemoryBudget: 1})
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
	if _, err := e.OpenKeyValue(ctx, state.Spec{Name: "kv"}, 0, cl); !errors.Is(err, state.ErrAlreadyOpen) {
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

func TestChangelogTopicFor(t *testing.T) {
	got := state.ChangelogTopicFor("shop", state.Spec{Name: "counts", Kind: state.KindKeyValue})
	want := state.ChangelogTopic{Name: "shop-counts-changelog", Configs: map[string]string{"cleanup.policy": "compact"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("key-value (-want +got):\n%s", d)
	}
	got = state.ChangelogTopicFor("shop", state.Spec{Name: "w", Kind: state.KindWindow, Retention: 2 * 60 * 60 * 1e9,
		ChangelogConfigs: map[string]string{"min.insync.replicas": "2"}})
	want = state.ChangelogTopic{Name: "shop-w-changelog", Configs: map[string]string{
		"cleanup.policy": "compact,delete", "retention.ms": "93600000", "min.insync.replicas": "2"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("window (-want +got):\n%s", d)
	}
}
