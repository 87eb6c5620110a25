package state_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/state"
)

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
