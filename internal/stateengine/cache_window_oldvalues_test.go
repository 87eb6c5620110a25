package stateengine_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// TestCachedWindowOldValuesUnderEviction: a cached window store under the
// smallest memory budget with values of 20-80 KB, so that dirty entries are
// evicted and written back while the task works, takes a seeded random mix
// of gets, puts, deletes, flushes and restores into a fresh engine from the
// changelog. Every old value the listener is given, at an eviction or a
// flush, must be what the store below held for that window: a new window
// above the cache's floor has none (nothingBelow), a window written back
// and evicted, or restored, has its stored value.
func TestCachedWindowOldValuesUnderEviction(t *testing.T) {
	seeds := uint64(6)
	if raceEnabled {
		seeds = 2 // each schedule takes many times longer under the race detector
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 9))
			ctx := context.Background()
			cl := statetest.NewChangelog("w", 0)
			spec := state.Spec{Name: "w", Retention: 10 * time.Minute, WindowSize: time.Minute}
			type wk struct {
				K     string
				Start int64
			}
			stored := map[wk][]byte{}
			view := map[wk][]byte{}
			var s state.WindowStore
			var fail string
			var inFlush bool
			evictReports, oldReports := 0, 0
			open := func() {
				e, err := stateengine.Open(stateengine.Options{Dir: "/s", FS: vfs.NewMem(), MemoryBudget: stateengine.MinMemoryBudget, Logger: quietLogger()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = e.Close() })
				raw, err := e.OpenWindow(ctx, spec, 0, cl)
				if err != nil {
					t.Fatal(err)
				}
				s, err = e.NewCache().Window(raw, func(k []byte, start int64, nv, ov []byte) error {
					key := wk{string(k), start}
					if !inFlush {
						evictReports++
					}
					if ov != nil {
						oldReports++
					}
					if want := stored[key]; !bytes.Equal(want, ov) || (want == nil) != (ov == nil) {
						if fail == "" {
							fail = fmt.Sprintf("%v: old %q want %q", key, short(ov), short(want))
						}
					}
					if nv == nil {
						delete(stored, key)
					} else {
						stored[key] = append([]byte(nil), nv...)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := stateengine.Restore(ctx, s, cl); err != nil {
					t.Fatal(err)
				}
			}
			open()
			// flush writes the cache back (the listener's reports then are
			// not evictions) and the changelog out.
			flush := func() {
				inFlush = true
				err := s.Flush(ctx)
				inFlush = false
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cl.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			now := int64(0)
			for op := range 1500 {
				if rng.IntN(20) == 0 && now < 8 {
					now++
				}
				k := wk{fmt.Sprintf("k%d", rng.IntN(12)), (now - int64(rng.IntN(4))) * 60_000}
				if k.Start < 0 {
					k.Start = 0
				}
				switch r := rng.IntN(100); {
				case r < 40:
					v, err := s.Get([]byte(k.K), k.Start)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(v, view[k]) {
						t.Fatalf("op %d get %v = %q want %q", op, k, short(v), short(view[k]))
					}
					fallthrough
				case r < 80:
					v := bytes.Repeat([]byte{byte(op)}, 20_000+rng.IntN(60_000))
					v[0] = byte(op >> 8)
					if err := s.Put([]byte(k.K), k.Start, v); err != nil {
						t.Fatal(err)
					}
					view[k] = v
				case r < 98:
					if err := s.Put([]byte(k.K), k.Start, nil); err != nil {
						t.Fatal(err)
					}
					delete(view, k)
				case r < 99:
					flush()
				default:
					flush()
					_ = s.Close()
					open()
					view = map[wk][]byte{}
					for k, v := range stored {
						view[k] = v
					}
				}
				if fail != "" {
					t.Fatalf("op %d: %s", op, fail)
				}
			}
			t.Logf("eviction reports %d, reports with old %d", evictReports, oldReports)
			if evictReports == 0 || oldReports == 0 {
				t.Fatalf("the schedule reported %d evictions and %d old values: it did not reach the paths it checks", evictReports, oldReports)
			}
		})
	}
}

// short names a value in a failure by its length and end bytes.
func short(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%d bytes %x%x", len(b), b[0], b[len(b)-1])
}
