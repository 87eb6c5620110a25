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

// The differential tests (Test{KV,Window,Session}MatchesPebbleCache) run
// the same random operations on an in-memory store and on the Pebble store
// (the reference), both behind a Cache, and require the same results: what
// is common to the three kinds is here, each test adds its kind's reads
// and writes.

// diffSide is one store of a differential test: the raw store, its cached
// wrapper, its changelog and what the wrapper's write-back hook heard (E:
// one call).
type diffSide[S state.Store, E any] struct {
	name     string
	inMemory bool
	raw, s   S
	cl       *statetest.Changelog
	events   []E
	logged   int // changelog records compared so far
}

// diffPair is the in-memory side and the Pebble side of a differential
// test, with the test's random source (its seed logged) and number of
// operations.
type diffPair[S state.Store, E any] struct {
	t        *testing.T
	ctx      context.Context
	r        *rand.Rand
	ops      int
	mem, peb *diffSide[S, E]
	reopenSd func(sd *diffSide[S, E])
}

// newDiffPair opens both sides: open opens a side's raw store, which is
// then restored from its changelog and wrapped by wrap (the kind's Cache
// method, with a hook that records into sd.events). stream tells the
// tests' random sources apart.
func newDiffPair[S state.Store, E any](t *testing.T, stream uint64,
	open func(e *stateengine.Engine, sd *diffSide[S, E]) (S, error),
	wrap func(c *stateengine.Cache, sd *diffSide[S, E], raw S) (S, error),
) *diffPair[S, E] {
	t.Helper()
	ops := 4000
	if testing.Short() {
		ops = 1000
	}
	e := testEngine(t, nil)
	p := &diffPair[S, E]{
		t: t, ctx: context.Background(), r: rand.New(rand.NewPCG(testSeed(t), stream)), ops: ops,
		mem: &diffSide[S, E]{name: "mem", inMemory: true, cl: statetest.NewChangelog("mem", 0)},
		peb: &diffSide[S, E]{name: "peb", cl: statetest.NewChangelog("peb", 0)},
	}
	p.reopenSd = func(sd *diffSide[S, E]) {
		t.Helper()
		raw, err := open(e, sd)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stateengine.Restore(p.ctx, raw, sd.cl); err != nil {
			t.Fatal(err)
		}
		w, err := wrap(e.NewCache(), sd, raw)
		if err != nil {
			t.Fatal(err)
		}
		sd.raw, sd.s = raw, w
	}
	p.reopenSd(p.mem)
	p.reopenSd(p.peb)
	t.Cleanup(func() { _ = p.mem.s.Close(); _ = p.peb.s.Close() })
	return p
}

// value returns a random value to put: nil (a delete) one time in ten,
// empty one in ten, else two bytes of op.
func (p *diffPair[S, E]) value(op int) []byte {
	switch p.r.IntN(10) {
	case 0:
		return nil
	case 1:
		return []byte{}
	default:
		return []byte{byte(op), byte(op >> 8)}
	}
}

// sides lists the in-memory side first.
func (p *diffPair[S, E]) sides() []*diffSide[S, E] { return []*diffSide[S, E]{p.mem, p.peb} }

// compareLog compares what both hooks heard, and the changelog records
// both sides appended, since the last comparison.
func (p *diffPair[S, E]) compareLog(op int) {
	p.t.Helper()
	if d := cmp.Diff(p.peb.events, p.mem.events); d != "" {
		p.t.Fatalf("op %d: flush told the listener (-pebble +memory):\n%s", op, d)
	}
	p.mem.events, p.peb.events = nil, nil
	type rec struct{ K, V []byte }
	tail := func(sd *diffSide[S, E]) []rec {
		var out []rec
		for _, r := range sd.cl.Records()[sd.logged:] {
			out = append(out, rec{r.Key, r.Value})
		}
		sd.logged = len(sd.cl.Records())
		return out
	}
	if d := cmp.Diff(tail(p.peb), tail(p.mem)); d != "" {
		p.t.Fatalf("op %d: changelog records (-pebble +memory):\n%s", op, d)
	}
}

// flush flushes both cached stores and compares what they told and logged.
func (p *diffPair[S, E]) flush(op int) {
	p.t.Helper()
	for _, sd := range p.sides() {
		if err := sd.s.Flush(p.ctx); err != nil {
			p.t.Fatalf("op %d: flush: %v", op, err)
		}
	}
	p.compareLog(op)
}

// restore restores both cached stores: what was not flushed is dropped.
func (p *diffPair[S, E]) restore(op int) {
	p.t.Helper()
	for _, sd := range p.sides() {
		if _, err := stateengine.Restore(p.ctx, sd.s, sd.cl); err != nil {
			p.t.Fatalf("op %d: restore: %v", op, err)
		}
	}
}

// reopen closes both stores, flushed first if flush, and opens them again:
// flushed or not, a store comes back from its checkpoint and changelog.
func (p *diffPair[S, E]) reopen(op int, flush bool) {
	p.t.Helper()
	for _, sd := range p.sides() {
		if flush {
			if err := sd.s.Flush(p.ctx); err != nil {
				p.t.Fatal(err)
			}
		}
		if err := sd.s.Close(); err != nil {
			p.t.Fatal(err)
		}
		p.reopenSd(sd)
	}
	p.compareLog(op)
}

// timedStore is a window or session store.
type timedStore interface {
	state.Store
	ObservedStreamTime() int64
	ExpiredPuts() int64
}

// compareTimes compares the stream time of the cached and raw stores and
// the expired puts of both sides.
func compareTimes[S timedStore, E any](p *diffPair[S, E], op int) {
	p.t.Helper()
	if a, b := p.mem.s.ObservedStreamTime(), p.peb.s.ObservedStreamTime(); a != b {
		p.t.Fatalf("op %d: observed stream time %d, pebble %d", op, a, b)
	}
	if a, b := p.mem.raw.ObservedStreamTime(), p.peb.raw.ObservedStreamTime(); a != b {
		p.t.Fatalf("op %d: raw observed stream time %d, pebble %d", op, a, b)
	}
	if a, b := p.mem.s.ExpiredPuts(), p.peb.s.ExpiredPuts(); a != b {
		p.t.Fatalf("op %d: expired puts %d, pebble %d", op, a, b)
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
