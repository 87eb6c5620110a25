package stateengine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// The contract suite: every implementation behind KeyValueStore,
// WindowStore and SessionStore must pass the same tests.

func forEachImpl(t *testing.T, fn func(t *testing.T, im impl)) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) { fn(t, im) })
	}
}

func put(t *testing.T, s state.KeyValueStore, k, v string) {
	t.Helper()
	if err := s.Put([]byte(k), []byte(v)); err != nil {
		t.Fatalf("put %q: %v", k, err)
	}
}

func get(t *testing.T, s state.KeyValueStore, k string) []byte {
	t.Helper()
	v, err := s.Get([]byte(k))
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return v
}

func TestContractKVBasics(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		ctx := context.Background()
		cl := statetest.NewChangelog("app-kv-changelog", 0)
		s := im.kv(t, testEngine(t, nil), cl)
		if v := get(t, s, "a"); v != nil {
			t.Fatalf("absent key: got %q", v)
		}
		put(t, s, "a", "1")
		put(t, s, "b", "2")
		put(t, s, "a", "3")
		if got := string(get(t, s, "a")); got != "3" {
			t.Fatalf("get a = %q, want 3", got)
		}
		// Get hands out its own copy.
		v := get(t, s, "b")
		v[0] = 'X'
		if got := string(get(t, s, "b")); got != "2" {
			t.Fatalf("mutating a Get result changed the store: %q", got)
		}
		// Put does not retain the caller's slices.
		buf := []byte("cv")
		if err := s.Put([]byte("c"), buf); err != nil {
			t.Fatal(err)
		}
		buf[0] = 'Z'
		if got := string(get(t, s, "c")); got != "cv" {
			t.Fatalf("store retained the caller's value: %q", got)
		}
		old, err := s.PutIfAbsent([]byte("c"), []byte("other"))
		if err != nil || string(old) != "cv" {
			t.Fatalf("PutIfAbsent on present key = %q, %v", old, err)
		}
		old, err = s.PutIfAbsent([]byte("d"), []byte("4"))
		if err != nil || old != nil {
			t.Fatalf("PutIfAbsent on absent key = %q, %v", old, err)
		}
		if err := s.Delete([]byte("d")); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete([]byte("never")); err != nil {
			t.Fatalf("deleting an absent key: %v", err)
		}
		if err := s.Put([]byte("c"), nil); err != nil {
			t.Fatal(err)
		}
		if v := get(t, s, "c"); v != nil {
			t.Fatalf("Put(nil) did not delete: %q", v)
		}
		if err := s.Put(nil, []byte("x")); err == nil {
			t.Fatal("empty key accepted")
		}
		// An empty value is a value, not a delete.
		put(t, s, "e", "")
		if v := get(t, s, "e"); v == nil || len(v) != 0 {
			t.Fatalf("empty value: got %v", v)
		}
		want := []kvPair{{"a", "3"}, {"b", "2"}, {"e", ""}}
		if d := cmp.Diff(want, drainKV(t)(s.All(false))); d != "" {
			t.Fatalf("All (-want +got):\n%s", d)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := s.ApproximateCount()
		if err != nil || n != 3 {
			t.Fatalf("ApproximateCount after flush = %d, %v; want 3", n, err)
		}
		// Every write reached the changelog, deletes as tombstones; the
		// cached store deduplicated (a: 1 then 3 is one record).
		last := map[string][]byte{}
		for _, r := range cl.Records() {
			last[string(r.Key)] = r.Value
		}
		wantLog := map[string][]byte{"a": []byte("3"), "b": []byte("2"), "d": nil, "c": nil, "e": {}}
		for k, v := range wantLog {
			got, ok := last[k]
			if im.cached && v == nil && !ok {
				continue // a cached put-then-delete may never reach the log
			}
			if !ok || !bytes.Equal(got, v) || (v == nil) != (got == nil) {
				t.Errorf("changelog last value of %q = %q (present %v), want %q", k, got, ok, v)
			}
		}
	})
}

