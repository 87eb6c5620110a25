package stateengine_test

import (
	"context"
	"testing"
	"time"

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
			s.OnWriteBack(func(k, nv, ov []byte, tag any) error {
				got = append(got, ev{string(k), string(nv), string(ov), tag})
				return nil
			})
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

// A cached session store keeps a tag with each session, a removed one's on
// its tombstone, and hands it to the write-back hook; a session removed and
// put again before the flush is written back once, with the put's tag.
func TestCachedSessionTags(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		t.Run(map[bool]string{false: "pebble", true: "memory"}[inMemory], func(t *testing.T) {
			ctx := context.Background()
			e := testEngine(t, nil)
			cl := statetest.NewChangelog("ss", 0)
			raw, err := e.OpenSession(ctx, state.Spec{Name: "ss", InMemory: inMemory, Retention: time.Hour}, 0, cl)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := raw.(stateengine.TaggedSessionStore); ok {
				t.Fatal("an uncached store claims to keep tags")
			}
			w, err := e.NewCache().Session(raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			s := w.(stateengine.TaggedSessionStore)
			type ev struct {
				K          string
				Start, End int64
				New, Old   string
				Tag        any
			}
			var got []ev
			s.OnWriteBack(func(k []byte, start, end int64, nv, ov []byte, tag any) error {
				got = append(got, ev{string(k), start, end, string(nv), string(ov), tag})
				return nil
			})
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.PutTagged([]byte("a"), 10, 20, []byte("1"), "t1"))
			must(s.PutTagged([]byte("a"), 30, 30, []byte("2"), "t1"))
			must(s.Flush(ctx))
			must(s.RemoveTagged([]byte("a"), 10, 20, "t2"))
			must(s.RemoveTagged([]byte("a"), 30, 30, "t2"))
			must(s.PutTagged([]byte("a"), 10, 30, []byte("3"), "t2"))
			must(s.RemoveTagged([]byte("a"), 10, 30, "t3"))
			must(s.PutTagged([]byte("a"), 10, 30, []byte("4"), "t3"))
			must(s.Flush(ctx))
			want := []ev{
				{"a", 10, 20, "1", "", "t1"},
				{"a", 30, 30, "2", "", "t1"},
				{"a", 10, 20, "", "1", "t2"},
				{"a", 30, 30, "", "2", "t2"},
				{"a", 10, 30, "4", "", "t3"},
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("hook (-want +got):\n%s", d)
			}
		})
	}
}
