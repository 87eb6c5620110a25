package stateengine_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
)

// kvFlushEvent is one call of a key-value tag listener.
type kvFlushEvent struct {
	K        string
	New, Old []byte
	Tag      any
}

// TestMemKVMatchesPebbleCache is TestMemWindowMatchesPebbleCache for
// key-value stores: random operations on the in-memory store (caching in
// place) and on the Pebble store behind the task cache must give the same
// reads (point, ranges, prefixes, both directions, cached and raw views),
// listener calls and changelog records, through flushes, restores and
// reopenings.
func TestMemKVMatchesPebbleCache(t *testing.T) {
	p := newDiffPair(t, 13, func(e *stateengine.Engine, sd *diffSide[state.KeyValueStore, kvFlushEvent]) (state.KeyValueStore, error) {
		return e.OpenKeyValue(context.Background(), state.Spec{Name: sd.name, InMemory: sd.inMemory}, 0, sd.cl)
	}, func(c *stateengine.Cache, sd *diffSide[state.KeyValueStore, kvFlushEvent], raw state.KeyValueStore) (state.KeyValueStore, error) {
		w, err := c.KeyValue(raw, nil)
		if err != nil {
			return nil, err
		}
		w.(stateengine.TaggedKeyValueStore).OnWriteBack(func(k, nv, ov []byte, tag any) error {
			sd.events = append(sd.events, kvFlushEvent{string(k), clone(nv), clone(ov), tag})
			return nil
		})
		return w, nil
	})
	r := p.r
	sides := p.sides()
	bound := func() []byte {
		if r.IntN(4) == 0 {
			return nil
		}
		return randKey(r)
	}
	for op := range p.ops {
		k := randKey(r)
		switch x := r.IntN(100); {
		case x < 45:
			v := p.value(op)
			tagged := r.IntN(2) == 0
			for _, sd := range sides {
				var err error
				switch {
				case tagged:
					err = taggedKV(sd).PutTagged(k, v, op)
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
				v, tag, err := taggedKV(sd).GetTagged(k)
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
				s := sd.s
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
			p.flush(op)
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
			p.restore(op)
		default:
			p.reopen(op, r.IntN(2) == 0)
		}
	}
}

// taggedKV is a key-value side's cached store as the tagged store it is.
func taggedKV(sd *diffSide[state.KeyValueStore, kvFlushEvent]) stateengine.TaggedKeyValueStore {
	return sd.s.(stateengine.TaggedKeyValueStore)
}