func TestContractKVRanges(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		s := im.kv(t, testEngine(t, nil), statetest.NewChangelog("c", 0))
		for _, k := range []string{"a", "ab", "abc", "b", "b\x00", "b\xff", "c", "\xff", "\xff\xff"} {
			put(t, s, k, "v"+k)
		}
		if im.cached {
			// Half the data below the cache, half in it.
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			put(t, s, "abc", "new")
			put(t, s, "bb", "vbb")
			if err := s.Delete([]byte("c")); err != nil {
				t.Fatal(err)
			}
		} else {
			put(t, s, "abc", "new")
			put(t, s, "bb", "vbb")
			if err := s.Delete([]byte("c")); err != nil {
				t.Fatal(err)
			}
		}
		keys := func(ps []kvPair) []string {
			var out []string
			for _, p := range ps {
				out = append(out, p.K)
			}
			return out
		}
		cases := []struct {
			name string
			it   func(rev bool) (state.Iterator, error)
			want []string
		}{
			{"range", func(r bool) (state.Iterator, error) { return s.Range([]byte("ab"), []byte("b\xff"), r) }, []string{"ab", "abc", "b", "b\x00", "bb"}},
			{"range-open-from", func(r bool) (state.Iterator, error) { return s.Range(nil, []byte("b"), r) }, []string{"a", "ab", "abc"}},
			{"range-open-to", func(r bool) (state.Iterator, error) { return s.Range([]byte("bb"), nil, r) }, []string{"bb", "b\xff", "\xff", "\xff\xff"}},
			{"range-empty", func(r bool) (state.Iterator, error) { return s.Range([]byte("c"), []byte("a"), r) }, nil},
			{"prefix", func(r bool) (state.Iterator, error) { return s.Prefix([]byte("ab"), r) }, []string{"ab", "abc"}},
			{"prefix-b", func(r bool) (state.Iterator, error) { return s.Prefix([]byte("b"), r) }, []string{"b", "b\x00", "bb", "b\xff"}},
			{"prefix-ff", func(r bool) (state.Iterator, error) { return s.Prefix([]byte("\xff"), r) }, []string{"\xff", "\xff\xff"}},
			{"all", func(r bool) (state.Iterator, error) { return s.All(r) }, []string{"a", "ab", "abc", "b", "b\x00", "bb", "b\xff", "\xff", "\xff\xff"}},
		}
		for _, c := range cases {
			if d := cmp.Diff(c.want, keys(drainKV(t)(c.it(false)))); d != "" {
				t.Errorf("%s forward (-want +got):\n%s", c.name, d)
			}
			var rev []string
			for i := len(c.want) - 1; i >= 0; i-- {
				rev = append(rev, c.want[i])
			}
			if d := cmp.Diff(rev, keys(drainKV(t)(c.it(true)))); d != "" {
				t.Errorf("%s reverse (-want +got):\n%s", c.name, d)
			}
		}
		if got := string(get(t, s, "abc")); got != "new" {
			t.Errorf("abc = %q", got)
		}
	})
}

func TestContractKVPersistsAcrossReopen(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		ctx := context.Background()
		e := testEngine(t, nil)
		cl := statetest.NewChangelog("c", 0)
		s := im.kv(t, e, cl)
		put(t, s, "k1", "v1")
		put(t, s, "k2", "v2")
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		put(t, s, "k3", "unflushed")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Reopen and restore: flushed data is back (from Pebble or, for the
		// in-memory store, from the changelog); the unflushed write is not.
		s2 := im.kv(t, e, cl)
		want := []kvPair{{"k1", "v1"}, {"k2", "v2"}}
		if d := cmp.Diff(want, drainKV(t)(s2.All(false))); d != "" {
			t.Fatalf("after reopen (-want +got):\n%s", d)
		}
	})
}

func TestContractClosed(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		s := im.kv(t, testEngine(t, nil), statetest.NewChangelog("c", 0))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Put([]byte("a"), []byte("b")); !errors.Is(err, stateengine.ErrClosed) {
			t.Fatalf("put after close: %v, want ErrClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
	})
}

func wput(t *testing.T, s state.WindowStore, k string, start int64, v string) {
	t.Helper()
	var vb []byte
	if v != "" {
		vb = []byte(v)
	}
	if err := s.Put([]byte(k), start, vb); err != nil {
		t.Fatalf("window put: %v", err)
	}
}

