package stateengine_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
)

type sessFlushEvent struct {
	K          string
	Start, End int64
	New, Old   []byte
}

// TestMemSessionMatchesPebbleCache is TestMemWindowMatchesPebbleCache for
// session stores: random puts and removes, reads, FindSessions, Fetch and
// All of the cached and the raw views, flushes, restores and reopenings on
// the in-memory store (caching in place) and on the Pebble store behind
// the task cache must agree, listener calls and changelog records
// included.
func TestMemSessionMatchesPebbleCache(t *testing.T) {
	p := newDiffPair(t, 17, func(e *stateengine.Engine, sd *diffSide[state.SessionStore, sessFlushEvent]) (state.SessionStore, error) {
		return e.OpenSession(context.Background(), state.Spec{Name: sd.name, InMemory: sd.inMemory, Retention: 4 * time.Minute}, 0, sd.cl)
	}, func(c *stateengine.Cache, sd *diffSide[state.SessionStore, sessFlushEvent], raw state.SessionStore) (state.SessionStore, error) {
		return c.Session(raw, func(k []byte, start, end int64, nv, ov []byte) error {
			sd.events = append(sd.events, sessFlushEvent{string(k), start, end, clone(nv), clone(ov)})
			return nil
		})
	})
	r := p.r
	sides := p.sides()
	now := int64(0)
	for op := range p.ops {
		now += int64(r.IntN(4000))
		k := randKey(r)
		end := now - int64(r.IntN(6*60_000))
		end -= end % 5_000
		start := end - int64(r.IntN(4))*5_000
		switch x := r.IntN(100); {
		case x < 45:
			v := p.value(op)
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
			p.flush(op)
		case x < 97:
			p.restore(op)
		default:
			p.reopen(op, r.IntN(2) == 0)
		}
		compareTimes(p, op)
	}
}
