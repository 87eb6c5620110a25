package stateengine_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// A cached window store on Pebble fetches a key's windows from the cache
// alone while the cache holds every window the store has in the range; it
// must still find the windows that eviction moved to the store, those
// written to the store directly, and those a restore brought back.
func TestCachedWindowFetchFindsStoredWindows(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil) // MinMemoryBudget: a quarter for write caches
	cl := statetest.NewChangelog("w", 0)
	spec := state.Spec{Name: "w", Retention: time.Hour, WindowSize: time.Second}
	raw, err := e.OpenWindow(ctx, spec, 0, cl)
	if err != nil {
		t.Fatal(err)
	}
	c := e.NewCache()
	s, err := c.Window(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8_000
	val := make([]byte, 1024) // 8 MiB: twice the cache's share, so most windows are evicted
	key := func(i int) []byte { return fmt.Appendf(nil, "key%05d", i%500) }
	for i := range n {
		val[0] = byte(i)
		if err := s.Put(key(i), int64(i), val); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// A fetch early: the cache then knows that it holds every
			// window (until evictions).
			if it, err := s.Fetch(key(0), 0, n, false); err != nil || !it.Next() {
				t.Fatalf("fetch of the first window: %v", err)
			}
		}
		if i%1000 == 999 {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(what string, s state.WindowStore) {
		t.Helper()
		for k := range 500 {
			it, err := s.Fetch(key(k), 0, n, false)
			if err != nil {
				t.Fatal(err)
			}
			want := int64(k)
			for it.Next() {
				if it.WindowStart() != want || it.Value()[0] != byte(want) {
					t.Fatalf("%s: %s: window %d value %d, want window %d value %d", what, key(k), it.WindowStart(), it.Value()[0], want, byte(want))
				}
				want += 500
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if want < n {
				t.Fatalf("%s: %s: windows end before %d", what, key(k), want)
			}
		}
	}
	check("after evictions", s)
	// A window written to the store directly, below the cache.
	if err := raw.Put([]byte("direct"), int64(n-10), []byte("d")); err != nil {
		t.Fatal(err)
	}
	it, err := s.Fetch([]byte("direct"), n-20, n, false)
	if err != nil {
		t.Fatal(err)
	}
	if !it.Next() || string(it.Value()) != "d" {
		t.Fatal("the window written below the cache is missing")
	}
	_ = it.Close()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err = e.OpenWindow(ctx, spec, 0, cl)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = c.Window(raw, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := stateengine.Restore(ctx, s, cl); err != nil {
		t.Fatal(err)
	}
	check("after reopening", s)
}

// The session store behind the same cache: FindSessions finds the
// sessions eviction moved to the store.
func TestCachedSessionFindFindsStoredSessions(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	raw, err := e.OpenSession(ctx, state.Spec{Name: "s", Retention: time.Hour}, 0, statetest.NewChangelog("s", 0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewCache().Session(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 8_000
	val := make([]byte, 1024) // twice the cache's share: most sessions are evicted
	key := func(i int) []byte { return fmt.Appendf(nil, "key%05d", i%500) }
	for i := range n {
		val[0] = byte(i)
		if err := s.Put(key(i), int64(i), int64(i)+5, val); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// A find early: the cache then knows that it holds every
			// session (until evictions).
			if it, err := s.FindSessions(key(0), 0, n); err != nil || !it.Next() {
				t.Fatalf("find of the first session: %v", err)
			}
		}
		if i%1000 == 999 {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k := range 500 {
		it, err := s.FindSessions(key(k), 0, n)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(k)
		for it.Next() {
			if it.Start() != want || it.End() != want+5 || it.Value()[0] != byte(want) {
				t.Fatalf("%s: session [%d, %d] value %d, want [%d, %d] value %d", key(k), it.Start(), it.End(), it.Value()[0], want, want+5, byte(want))
			}
			want += 500
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if want < n {
			t.Fatalf("%s: sessions end before %d", key(k), want)
		}
	}
}

// A fetch of one key that the cache answers alone (nothing below it in
// the range) skips the windows deleted in the cache, whether or not their
// deletion was written back, walks the key's windows in either order, and
// sees a window written during the iteration after its position.
func TestCachedWindowFetchOfOneKeySkipsDeleted(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", Retention: time.Hour}, 0, statetest.NewChangelog("w", 0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewCache().Window(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := []byte("k")
	put := func(start int64, v []byte) {
		t.Helper()
		if err := s.Put(k, start, v); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(reverse bool, during func(start int64)) []int64 {
		t.Helper()
		it, err := s.Fetch(k, 0, 100, reverse)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for it.Next() {
			if string(it.Key()) != "k" || string(it.Value()) != fmt.Sprint(it.WindowStart()) {
				t.Fatalf("window %d: key %q value %q", it.WindowStart(), it.Key(), it.Value())
			}
			got = append(got, it.WindowStart())
			if during != nil {
				during(it.WindowStart())
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// A fetch before anything is written: the cache then knows that it
	// holds every window.
	if got := fetch(false, nil); len(got) != 0 {
		t.Fatalf("fetch of an empty store: %v", got)
	}
	for _, start := range []int64{10, 20, 30, 40} {
		put(start, fmt.Append(nil, start))
	}
	if err := s.Put([]byte("other"), 25, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	put(20, nil) // deleted after its write-back: a dirty tombstone
	put(50, fmt.Append(nil, 50))
	put(50, nil) // deleted before any write-back
	want := []int64{10, 30, 40}
	if got := fetch(false, nil); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fetch: %v, want %v", got, want)
	}
	if got := fetch(true, nil); fmt.Sprint(got) != "[40 30 10]" {
		t.Fatalf("reverse fetch: %v, want [40 30 10]", got)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fetch(false, nil); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fetch after the deletions' write-back: %v, want %v", got, want)
	}
	// Writes during the iteration: one ahead of it is seen, one behind is
	// not, and overwriting the current window's value in place does not
	// change the value the iterator handed out.
	got := fetch(false, func(start int64) {
		if start == 10 {
			put(35, fmt.Append(nil, 35))
			put(5, fmt.Append(nil, 5))
		}
	})
	if want := []int64{10, 30, 35, 40}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fetch with writes during it: %v, want %v", got, want)
	}
	put(30, []byte("30")) // dirty again: a write overwrites its buffer
	it, err := s.Fetch(k, 30, 30, false)
	if err != nil || !it.Next() {
		t.Fatalf("fetch of window 30: %v", err)
	}
	v := it.Value()
	put(30, []byte("99"))
	if string(v) != "30" {
		t.Fatalf("the value handed out changed to %q with the window's", v)
	}
	_ = it.Close()
}

// A fetch of one key from the cache hands its walk back to the store on
// Close for the next fetch: a second Close, or a call after Close, of the
// first iterator must not touch the walk a later fetch got, two walks
// open at once must not share one, and a reused walk's buffers must not
// leak an earlier fetch's key or value.
func TestCachedWindowFetchOfOneKeyReusesItsWalk(t *testing.T) {
	e := testEngine(t, nil)
	raw, err := e.OpenWindow(context.Background(), state.Spec{Name: "w", Retention: time.Hour}, 0, statetest.NewChangelog("w", 0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewCache().Window(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	long := strings.Repeat("x", 100)   // past the walk's inline value buffer
	longKey := strings.Repeat("k", 40) // past its inline key buffers
	wput(t, s, "a", 1, "a1")
	wput(t, s, "a", 2, long)
	wput(t, s, "b", 3, "b3")
	wput(t, s, longKey, 4, "k4")
	fetch := func(k string) state.WindowIterator {
		t.Helper()
		it, err := s.Fetch([]byte(k), 0, 100, false)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	step := func(it state.WindowIterator, want string) {
		t.Helper()
		if want == "" {
			if it.Next() {
				t.Fatalf("window %d after the last", it.WindowStart())
			}
			return
		}
		if !it.Next() {
			t.Fatalf("no window, want %s", want)
		}
		if got := fmt.Sprintf("%s@%d=%s", it.Key(), it.WindowStart(), it.Value()); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	closeIt := func(it state.WindowIterator) {
		t.Helper()
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		a := fetch("a")
		step(a, "a@1=a1")
		step(a, "a@2="+long)
		step(a, "")
		closeIt(a)
		b := fetch("b") // the walk a handed back
		closeIt(a)
		if a.Next() || string(a.Key()) == "b" || string(a.Value()) == "b3" || a.Err() != nil {
			t.Fatal("a closed iterator moved, or reported the walk of a later fetch")
		}
		step(b, "b@3=b3")
		k := fetch(longKey) // b holds its walk: a new one
		step(k, longKey+"@4=k4")
		step(b, "")
		a = fetch("a")
		step(a, "a@1=a1")
		closeIt(b)
		closeIt(k)
		step(a, "a@2="+long)
		closeIt(a)
	}
	if !raceEnabled {
		// Only the handle is allocated: a few bytes per fetch, where a
		// walk of its own is a few hundred.
		ka := []byte("a")
		const n = 1000
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			it, err := s.Fetch(ka, 0, 100, false)
			if err != nil {
				t.Fatal(err)
			}
			for it.Next() {
			}
			_ = it.Close()
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 64 {
			t.Fatalf("a fetch of one key allocates %d bytes, want only its handle's", per)
		}
	}
}

// A key with more cached windows than an ascending walk of its list takes
// on (ascendingWalkMax) is fetched through the ordered merge: every
// window, in either order, the deleted one skipped.
func TestCachedWindowFetchOfOneKeyWithManyWindows(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", Retention: time.Hour}, 0, statetest.NewChangelog("w", 0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewCache().Window(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := []byte("k")
	var want []int64
	for start := int64(0); start < 32; start++ { // four times ascendingWalkMax
		if err := s.Put(k, start*10, fmt.Append(nil, start*10)); err != nil {
			t.Fatal(err)
		}
		if start != 3 {
			want = append(want, start*10)
		}
	}
	if err := s.Put(k, 30, nil); err != nil {
		t.Fatal(err)
	}
	for _, reverse := range []bool{false, true} {
		it, err := s.Fetch(k, 0, 1000, reverse)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for it.Next() {
			if string(it.Value()) != fmt.Sprint(it.WindowStart()) {
				t.Fatalf("window %d: value %q", it.WindowStart(), it.Value())
			}
			got = append(got, it.WindowStart())
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		w := slices.Clone(want)
		if reverse {
			slices.Reverse(w)
		}
		if !slices.Equal(got, w) {
			t.Fatalf("fetch (reverse %v): %v, want %v", reverse, got, w)
		}
	}
}

// A fetch of one key that walks the key's cached windows (the cache holds
// every window of the range at open) must still return those that writes
// during the iteration evict to the store.
func TestCachedWindowFetchOfOneKeyAcrossEviction(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reverse=%v", reverse), func(t *testing.T) {
			e := testEngine(t, nil)
			stateengine.SetWriteCacheForTest(e, 16<<10)
			raw, err := e.OpenWindow(context.Background(), state.Spec{Name: "w", Retention: time.Hour}, 0, statetest.NewChangelog("w", 0))
			if err != nil {
				t.Fatal(err)
			}
			s, err := e.NewCache().Window(raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var want []int64
			for start := int64(0); start < 8; start++ {
				wput(t, s, "k", start, fmt.Sprint(start))
				want = append(want, start)
			}
			if reverse {
				slices.Reverse(want)
			}
			it, err := s.Fetch([]byte("k"), 0, 100, reverse)
			if err != nil {
				t.Fatal(err)
			}
			defer it.Close()
			var got []int64
			for i := 0; it.Next(); i++ {
				if string(it.Value()) != fmt.Sprint(it.WindowStart()) {
					t.Fatalf("window %d: value %q", it.WindowStart(), it.Value())
				}
				got = append(got, it.WindowStart())
				// Other keys' windows, enough to evict every window of k.
				for j := range 40 {
					wput(t, s, fmt.Sprintf("other-%d-%d", i, j), 50, string(make([]byte, 500)))
				}
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("fetched %v, want %v", got, want)
			}
		})
	}
}
