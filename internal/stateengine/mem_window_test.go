package stateengine_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
)

// flushEvent is one call of a window tag listener.
type flushEvent struct {
	K        string
	Start    int64
	New, Old []byte
	Tag      any
}

// TestMemWindowMatchesPebbleCache runs random operations on the in-memory
// window store, which caches in place, and on the Pebble store behind the
// task cache (the reference), both wrapped by a Cache, and requires the
// same results everywhere: reads of the cached and of the raw stores,
// iteration order, stream time, expired puts, what each flush tells the
// listener (new and old values, tags, order) and writes to the changelog,
// and the state after restores and reopenings.
func TestMemWindowMatchesPebbleCache(t *testing.T) {
	p := newDiffPair(t, 11, func(e *stateengine.Engine, sd *diffSide[state.WindowStore, flushEvent]) (state.WindowStore, error) {
		return e.OpenWindow(context.Background(), state.Spec{Name: sd.name, InMemory: sd.inMemory, Retention: 4 * time.Minute}, 0, sd.cl)
	}, func(c *stateengine.Cache, sd *diffSide[state.WindowStore, flushEvent], raw state.WindowStore) (state.WindowStore, error) {
		w, err := c.Window(raw, nil)
		if err != nil {
			return nil, err
		}
		w.(stateengine.TaggedWindowStore).OnWriteBack(func(k []byte, start int64, nv, ov []byte, tag any) error {
			sd.events = append(sd.events, flushEvent{string(k), start, clone(nv), clone(ov), tag})
			return nil
		})
		return w, nil
	})
	r := p.r
	sides := p.sides()

	now := int64(0)
	for op := range p.ops {
		now += int64(r.IntN(4000))
		k := randKey(r)
		start := now - int64(r.IntN(6*60_000))
		start -= start % 10_000
		switch x := r.IntN(100); {
		case x < 45:
			v := p.value(op)
			tagged := r.IntN(2) == 0
			for _, sd := range sides {
				var err error
				if tagged {
					err = taggedWin(sd).PutTagged(k, start, v, op)
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
				v, tag, err := taggedWin(sd).GetTagged(k, start)
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
				s := sd.s
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
				s := sd.s
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
			p.flush(op)
		case x < 97:
			// A restore of the cached store drops what was not flushed.
			p.restore(op)
		default:
			p.reopen(op, r.IntN(2) == 0)
		}
		compareTimes(p, op)
	}
}

// taggedWin is a window side's cached store as the tagged store it is.
func taggedWin(sd *diffSide[state.WindowStore, flushEvent]) stateengine.TaggedWindowStore {
	return sd.s.(stateengine.TaggedWindowStore)
}
