package dsl

import (
	"sort"
	"time"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// SlidingWindowedKStream is a grouped stream aggregated over sliding
// windows.
type SlidingWindowedKStream[K, V any] struct {
	g KGroupedStream[K, V]
	w SlidingWindows
}

// WindowedBySliding aggregates the grouped stream over sliding windows:
// windows [s, s+diff] (both ends inclusive) defined by the records
// themselves. Each record at t has a left window [t-diff, t] and, once a
// later record falls within diff+1 of it, a right window [t+1, t+1+diff];
// a window's aggregate covers exactly the records inside it, so every
// distinct set of records within diff of each other is aggregated once.
func (g KGroupedStream[K, V]) WindowedBySliding(w SlidingWindows) SlidingWindowedKStream[K, V] {
	return SlidingWindowedKStream[K, V]{g: g, w: w}
}

// Count counts the records per key and sliding window.
func (s SlidingWindowedKStream[K, V]) Count(opts ...Opt) WindowedKTable[K, int64] {
	opts = append([]Opt{ValueSerde(serde.Int64())}, opts...)
	return SlidingAggregate(s, func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 }, opts...)
}

// SlidingAggregate folds the values per key and sliding window. A record
// updates (or creates) every window containing it and creates its right
// window if later records already fall in it; windows ending at or before
// stream time minus grace are closed, and a record that reaches no open
// window is dropped and counted as "<node>: late". The store keeps the
// records of the last 2*diff+grace of stream time, and the aggregates.
func SlidingAggregate[K, V, VA any](s SlidingWindowedKStream[K, V], init func() VA, add func(k K, v V, agg VA) VA, opts ...Opt) WindowedKTable[K, VA] {
	c := s.g.s.b.config("SlidingAggregate", opts, takesStore)
	b := s.g.s.b
	name := b.name(c.name, "sliding-aggregate")
	store := storeNameFor(c, name)
	records := name + "-records"
	as := pick[VA](c.valSerde, nil)
	parent := s.g.s.node
	w := s.w
	b.add(func(t *streams.Topology) {
		if w.diff <= 0 || w.grace < 0 {
			b.fail(name, "sliding windows need a positive time difference and a non-negative grace", "fix the window definition")
			return
		}
		ks, vs, as := resolve(b, s.g.s.ks), resolve(b, s.g.s.vs), resolve(b, as)
		if ks == nil || vs == nil || as == nil {
			b.missing(t, name, ks == nil, vs == nil || as == nil)
		}
		streams.AddProcessor(t, name, func() streams.Processor[K, V, Windowed[K], Change[VA]] {
			return &slidingAggregate[K, V, VA]{store: store, records: records, ks: ks, vs: vs, as: as, init: init, add: add,
				diff: w.diff.Milliseconds(), grace: w.grace.Milliseconds()}
		}, parent)
		retention := 2*w.diff + w.grace + time.Millisecond
		t.AddStore(streams.StoreSpec{Spec: state.Spec{Name: store, Kind: state.KindWindow, InMemory: c.inMemory, Retention: retention}}, name)
		t.AddStore(streams.StoreSpec{Spec: state.Spec{Name: records, Kind: state.KindWindow, InMemory: c.inMemory, Retention: retention}}, name)
	})
	var ks serde.Serde[Windowed[K]]
	if s.g.s.ks != nil {
		ks = WindowedSerde(s.g.s.ks, w.diff)
	} else {
		ks = lazyWindowed[K]{b: b, size: w.diff}
	}
	return WindowedKTable[K, VA]{b: b, node: name, ks: ks, vs: as, store: store, topics: s.g.s.topics,
		windowEnd: func(k Windowed[K]) int64 { return k.Window.End.UnixMilli() }, grace: w.grace}
}

type slidingAggregate[K, V, VA any] struct {
	store, records string
	ks             serde.Serde[K]
	vs             serde.Serde[V]
	as             serde.Serde[VA]
	init           func() VA
	add            func(K, V, VA) VA
	diff, grace    int64
	aggs, raw      state.WindowStore
	ctx            streams.ProcessorContext[Windowed[K], Change[VA]]
}