func TestContractWindow(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		const ret = 10 * 60_000 // 10 minutes: segments of 5 minutes
		cl := statetest.NewChangelog("w", 0)
		s := im.window(t, testEngine(t, nil), cl, ret)
		if s.ObservedStreamTime() != math.MinInt64 {
			t.Fatalf("fresh store observed time %d", s.ObservedStreamTime())
		}
		// Keys chosen so a key is a prefix of another, and with zero bytes.
		wput(t, s, "a", 0, "a0")
		wput(t, s, "a", 60_000, "a1")
		wput(t, s, "a\x00", 30_000, "az")
		wput(t, s, "ab", 400_000, "ab4")
		wput(t, s, "a", 400_000, "a4")
		wput(t, s, "b", -5, "bneg")
		wput(t, s, "a", 60_000, "a1b") // overwrite
		if got, _ := s.Get([]byte("a"), 60_000); string(got) != "a1b" {
			t.Fatalf("Get = %q", got)
		}
		if got, _ := s.Get([]byte("a"), 1); got != nil {
			t.Fatalf("Get of absent window = %q", got)
		}
		want := []winEntry{{"a", 0, "a0"}, {"a", 60_000, "a1b"}, {"a", 400_000, "a4"}}
		if d := cmp.Diff(want, drainWin(t)(s.Fetch([]byte("a"), math.MinInt64, math.MaxInt64, false))); d != "" {
			t.Fatalf("Fetch a (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]winEntry{{"a", 60_000, "a1b"}, {"a", 0, "a0"}}, drainWin(t)(s.Fetch([]byte("a"), 0, 60_000, true))); d != "" {
			t.Fatalf("Fetch a reverse [0, 60000] (-want +got):\n%s", d)
		}
		// FetchAll: by segment, then key, then start.
		wantAll := []winEntry{
			{"b", -5, "bneg"},                                             // segment -1
			{"a", 0, "a0"}, {"a", 60_000, "a1b"}, {"a\x00", 30_000, "az"}, // segment 0
			{"a", 400_000, "a4"}, {"ab", 400_000, "ab4"}, // segment 1
		}
		if d := cmp.Diff(wantAll, drainWin(t)(s.All(false))); d != "" {
			t.Fatalf("All (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]winEntry{{"a", 60_000, "a1b"}, {"a\x00", 30_000, "az"}}, drainWin(t)(s.FetchAll(30_000, 60_000, false))); d != "" {
			t.Fatalf("FetchAll [30000, 60000] (-want +got):\n%s", d)
		}
		// Delete with a nil value.
		wput(t, s, "a\x00", 30_000, "")
		if got, _ := s.Get([]byte("a\x00"), 30_000); got != nil {
			t.Fatalf("deleted window still there: %q", got)
		}
		// Advance stream time: windows before 900000-600000=300000 expire.
		wput(t, s, "c", 900_000, "c9")
		if s.ObservedStreamTime() != 900_000 {
			t.Fatalf("observed = %d", s.ObservedStreamTime())
		}
		wantLive := []winEntry{{"a", 400_000, "a4"}, {"ab", 400_000, "ab4"}, {"c", 900_000, "c9"}}
		if d := cmp.Diff(wantLive, drainWin(t)(s.All(false))); d != "" {
			t.Fatalf("All after expiry (-want +got):\n%s", d)
		}
		if got, _ := s.Get([]byte("a"), 60_000); got != nil {
			t.Fatalf("expired window still readable: %q", got)
		}
		before := s.ExpiredPuts()
		wput(t, s, "late", 100, "x")
		if s.ExpiredPuts() != before+1 {
			t.Fatalf("expired put not counted")
		}
		if got, _ := s.Get([]byte("late"), 100); got != nil {
			t.Fatalf("expired put stored")
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(wantLive, drainWin(t)(s.All(false))); d != "" {
			t.Fatalf("All after flush (-want +got):\n%s", d)
		}
	})
}

func sput(t *testing.T, s state.SessionStore, k string, start, end int64, v string) {
	t.Helper()
	if err := s.Put([]byte(k), start, end, []byte(v)); err != nil {
		t.Fatalf("session put: %v", err)
	}
}

func TestContractSession(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		const ret = 10 * 60_000
		s := im.session(t, testEngine(t, nil), statetest.NewChangelog("s", 0), ret)
		sput(t, s, "u", 0, 10, "s1")
		sput(t, s, "u", 100, 150, "s2")
		sput(t, s, "u", 400, 400, "s3")
		sput(t, s, "u\x00", 0, 1000, "other")
		sput(t, s, "v", 90, 95, "v1")
		if err := s.Put([]byte("u"), 5, 4, []byte("x")); err == nil {
			t.Fatal("start after end accepted")
		}
		// A record at 120 with gap 30: sessions ending >= 90 and starting
		// <= 150.
		want := []sessEntry{{"u", 100, 150, "s2"}}
		if d := cmp.Diff(want, drainSess(t)(s.FindSessions([]byte("u"), 90, 150))); d != "" {
			t.Fatalf("FindSessions (-want +got):\n%s", d)
		}
		// Touching: a record at 160 with gap 10 touches s2 (end 150).
		if d := cmp.Diff(want, drainSess(t)(s.FindSessions([]byte("u"), 150, 170))); d != "" {
			t.Fatalf("FindSessions touching (-want +got):\n%s", d)
		}
		// A record at 200 with gap 200 reaches s1..s3.
		want = []sessEntry{{"u", 0, 10, "s1"}, {"u", 100, 150, "s2"}, {"u", 400, 400, "s3"}}
		if d := cmp.Diff(want, drainSess(t)(s.FindSessions([]byte("u"), 0, 400))); d != "" {
			t.Fatalf("FindSessions wide (-want +got):\n%s", d)
		}
		if d := cmp.Diff(want, drainSess(t)(s.Fetch([]byte("u")))); d != "" {
			t.Fatalf("Fetch (-want +got):\n%s", d)
		}
		if err := s.Remove([]byte("u"), 100, 150); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get([]byte("u"), 100, 150); got != nil {
			t.Fatalf("removed session still there")
		}
		if got, _ := s.Get([]byte("u"), 0, 10); string(got) != "s1" {
			t.Fatalf("Get = %q", got)
		}
		// All is ordered by segment, key, end, start: all in segment 0 here.
		wantAll := []sessEntry{{"u", 0, 10, "s1"}, {"u", 400, 400, "s3"}, {"u\x00", 0, 1000, "other"}, {"v", 90, 95, "v1"}}
		if d := cmp.Diff(wantAll, drainSess(t)(s.All())); d != "" {
			t.Fatalf("All (-want +got):\n%s", d)
		}
		// Expiry by end: observed 700000 drops sessions ending before 100000.
		sput(t, s, "w", 699_000, 700_000, "w")
		if d := cmp.Diff([]sessEntry{{"w", 699_000, 700_000, "w"}}, drainSess(t)(s.All())); d != "" {
			t.Fatalf("All after expiry (-want +got):\n%s", d)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestContractFlushWhileIterating flushes (which commits the store's batch)
// while an iterator over uncommitted writes is open: the iterator keeps
// reading what it saw.
func TestContractFlushWhileIterating(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		s := im.kv(t, testEngine(t, nil), statetest.NewChangelog("c", 0))
		for _, k := range []string{"a", "b", "c", "d"} {
			put(t, s, k, "v"+k)
		}
		it, err := s.All(false)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for it.Next() {
			got = append(got, string(it.Key())+"="+string(it.Value()))
			if len(got) == 2 {
				if err := s.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				put(t, s, "e", "ve") // a write into the next batch
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		// The cached store's merge may or may not see "e"; the others read
		// the batch as it was.
		if len(got) > 4 {
			got = got[:4]
		}
		if d := cmp.Diff([]string{"a=va", "b=vb", "c=vc", "d=vd"}, got); d != "" {
			t.Fatalf("(-want +got):\n%s", d)
		}
	})
}

// TestContractWriteWhileIterating deletes and writes keys while iterating,
// a common processor pattern (purge as you scan).
func TestContractWriteWhileIterating(t *testing.T) {
	forEachImpl(t, func(t *testing.T, im impl) {
		s := im.kv(t, testEngine(t, nil), statetest.NewChangelog("c", 0))
		for i := range 300 {
			put(t, s, fmt.Sprintf("k%03d", i), strings.Repeat("v", 100))
		}
		it, err := s.All(false)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for it.Next() {
			k := append([]byte(nil), it.Key()...)
			if len(it.Value()) != 100 {
				t.Fatalf("value of %s has %d bytes", k, len(it.Value()))
			}
			if err := s.Delete(k); err != nil {
				t.Fatal(err)
			}
			put(t, s, "z"+string(k), strings.Repeat("w", 1000))
			n++
			if n == 300 {
				break
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if n != 300 {
			t.Fatalf("iterated %d keys, want 300", n)
		}
		if v := get(t, s, "k000"); v != nil {
			t.Fatal("deleted key still there")
		}
		if v := get(t, s, "zk299"); len(v) != 1000 {
			t.Fatalf("key written during iteration: %d bytes", len(v))
		}
	})
}
