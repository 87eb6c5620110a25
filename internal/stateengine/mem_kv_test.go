package stateengine_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// kvFlushEvent is one call of a key-value tag listener.
type kvFlushEvent struct {
	K        string
	New, Old []byte
	Tag      any
}

type kvSide struct {
	inMemory bool
	raw      state.KeyValueStore
	s        stateengine.TaggedKeyValueStore
	cl       *statetest.Changelog
	events   []kvFlushEvent
	logged   int
}

// TestMemKVMatchesPebbleCache is TestMemWindowMatchesPebbleCache for
// key-value stores: random operations on the in-memory store (caching in
// place) and on the Pebble store behind the task cache must give the same
// reads (point, ranges, prefixes, both directions, cached and raw views),
// listener calls and changelog records, through flushes, restores and
// reopenings.
func TestMemKVMatchesPebbleCache(t *testing.T) {
	seed := testSeed(t)
	ops := 4000
	if testing.Short() {
		ops = 1000
	}
	r := rand.New(rand.NewPCG(seed, 13))
	ctx := context.Background()
	e := testEngine(t, nil)
	open := func(sd *kvSide, name string) {
		t.Helper()
		raw, err := e.OpenKeyValue(ctx, state.Spec{Name: name, InMemory: sd.inMemory}, 0, sd.cl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stateengine.Restore(ctx, raw, sd.cl); err != nil {
			t.Fatal(err)
		}
		w, err := e.NewCache().KeyValue(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		sd.raw, sd.s = raw, w.(stateengine.TaggedKeyValueStore)
		sd.s.OnWriteBack(func(k, nv, ov []byte, tag any) error {
			sd.events = append(sd.events, kvFlushEvent{string(k), clone(nv), clone(ov), tag})
			return nil
		})
	}
	mem := &kvSide{inMemory: true, cl: statetest.NewChangelog("mem", 0)}
	peb := &kvSide{cl: statetest.NewChangelog("peb", 0)}
	open(mem, "mem")
	open(peb, "peb")
	t.Cleanup(func() { _ = mem.s.Close(); _ = peb.s.Close() })
	sides := []*kvSide{mem, peb}
	compareLog := func(op int) {
		t.Helper()
		if d := cmp.Diff(peb.events, mem.events); d != "" {
			t.Fatalf("op %d: flush told the listener (-pebble +memory):\n%s", op, d)
		}
		mem.events, peb.events = nil, nil
		type rec struct{ K, V []byte }
		tail := func(sd *kvSide) []rec {
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
	bound := func() []byte {
		if r.IntN(4) == 0 {
			return nil
		}
		return randKey(r)
	}
	for op := range ops {
		k := randKey(r)
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
				switch {
				case tagged:
					err = sd.s.PutTagged(k, v, op)
				case v == nil && r.IntN(2) == 0:
					err = sd.s.Delete(k)
				default:
					err = sd.s.Put(k, v)
				}
				if err != nil {
					t.Fatalf("op %d: put: %v", op, err)
				}
			}
		case x < 55:
			var got [2][]byte
			var tags [2]any
			for i, sd := range sides {
				v, tag, err := sd.s.GetTagged(k)
				if err != nil {
					t.Fatal(err)
				}
				v2, err := sd.s.Get(k)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(v, v2); d != "" {
					t.Fatalf("op %d: GetTagged and Get disagree:\n%s", op, d)
				}
				got[i], tags[i] = clone(v), tag
			}
			if d := cmp.Diff(got[1], got[0]); d != "" || tags[0] != tags[1] {
				t.Fatalf("op %d: Get(%q) (-pebble +memory):\n%s tags %v %v", op, k, d, tags[1], tags[0])
			}
		case x < 75:
			from, to, rev := bound(), bound(), r.IntN(2) == 0
			raw, prefix := r.IntN(3) == 0, r.IntN(4) == 0
			var got [2][]kvPair
			for i, sd := range sides {
				s := state.KeyValueStore(sd.s)
				if raw {
					s = sd.raw
				}
				if prefix {
					got[i] = drainKV(t)(s.Prefix(from, rev))
				} else {
					got[i] = drainKV(t)(s.Range(from, to, rev))
				}
			}
			if d := cmp.Diff(got[1], got[0]); d != "" {
				t.Fatalf("op %d: Range/Prefix(%q, %q, %v) raw=%v prefix=%v (-pebble +memory):\n%s", op, from, to, rev, raw, prefix, d)
			}
		case x < 92:
			for _, sd := range sides {
				if err := sd.s.Flush(ctx); err != nil {
					t.Fatalf("op %d: flush: %v", op, err)
				}
			}
			compareLog(op)
			var n [2]int64
			for i, sd := range sides {
				var err error
				if n[i], err = sd.raw.ApproximateCount(); err != nil {
					t.Fatal(err)
				}
			}
			if n[0] != n[1] {
				t.Fatalf("op %d: count after flush %d, pebble %d", op, n[0], n[1])
			}
		case x < 96:
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
	}
}
