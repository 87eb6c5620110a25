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

// flushEvent is one call of a window tag listener.
type flushEvent struct {
	K        string
	Start    int64
	New, Old []byte
	Tag      any
}

// windowSide is one store of TestMemWindowMatchesPebbleCache: the store,
// its cached wrapper, its changelog and what its listener heard.
type windowSide struct {
	inMemory bool
	raw      state.WindowStore
	s        stateengine.TaggedWindowStore
	cl       *statetest.Changelog
	events   []flushEvent
	logged   int // changelog records compared so far
}

// TestMemWindowMatchesPebbleCache runs random operations on the in-memory
// window store, which caches in place, and on the Pebble store behind the
// task cache (the reference), both wrapped by a Cache, and requires the
// same results everywhere: reads of the cached and of the raw stores,
// iteration order, stream time, expired puts, what each flush tells the
// listener (new and old values, tags, order) and writes to the changelog,
// and the state after restores and reopenings.
func TestMemWindowMatchesPebbleCache(t *testing.T) {
	seed := testSeed(t)
	ops := 4000
	if testing.Short() {
		ops = 1000
	}
	r := rand.New(rand.NewPCG(seed, 11))
	ctx := context.Background()
	e := testEngine(t, nil)
	const ret = 4 * 60_000 // segments of 2 minutes
	open := func(sd *windowSide, name string) {
		t.Helper()
		spec := state.Spec{Name: name, InMemory: sd.inMemory, Retention: ret * time.Millisecond}
		raw, err := e.OpenWindow(ctx, spec, 0, sd.cl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stateengine.Restore(ctx, raw, sd.cl); err != nil {
			t.Fatal(err)
		}
		w, err := e.NewCache().Window(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		sd.raw, sd.s = raw, w.(stateengine.TaggedWindowStore)
		sd.s.OnWriteBack(func(k []byte, start int64, nv, ov []byte, tag any) error {
			sd.events = append(sd.events, flushEvent{string(k), start, clone(nv), clone(ov), tag})
			return nil
		})
	}
	mem := &windowSide{inMemory: true, cl: statetest.NewChangelog("mem", 0)}
	peb := &windowSide{cl: statetest.NewChangelog("peb", 0)}
	open(mem, "mem")
	open(peb, "peb")
	t.Cleanup(func() { _ = mem.s.Close(); _ = peb.s.Close() })
	sides := []*windowSide{mem, peb}

	now := int64(0)
	for op := range ops {
		now += int64(r.IntN(4000))
		k := randKey(r)
		start := now - int64(r.IntN(6*60_000))
		start -= start % 10_000
		switch x := r.IntN(100); {
		case x < 45:
			var v []byte
			switch r.IntN(10) {
			case 0: // a delete
			case 1:
				v = []byte{}
			default:
				v = []byte{byte(op), byte(op >> 8)}
			}
			tagged := r.IntN(2) == 0
			for _, sd := range sides {
				var err error
				if tagged {
					err = sd.s.PutTagged(k, start, v, op)
				} else {
					err = sd.s.Put(k, start, v)
				}
				if err != nil {
					t.Fatalf("op %d: put: %v", op, err)
				}
			}
		case x < 55:
			var got [2][]byte
			var tags [2]any
			for i, sd := range sides {
				v, tag, err := sd.s.GetTagged(k, start)
				if err != nil {
					t.Fatal(err)
				}
				v2, err := sd.s.Get(k, start)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(v, v2); d != "" {
					t.Fatalf("op %d: GetTagged and Get disagree:\n%s", op, d)
				}
				got[i], tags[i] = clone(v), tag
			}
			if d := cmp.Diff(got[1], got[0]); d != "" || tags[0] != tags[1] {
				t.Fatalf("op %d: Get(%q, %d) (-pebble +memory):\n%s tags %v %v", op, k, start, d, tags[1], tags[0])
			}
		case x < 68:
			from, to := start-int64(r.IntN(3*60_000)), start+int64(r.IntN(3*60_000))
			rev := r.IntN(2) == 0
			raw := r.IntN(3) == 0
			var got [2][]winEntry
			for i, sd := range sides {
				s := state.WindowStore(sd.s)
				if raw {
					s = sd.raw
				}
				got[i] = drainWin(t)(s.Fetch(k, from, to, rev))
			}
			if d := cmp.Diff(got[1], got[0]); d != "" {
				t.Fatalf("op %d: Fetch(%q, %d, %d, %v) raw=%v (-pebble +memory):\n%s", op, k, from, to, rev, raw, d)
			}
		case x < 78:
			from, to := start-int64(r.IntN(3*60_000)), start+int64(r.IntN(3*60_000))
			rev := r.IntN(2) == 0
			raw := r.IntN(3) == 0
			all := r.IntN(4) == 0
			var got [2][]winEntry
			for i, sd := range sides {
				s := state.WindowStore(sd.s)
				if raw {
					s = sd.raw
				}
				if all {
					got[i] = drainWin(t)(s.All(rev))
				} else {
					got[i] = drainWin(t)(s.FetchAll(from, to, rev))
				}
			}
			if d := cmp.Diff(got[1], got[0]); d != "" {
				t.Fatalf("op %d: FetchAll/All(%d, %d, %v) raw=%v (-pebble +memory):\n%s", op, from, to, rev, raw, d)
			}
		case x < 94:
			for _, sd := range sides {
				if err := sd.s.Flush(ctx); err != nil {
					t.Fatalf("op %d: flush: %v", op, err)
				}
			}
			if d := cmp.Diff(peb.events, mem.events); d != "" {
				t.Fatalf("op %d: flush told the listener (-pebble +memory):\n%s", op, d)
			}
			compareLogged(t, op, mem, peb)
			mem.events, peb.events = nil, nil
		case x < 97:
			// A restore of the cached store drops what was not flushed.
			for _, sd := range sides {
				if _, err := stateengine.Restore(ctx, sd.s, sd.cl); err != nil {
					t.Fatalf("op %d: restore: %v", op, err)
				}
			}
		default:
			// Reopen: flushed or not, the store comes back from its
			// checkpoint and changelog.
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
			if d := cmp.Diff(peb.events, mem.events); d != "" {
				t.Fatalf("op %d: flush before reopen told the listener (-pebble +memory):\n%s", op, d)
			}
			compareLogged(t, op, mem, peb)
			mem.events, peb.events = nil, nil
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

// compareLogged compares the changelog records both sides appended since
// the last comparison.
func compareLogged(t *testing.T, op int, mem, peb *windowSide) {
	t.Helper()
	type rec struct{ K, V []byte }
	tail := func(sd *windowSide) []rec {
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

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
