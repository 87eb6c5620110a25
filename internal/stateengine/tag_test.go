package stateengine_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// A cached key-value store keeps a tag per key: GetTagged returns it, a
// plain Put leaves it, the listener receives it at write-back (also for a
// deletion), and a restore forgets it with the cache's entries.
func TestCachedKeyValueTags(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		t.Run(map[bool]string{false: "pebble", true: "memory"}[inMemory], func(t *testing.T) {
			ctx := context.Background()
			e := testEngine(t, nil)
			cl := statetest.NewChangelog("kv", 0)
			raw, err := e.OpenKeyValue(ctx, state.Spec{Name: "kv", InMemory: inMemory}, 0, cl)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := raw.(stateengine.TaggedKeyValueStore); ok {
				t.Fatal("an uncached store claims to keep tags")
			}
			w, err := e.NewCache().KeyValue(raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			s := w.(stateengine.TaggedKeyValueStore)
			type ev struct {
				K, New, Old string
				Tag         any
			}
			var got []ev
			if !stateengine.SetKeyValueTagListener(s, func(k, nv, ov []byte, tag any) error {
				got = append(got, ev{string(k), string(nv), string(ov), tag})
				return nil
			}) {
				t.Fatal("cached store refused a tag listener")
			}
			mustPut := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			mustPut(s.PutTagged([]byte("a"), []byte("1"), "ta"))
			mustPut(s.Put([]byte("a"), []byte("2"))) // keeps ta
			mustPut(s.PutTagged([]byte("b"), []byte("1"), "tb"))
			if v, tag, err := s.GetTagged([]byte("a")); err != nil || string(v) != "2" || tag != "ta" {
				t.Fatalf("GetTagged(a) = %q, %v, %v", v, tag, err)
			}
			mustPut(s.Flush(ctx))
			mustPut(s.PutTagged([]byte("b"), nil, "tb2"))
			mustPut(s.Flush(ctx))
			want := []ev{{"a", "2", "", "ta"}, {"b", "1", "", "tb"}, {"b", "", "1", "tb2"}}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("listener (-want +got):\n%s", d)
			}
			if _, err := stateengine.Restore(ctx, s, cl); err != nil {
				t.Fatal(err)
			}
			if v, tag, err := s.GetTagged([]byte("a")); err != nil || string(v) != "2" || tag != nil {
				t.Fatalf("GetTagged(a) after restore = %q, %v, %v; want the value without a tag", v, tag, err)
			}
		})
	}
}
