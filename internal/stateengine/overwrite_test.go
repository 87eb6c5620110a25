package stateengine_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// The values TestContractOverwriteWhileIterating writes: the first one,
// then shorter and longer ones over it.
const (
	owFirst  = "AAAAAAAA"
	owShort  = "bb"
	owLonger = "cccccccccccccccc"
	owTiny   = "x"
)

func owWhole(v string) bool {
	return v == owFirst || v == owShort || v == owLonger || v == owTiny
}

// overwriteAt checks the value of an iterator's current entry, then
// overwrites the entry with values of other lengths and its neighbours
// (which the iterator may have read ahead): the value read must be one
// written whole, and must not change before the next Next.
func overwriteAt(t *testing.T, name string, value func() []byte, self, neighbours func(v string)) {
	t.Helper()
	v := string(value())
	if !owWhole(v) {
		t.Fatalf("%s: torn value %q", name, v)
	}
	for _, nv := range []string{owShort, owLonger, owTiny} {
		self(nv)
		if got := string(value()); got != v {
			t.Fatalf("%s: value changed from %q to %q by a write during the iteration", name, v, got)
		}
	}
	neighbours(owLonger)
	neighbours(owShort)
}

// TestContractOverwriteWhileIterating overwrites entries in place, with
// shorter and longer values, while iterating over them: an iterator's
// values stay whole (never a mix of two writes), for every store kind and
// iterator, cached and not, with flushes in between.
func TestContractOverwriteWhileIterating(t *testing.T) {
	ctx := context.Background()
	t.Run("kv", func(t *testing.T) {
		forEachImpl(t, func(t *testing.T, im impl) {
			s := im.kv(t, testEngine(t, nil), statetest.NewChangelog("c", 0))
			const n = 100
			key := func(i int) string { return fmt.Sprintf("k%03d", i) }
			for _, reverse := range []bool{false, true} {
				for i := range n {
					put(t, s, key(i), owFirst)
				}
				it, err := s.All(reverse)
				if err != nil {
					t.Fatal(err)
				}
				seen := 0
				for it.Next() {
					var i int
					if _, err := fmt.Sscanf(string(it.Key()), "k%03d", &i); err != nil {
						t.Fatalf("key %q: %v", it.Key(), err)
					}
					overwriteAt(t, key(i), it.Value,
						func(v string) { put(t, s, key(i), v) },
						func(v string) {
							for _, j := range []int{i - 1, i + 1, i + 2} {
								if j >= 0 && j < n {
									put(t, s, key(j), v)
								}
							}
						})
					if seen++; seen%10 == 0 {
						if err := s.Flush(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := it.Close(); err != nil {
					t.Fatal(err)
				}
				if seen != n {
					t.Fatalf("reverse %v: iterated %d keys, want %d", reverse, seen, n)
				}
			}
		})
	})
	t.Run("window", func(t *testing.T) {
		forEachImpl(t, func(t *testing.T, im impl) {
			s := im.window(t, testEngine(t, nil), statetest.NewChangelog("w", 0), 10*60_000)
			const n = 40
			keys := []string{"a", "b"}
			iters := map[string]func() (state.WindowIterator, error){
				"fetch":         func() (state.WindowIterator, error) { return s.Fetch([]byte("a"), 0, math.MaxInt64, false) },
				"fetch-reverse": func() (state.WindowIterator, error) { return s.Fetch([]byte("b"), 0, math.MaxInt64, true) },
				"fetch-all":     func() (state.WindowIterator, error) { return s.FetchAll(0, math.MaxInt64, false) },
				"all-reverse":   func() (state.WindowIterator, error) { return s.All(true) },
			}
			for name, open := range iters {
				for _, k := range keys {
					for i := range n {
						wput(t, s, k, int64(i)*1000, owFirst)
					}
				}
				it, err := open()
				if err != nil {
					t.Fatal(err)
				}
				seen := 0
				for it.Next() {
					k, start := string(it.Key()), it.WindowStart()
					overwriteAt(t, fmt.Sprintf("%s %s@%d", name, k, start), it.Value,
						func(v string) { wput(t, s, k, start, v) },
						func(v string) {
							for _, nk := range keys {
								for _, ns := range []int64{start - 1000, start, start + 1000} {
									if (nk != k || ns != start) && ns >= 0 && ns < n*1000 {
										wput(t, s, nk, ns, v)
									}
								}
							}
						})
					if seen++; seen%10 == 0 {
						if err := s.Flush(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := it.Close(); err != nil {
					t.Fatal(err)
				}
				if seen == 0 {
					t.Fatalf("%s: iterated nothing", name)
				}
			}
		})
	})
	t.Run("session", func(t *testing.T) {
		forEachImpl(t, func(t *testing.T, im impl) {
			s := im.session(t, testEngine(t, nil), statetest.NewChangelog("s", 0), 10*60_000)
			const n = 40
			keys := []string{"u", "v"}
			iters := map[string]func() (state.SessionIterator, error){
				"find":  func() (state.SessionIterator, error) { return s.FindSessions([]byte("u"), 0, math.MaxInt64) },
				"fetch": func() (state.SessionIterator, error) { return s.Fetch([]byte("v")) },
				"all":   func() (state.SessionIterator, error) { return s.All() },
			}
			for name, open := range iters {
				for _, k := range keys {
					for i := range n {
						sput(t, s, k, int64(i)*100, int64(i)*100+10, owFirst)
					}
				}
				it, err := open()
				if err != nil {
					t.Fatal(err)
				}
				seen := 0
				for it.Next() {
					k, start, end := string(it.Key()), it.Start(), it.End()
					overwriteAt(t, fmt.Sprintf("%s %s@%d-%d", name, k, start, end), it.Value,
						func(v string) { sput(t, s, k, start, end, v) },
						func(v string) {
							for _, nk := range keys {
								for _, d := range []int64{-100, 0, 100} {
									if (nk != k || d != 0) && start+d >= 0 && start+d < n*100 {
										sput(t, s, nk, start+d, end+d, v)
									}
								}
							}
						})
					if seen++; seen%10 == 0 {
						if err := s.Flush(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := it.Close(); err != nil {
					t.Fatal(err)
				}
				if seen == 0 {
					t.Fatalf("%s: iterated nothing", name)
				}
			}
		})
	})
}