func (p *slidingAggregate[K, V, VA]) Init(ctx streams.ProcessorContext[Windowed[K], Change[VA]]) (err error) {
	p.ctx = ctx
	if p.aggs, err = windowStore(ctx, p.store); err != nil {
		return err
	}
	p.raw, err = windowStore(ctx, p.records)
	return err
}

type tsValue[V any] struct {
	ts int64
	v  V
}

func (p *slidingAggregate[K, V, VA]) Process(r streams.Record[K, V]) error {
	t := r.Timestamp.UnixMilli()
	closeTime := p.ctx.StreamTime().UnixMilli() - p.grace
	d := p.diff
	kb, err := p.ks.Serialize(p.store, r.Key)
	if err != nil {
		return err
	}
	if t+d <= closeTime {
		// Every window containing t ends by t+d: all are closed.
		p.ctx.RecordDropped(streams.DropLate)
		return nil
	}
	vb, err := p.vs.Serialize(p.records, r.Value)
	if err != nil {
		return err
	}
	list, err := p.raw.Get(kb, t)
	if err != nil {
		return err
	}
	if err := p.raw.Put(kb, t, appendValue(list, vb)); err != nil {
		return err
	}
	// The records that can share a window with t.
	it, err := p.raw.Fetch(kb, t-2*d-1, t+2*d+1, false)
	if err != nil {
		return err
	}
	var recs []tsValue[V]
	for it.Next() {
		ts := it.WindowStart()
		if err := eachValue(it.Value(), func(b []byte) error {
			v, err := p.vs.Deserialize(p.records, b)
			recs = append(recs, tsValue[V]{ts: ts, v: v})
			return err
		}); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	// Candidate windows, by start: left windows of records in [t, t+d],
	// right windows of records in [t-d-1, t-1], and t's right window.
	starts := map[int64]bool{}
	for _, rv := range recs {
		if rv.ts >= t && rv.ts <= t+d {
			starts[rv.ts-d] = true
		}
		if rv.ts >= t-d-1 && rv.ts <= t-1 {
			starts[rv.ts+1] = true
		}
		if rv.ts > t && rv.ts <= t+1+d {
			starts[t+1] = true
		}
	}
	sorted := make([]int64, 0, len(starts))
	for s := range starts {
		sorted = append(sorted, s)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	updated := false
	for _, s := range sorted {
		end := s + d
		if end <= closeTime {
			continue
		}
		agg := p.init()
		n := 0
		for _, rv := range recs {
			if rv.ts >= s && rv.ts <= end {
				agg = p.add(r.Key, rv.v, agg)
				n++
			}
		}
		if n == 0 {
			continue
		}
		var old VA
		hasOld := false
		if ob, err := p.aggs.Get(kb, s); err != nil {
			return err
		} else if ob != nil {
			if old, err = p.as.Deserialize(p.store, ob); err != nil {
				return err
			}
			hasOld = true
		}
		ab, err := p.as.Serialize(p.store, agg)
		if err != nil {
			return err
		}
		if err := p.aggs.Put(kb, s, ab); err != nil {
			return err
		}
		updated = true
		ts := r.Timestamp
		if end < t {
			ts = time.UnixMilli(end)
		}
		if err := p.ctx.Forward(streams.Record[Windowed[K], Change[VA]]{
			Key:   Windowed[K]{Key: r.Key, Window: Window{Start: time.UnixMilli(s), End: time.UnixMilli(end)}},
			Value: Change[VA]{New: agg, HasNew: true, Old: old, HasOld: hasOld}, Timestamp: ts, Headers: r.Headers}); err != nil {
			return err
		}
	}
	if !updated {
		p.ctx.RecordDropped(streams.DropLate)
	}
	return nil
}

func (p *slidingAggregate[K, V, VA]) Close() error { return nil }
