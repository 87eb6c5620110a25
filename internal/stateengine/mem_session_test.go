package stateengine_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

type sessFlushEvent struct {
	K          string
	Start, End int64
	New, Old   []byte
}

type sessSide struct {
	inMemory bool
	raw, s   state.SessionStore
	cl       *statetest.Changelog
	events   []sessFlushEvent
	logged   int
}

// TestMemSessionMatchesPebbleCache is TestMemWindowMatchesPebbleCache for
// session stores: random puts and removes, reads, FindSessions, Fetch and
// All of the cached and the raw views, flushes, restores and reopenings on
// the in-memory store (caching in place) and on the Pebble store behind
// the task cache must agree, listener calls and changelog records
// included.
func TestMemSessionMatchesPebbleCache(t *testing.T) {
	seed := testSeed(t)
	ops := 4000
	if testing.Short() {
		ops = 1000
	}
	r := rand.New(rand.NewPCG(seed, 17))
	ctx := context.Background()
	e := testEngine(t, nil)
	const ret = 4 * 60_000
	open := func(sd *sessSide, name string) {
		t.Helper()
		raw, err := e.OpenSession(ctx, state.Spec{Name: name, InMemory: sd.inMemory, Retention: ret * time.Millisecond}, 0, sd.cl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stateengine.Restore(ctx, raw, sd.cl); err != nil {
			t.Fatal(err)
		}
		w, err := e.NewCache().Session(raw, func(k []byte, start, end int64, nv, ov []byte) error {
			sd.events = append(sd.events, sessFlushEvent{string(k), start, end, clone(nv), clone(ov)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sd.raw, sd.s = raw, w
	}
	mem := &sessSide{inMemory: true, cl: statetest.NewChangelog("mem", 0)}
	peb := &sessSide{cl: statetest.NewChangelog("peb", 0)}
	open(mem, "mem")
	open(peb, "peb")
	t.Cleanup(func() { _ = mem.s.Close(); _ = peb.s.Close() })
	sides := []*sessSide{mem, peb}
	compareLog := func(op int) {
		t.Helper()
		if d := cmp.Diff(peb.events, mem.events); d != "" {
			t.Fatalf("op %d: flush told the listener (-pebble +memory):\n%s", op, d)
		}
		mem.events, peb.events = nil, nil
		type rec struct{ K, V []byte }
		tail := func(sd *sessSide) []rec {
			var out []rec
			for _, r := range sd.cl.Records()[sd.logged:] {
				out = append(out, rec{r.Key, r.Value})
			}
			sd.logged = len(sd.cl.Records())
			return out
		}
		if d := cmp.Diff(tail(peb), tail(mem)); d != "" {
			t.Fatalf("op %d: changelog records (-pebble +memory):\n%s", op, d)
		}
	}
	now := int64(0)
	for op := range ops {
		now += int64(r.IntN(4000))
		k := randKey(r)
		end := now - int64(r.IntN(6*60_000))
		end -= end % 5_000
		start := end - int64(r.IntN(4))*5_000
		switch x := r.IntN(100); {
		case x < 45:
			var v []byte
			switch r.IntN(10) {
			case 0:
			case 1:
				v = []byte{}
			default:
				v = []byte{byte(op), byte(op >> 8)}
			}
			for _, sd := range sides {
				var err error
				if v == nil && r.IntN(2) == 0 {
					err = sd.s.Remove(k, start, end)
				} else {
					err = sd.s.Put(k, start, end, v)
				}
				if err != nil {
					t.Fatalf("op %d: put: %v", op, err)
				}
			}
		case x < 55:
			var got [2][]byte
			for i, sd := range sides {
				v, err := sd.s.Get(k, start, end)
				if err != nil {
					t.Fatal(err)
				}
				got[i] = v
			}
			if d := cmp.Diff(got[1], got[0]); d != "" {
				t.Fatalf("op %d: Get(%q, %d, %d) (-pebble +memory):\n%s", op, k, start, end, d)
			}
		case x < 78:
			earliest, latest := end-int64(r.IntN(3*60_000)), end+int64(r.IntN(3*60_000))
			raw, kind := r.IntN(3) == 0, r.IntN(5)
			var got [2][]sessEntry
			for i, sd := range sides {
				s := sd.s
				if raw {
					s = sd.raw
				}
				switch kind {
				case 0:
					got[i] = drainSess(t)(s.All())
				case 1:
					got[i] = drainSess(t)(s.Fetch(k))
				default:
					got[i] = drainSess(t)(s.FindSessions(k, earliest, latest))
				}
			}
			if d := cmp.Diff(got[1], got[0]); d != "" {
				t.Fatalf("op %d: read %d (%q, %d, %d) raw=%v (-pebble +memory):\n%s", op, kind, k, earliest, latest, raw, d)
			}
		case x < 94:
			for _, sd := range sides {
				if err := sd.s.Flush(ctx); err != nil {
					t.Fatalf("op %d: flush: %v", op, err)
				}
			}
			compareLog(op)
		case x < 97:
			for _, sd := range sides {
				if _, err := stateengine.Restore(ctx, sd.s, sd.cl); err != nil {
					t.Fatalf("op %d: restore: %v", op, err)
				}
			}
		default:
			flush := r.IntN(2) == 0
			for i, sd := range sides {
				if flush {
					if err := sd.s.Flush(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if err := sd.s.Close(); err != nil {
					t.Fatal(err)
				}
				open(sd, []string{"mem", "peb"}[i])
			}
			compareLog(op)
		}
		if a, b := mem.s.ObservedStreamTime(), peb.s.ObservedStreamTime(); a != b {
			t.Fatalf("op %d: observed stream time %d, pebble %d", op, a, b)
		}
		if a, b := mem.raw.ObservedStreamTime(), peb.raw.ObservedStreamTime(); a != b {
			t.Fatalf("op %d: raw observed stream time %d, pebble %d", op, a, b)
		}
		if a, b := mem.s.ExpiredPuts(), peb.s.ExpiredPuts(); a != b {
			t.Fatalf("op %d: expired puts %d, pebble %d", op, a, b)
		}
	}
}
