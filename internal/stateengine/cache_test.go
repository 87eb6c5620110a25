package stateengine_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

type change struct {
	K        string
	New, Old string
	NewNil   bool
	OldNil   bool
}

func u64(b []byte) uint64 {
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func TestCacheForwardsOncePerKeyPerFlush(t *testing.T) {
	for _, inMem := range []bool{false, true} {
		t.Run(fmt.Sprintf("inMemory=%v", inMem), func(t *testing.T) {
			ctx := context.Background()
			e := testEngine(t, nil)
			cl := statetest.NewChangelog("app-counts-changelog", 0)
			raw, err := e.OpenKeyValue(ctx, state.Spec{Name: "counts", InMemory: inMem}, 0, cl)
			if err != nil {
				t.Fatal(err)
			}
			var got []change
			s, err := e.NewCache().KeyValue(raw, func(k, nv, ov []byte) error {
				got = append(got, change{K: string(k), New: fmt.Sprint(u64(nv)), Old: fmt.Sprint(u64(ov)), NewNil: nv == nil, OldNil: ov == nil})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			incr := func(k string) {
				v, err := s.Get([]byte(k))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Put([]byte(k), binary.BigEndian.AppendUint64(nil, u64(v)+1)); err != nil {
					t.Fatal(err)
				}
			}
			for range 1000 {
				incr("a")
			}
			incr("b")
			if len(got) != 0 || len(cl.Records()) != 0 {
				t.Fatalf("before flush: %d forwards, %d changelog records; want none", len(got), len(cl.Records()))
			}
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			want := []change{{K: "a", New: "1000", Old: "0", OldNil: true}, {K: "b", New: "1", Old: "0", OldNil: true}}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("forwards after first flush (-want +got):\n%s", d)
			}
			if n := len(cl.Records()); n != 2 {
				t.Fatalf("changelog has %d records, want 2 (one per key)", n)
			}
			got = nil
			for range 500 {
				incr("a")
			}
			if err := s.Delete([]byte("b")); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			want = []change{{K: "a", New: "1500", Old: "1000"}, {K: "b", New: "0", Old: "1", NewNil: true}}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("forwards after second flush (-want +got):\n%s", d)
			}
			// A flush with nothing dirty forwards nothing.
			got = nil
			if err := s.Flush(ctx); err != nil || len(got) != 0 {
				t.Fatalf("idle flush: %v, %d forwards", err, len(got))
			}
		})
	}
}

func TestCacheWindowForwardsOncePerWindow(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	cl := statetest.NewChangelog("app-w-changelog", 0)
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w"}, 0, cl)
	if err != nil {
		t.Fatal(err)
	}
	type wchange struct {
		K     string
		Start int64
		New   uint64
	}
	var got []wchange
	s, err := e.NewCache().Window(raw, func(k []byte, start int64, nv, ov []byte) error {
		got = append(got, wchange{string(k), start, u64(nv)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3000 {
		start := int64(i%3) * 60_000
		v, err := s.Get([]byte("k"), start)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put([]byte("k"), start, binary.BigEndian.AppendUint64(nil, u64(v)+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := []wchange{{"k", 0, 1000}, {"k", 60_000, 1000}, {"k", 120_000, 1000}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if n := len(cl.Records()); n != 3 {
		t.Fatalf("changelog has %d records, want 3", n)
	}
}

func TestCacheEvictsWithinBudget(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil) // MinMemoryBudget: 16 MiB, a quarter for write caches
	cl := statetest.NewChangelog("c", 0)
	raw, err := e.OpenKeyValue(ctx, state.Spec{Name: "big"}, 0, cl)
	if err != nil {
		t.Fatal(err)
	}
	forwarded := map[string]int{}
	c := e.NewCache()
	s, err := c.KeyValue(raw, func(k, nv, ov []byte) error {
		forwarded[string(k)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 6_000
	val := make([]byte, 1024) // 6 MiB of values: 1.5 times the cache's share
	var peak int64
	for i := range n {
		if err := s.Put([]byte(fmt.Sprintf("key%06d", i)), val); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, c.Bytes())
	}
	limit := int64(stateengine.MinMemoryBudget) / 4
	if peak > limit+2048 {
		t.Fatalf("cache peaked at %d bytes, budget share %d", peak, limit)
	}
	evicted := len(forwarded)
	if evicted == 0 {
		t.Fatal("nothing was evicted although the cache overflowed")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k := fmt.Sprintf("key%06d", i)
		if forwarded[k] != 1 {
			t.Fatalf("%s forwarded %d times, want once", k, forwarded[k])
		}
	}
	if cnt := len(drainKV(t)(raw.All(false))); cnt != n {
		t.Fatalf("store holds %d keys, want %d", cnt, n)
	}
	t.Logf("peak cache %d bytes of %d; %d of %d keys written back early by eviction", peak, limit, evicted, n)
}

func TestCacheListenerErrorStopsFlush(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	cl := statetest.NewChangelog("c", 0)
	raw, err := e.OpenKeyValue(ctx, state.Spec{Name: "s"}, 0, cl)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("downstream failed")
	fail := true
	s, err := e.NewCache().KeyValue(raw, func(k, nv, ov []byte) error {
		if fail {
			return boom
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "a", "1")
	if err := s.Flush(ctx); !errors.Is(err, boom) {
		t.Fatalf("flush error %v, want the listener's", err)
	}
	fail = false
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, s, "a")); got != "1" {
		t.Fatalf("a = %q", got)
	}
}

func TestRestoreDropsCachedEntries(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	cl := statetest.NewChangelog("c", 0)
	cl.AppendRaw([]byte("a"), []byte("from-log"))
	raw, err := e.OpenKeyValue(ctx, state.Spec{Name: "s"}, 0, cl)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewCache().KeyValue(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "a", "dirty")
	if _, err := stateengine.Restore(ctx, s, cl); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, s, "a")); got != "from-log" {
		t.Fatalf("a = %q after restore, want the changelog's value", got)
	}
}

func TestSetFlushListenerAfterWrapping(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	raw, err := e.OpenKeyValue(ctx, state.Spec{Name: "s"}, 0, statetest.NewChangelog("c", 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.(stateengine.TaggedKeyValueStore); ok {
		t.Fatal("an uncached store accepts a write-back hook")
	}
	s, err := e.NewCache().KeyValue(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var keys []string
	s.(stateengine.TaggedKeyValueStore).OnWriteBack(func(k, nv, ov []byte, _ any) error { keys = append(keys, string(k)); return nil })
	put(t, s, "x", "1")
	put(t, s, "x", "2")
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"x"}, keys); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	wraw, err := e.OpenWindow(ctx, state.Spec{Name: "w"}, 0, statetest.NewChangelog("w", 0))
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.NewCache().Window(wraw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, ok := w.(stateengine.TaggedWindowStore); !ok {
		t.Fatal("cached window store takes no write-back hook")
	}
	sraw, err := e.OpenSession(ctx, state.Spec{Name: "ss"}, 0, statetest.NewChangelog("ss", 0))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := e.NewCache().Session(sraw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	if _, ok := ss.(stateengine.TaggedSessionStore); !ok {
		t.Fatal("cached session store takes no write-back hook")
	}
}

// A flush writes back in the order of the last writes, and a window that
// expired while cached still reaches the listener (its store drops it).
func TestCacheFlushOrderAndExpiredWindow(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", Retention: time.Minute, WindowSize: time.Minute, Unlogged: true}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	type wchange struct {
		K      string
		Start  int64
		New    uint64
		OldNil bool
	}
	var got []wchange
	s, err := e.NewCache().Window(raw, func(k []byte, start int64, nv, ov []byte) error {
		got = append(got, wchange{string(k), start, u64(nv), ov == nil})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(k string, start int64, v uint64) {
		t.Helper()
		if err := s.Put([]byte(k), start, binary.BigEndian.AppendUint64(nil, v)); err != nil {
			t.Fatal(err)
		}
	}
	put("a", 0, 1)
	put("b", 0, 1)
	put("a", 0, 2) // a's last write is after b's
	put("c", 600_000, 1)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := []wchange{{"b", 0, 1, true}, {"a", 0, 2, true}, {"c", 600_000, 1, true}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if v, err := s.Get([]byte("a"), 0); err != nil || v != nil {
		t.Fatalf("expired window a@0 = %v, %v; want gone", v, err)
	}
}
