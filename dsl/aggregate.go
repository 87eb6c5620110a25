package dsl

import (
	"time"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// KGroupedStream is a stream grouped by key, ready to aggregate.
type KGroupedStream[K, V any] struct {
	s KStream[K, V]
}

// GroupByKey groups the stream by its key. If the key may have changed
// (Map, SelectKey, FlatMap, Process upstream), the stream is first written
// through a repartition topic so each key's records meet in one task.
// Opts: Named, KeySerde, ValueSerde, WithPartitions (for the repartition
// topic).
func (s KStream[K, V]) GroupByKey(opts ...Opt) KGroupedStream[K, V] {
	c := s.b.config("GroupByKey", opts, takesRepartition)
	ks, vs := pick[K](c.keySerde, s.ks), pick[V](c.valSerde, s.vs)
	if s.rekeyed {
		name := s.b.name(c.name, "group-by-key")
		s = repartition(s, name, ks, vs, c.partitions)
	}
	s.ks, s.vs = ks, vs
	return KGroupedStream[K, V]{s: s}
}

// GroupBy groups the stream by a new key f(key, value), through a
// repartition topic.
func GroupBy[K, V, K2 any](s KStream[K, V], f func(k K, v V) K2, opts ...Opt) KGroupedStream[K2, V] {
	c := s.b.config("GroupBy", opts, takesRepartition)
	name := s.b.name(c.name, "group-by")
	sel := SelectKey(s, f, Named(name+"-select"))
	ks, vs := pick[K2](c.keySerde, nil), pick[V](c.valSerde, s.vs)
	return KGroupedStream[K2, V]{s: repartition(sel, name, ks, vs, c.partitions)}
}

// Count counts the records per key.
func (g KGroupedStream[K, V]) Count(opts ...Opt) KTable[K, int64] {
	opts = append([]Opt{ValueSerde(serde.Int64())}, opts...)
	return Aggregate(g, func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 }, opts...)
}

// Reduce combines the values per key with f; the first value is taken as is.
func (g KGroupedStream[K, V]) Reduce(f func(agg, v V) V, opts ...Opt) KTable[K, V] {
	c := config(opts)
	if c.valSerde == nil && g.s.vs != nil {
		opts = append([]Opt{ValueSerde(g.s.vs)}, opts...)
	}
	return aggregate(g, "reduce", nil, func(_ K, v V, agg V, has bool) V {
		if !has {
			return v
		}
		return f(agg, v)
	}, opts)
}

// Aggregate folds the values per key into an aggregate, starting from
// init(). The aggregate's serde comes from ValueSerde or the builder's
// defaults. Opts: Named, StoreName, InMemory, ValueSerde.
func Aggregate[K, V, VA any](g KGroupedStream[K, V], init func() VA, add func(k K, v V, agg VA) VA, opts ...Opt) KTable[K, VA] {
	return aggregate(g, "aggregate", init, func(k K, v V, agg VA, _ bool) VA { return add(k, v, agg) }, opts)
}

func aggregate[K, V, VA any](g KGroupedStream[K, V], kind string, init func() VA, add func(K, V, VA, bool) VA, opts []Opt) KTable[K, VA] {
	c := g.s.b.config(kind, opts, takesStore)
	b := g.s.b
	name := b.name(c.name, kind)
	store := storeNameFor(c, name)
	as := pick[VA](c.valSerde, nil)
	parent := g.s.node
	b.add(func(t *streams.Topology) {
		ks, as := resolve(b, g.s.ks), resolve(b, as)
		if ks == nil || as == nil {
			b.missing(t, name, ks == nil, as == nil)
		}
		streams.AddProcessor(t, name, func() streams.Processor[K, V, K, Change[VA]] {
			return &kvAggregate[K, V, VA]{kvChanges: kvChanges[K, VA]{store: store, ks: ks, vs: as}, init: init, add: add}
		}, parent)
		t.AddStore(kvSpec(store, c), name)
	})
	return KTable[K, VA]{b: b, node: name, ks: g.s.ks, vs: as, store: store, topics: g.s.topics}
}

type kvAggregate[K, V, VA any] struct {
	// kvChanges holds the store (vs is the aggregate's serde) and forwards
	// results at the cache's flush when the store is cached.
	kvChanges[K, VA]
	init func() VA
	add  func(K, V, VA, bool) VA
	// kbuf and vbuf are reused for serialized keys and values: stores
	// copy what they keep.
	kbuf, vbuf []byte
}

// kvChanges is the part of a key-value processor that forwards Changes
// (tables and aggregations). Behind the task's write-back cache it forwards
// from the cache's flush, once per key and commit; pending keeps, per key
// updated since its last flush, the latest input record's key, timestamp
// and headers for the flushed record. Uncached, the processor forwards
// each update itself. A cached store that keeps tags (tagged) holds each
// key's pending record as the key's tag instead of pending.
type kvChanges[K, V any] struct {
	store   string
	ks      serde.Serde[K]
	vs      serde.Serde[V]
	kv      state.KeyValueStore
	ctx     streams.ProcessorContext[K, Change[V]]
	cached  bool
	tagged  stateengine.TaggedKeyValueStore
	pending *pendingTable[K]
	// kenc and venc are ks and vs resolved once for appending.
	kenc serde.Encoder[K]
	venc serde.Encoder[V]
}

func (c *kvChanges[K, V]) Init(ctx streams.ProcessorContext[K, Change[V]]) (err error) {
	c.ctx = ctx
	c.kenc, c.venc = serde.NewEncoder(c.ks), serde.NewEncoder(c.vs)
	if c.kv, err = kvStore(ctx, c.store); err != nil {
		return err
	}
	if tk, ok := c.kv.(stateengine.TaggedKeyValueStore); ok && stateengine.SetKeyValueTagListener(c.kv, c.flushedTagged) {
		c.cached, c.tagged = true, tk
		return nil
	}
	c.cached = stateengine.SetKeyValueFlushListener(c.kv, c.flushed)
	if c.cached {
		c.pending = newPendingTable[K]()
	}
	return nil
}

// get returns key kb's value and, with a tagged store, its pending record
// (nil if none).
func (c *kvChanges[K, V]) get(kb []byte) (V, bool, *pendingRec[K], error) {
	if c.tagged == nil {
		v, ok, err := getValue(c.kv, c.vs, c.store, kb)
		return v, ok, nil, err
	}
	var zero V
	b, tag, err := c.tagged.GetTagged(kb)
	pr, _ := tag.(*pendingRec[K])
	if err != nil || b == nil {
		return zero, false, pr, err
	}
	v, err := c.vs.Deserialize(c.store, b)
	if err != nil {
		return zero, false, pr, err
	}
	return v, true, pr, nil
}

// put writes kb's serialized value vb (nil: delete) for the record r; in
// a cached store it is forwarded at the flush with r's key, timestamp and
// headers. pr is what get returned.
func (c *kvChanges[K, V]) put(kb, vb []byte, pr *pendingRec[K], key K, ts time.Time, h streams.Headers) error {
	switch {
	case c.tagged != nil:
		// The key's record slot is reused from one flush to the next; set
		// before the put, which may write the key back at once.
		if pr == nil {
			pr = &pendingRec[K]{}
		}
		pr.key, pr.ts, pr.headers = key, ts, h
		return c.tagged.PutTagged(kb, vb, pr)
	case c.cached:
		// NB: remember the record before the put: the put may evict this
		// very key and call flushed at once.
		c.pending.put(kb, 0, 0, key, ts, h)
	}
	if vb == nil {
		return c.kv.Delete(kb)
	}
	return c.kv.Put(kb, vb)
}

// flushedTagged forwards a key's change when the cache writes it back;
// the key's tag is its latest input record.
func (c *kvChanges[K, V]) flushedTagged(kb, nb, ob []byte, tag any) error {
	pr, _ := tag.(*pendingRec[K])
	if pr == nil {
		k, err := c.ks.Deserialize(c.store, kb)
		if err != nil {
			return err
		}
		pr = &pendingRec[K]{key: k, ts: c.ctx.StreamTime()}
	}
	return c.forwardFlushed(pr, nb, ob)
}

// flushed forwards a key's change when the cache writes it back.
func (c *kvChanges[K, V]) flushed(kb, nb, ob []byte) error {
	pr, ok := c.pending.take(kb, 0, 0)
	if !ok {
		k, err := c.ks.Deserialize(c.store, kb)
		if err != nil {
			return err
		}
		pr = pendingRec[K]{key: k, ts: c.ctx.StreamTime()}
	}
	return c.forwardFlushed(&pr, nb, ob)
}

func (c *kvChanges[K, V]) forwardFlushed(pr *pendingRec[K], nb, ob []byte) error {
	ch, err := decodeChange(c.vs, c.store, nb, ob)
	if err != nil {
		return err
	}
	return c.ctx.Forward(streams.Record[K, Change[V]]{Key: pr.key, Value: ch, Timestamp: pr.ts, Headers: pr.headers})
}

// decodeChange turns a flushed (new, old) pair of serialized values into a
// Change; nil means absent.
func decodeChange[VA any](as serde.Serde[VA], store string, nb, ob []byte) (Change[VA], error) {
	var ch Change[VA]
	var err error
	if nb != nil {
		if ch.New, err = as.Deserialize(store, nb); err != nil {
			return ch, err
		}
		ch.HasNew = true
	}
	if ob != nil {
		if ch.Old, err = as.Deserialize(store, ob); err != nil {
			return ch, err
		}
		ch.HasOld = true
	}
	return ch, nil
}

func (p *kvAggregate[K, V, VA]) Process(r streams.Record[K, V]) error {
	kb, err := p.kenc.Append(p.kbuf[:0], p.store, r.Key)
	if err != nil {
		return err
	}
	p.kbuf = kb
	old, hasOld, pr, err := p.get(kb)
	if err != nil {
		return err
	}
	agg := old
	if !hasOld && p.init != nil {
		agg = p.init()
	}
	agg = p.add(r.Key, r.Value, agg, hasOld)
	vb, err := p.venc.Append(p.vbuf[:0], p.store, agg)
	if err != nil {
		return err
	}
	p.vbuf = vb
	if vb == nil {
		vb = []byte{} // an empty aggregate is not a deletion
	}
	if p.cached {
		return p.put(kb, vb, pr, r.Key, r.Timestamp, r.Headers)
	}
	if err := p.kv.Put(kb, vb); err != nil {
		return err
	}
	return p.ctx.Forward(streams.Record[K, Change[VA]]{Key: r.Key, Value: Change[VA]{New: agg, HasNew: true, Old: old, HasOld: hasOld},
		Timestamp: r.Timestamp, Headers: r.Headers})
}

func (p *kvAggregate[K, V, VA]) Close() error { return nil }

// TimeWindowedKStream is a grouped stream cut into time windows.
type TimeWindowedKStream[K, V any] struct {
	g KGroupedStream[K, V]
	w TimeWindows
}

// WindowedBy cuts the grouped stream into tumbling or hopping windows.
func (g KGroupedStream[K, V]) WindowedBy(w TimeWindows) TimeWindowedKStream[K, V] {
	return TimeWindowedKStream[K, V]{g: g, w: w}
}

// Count counts the records per key and window.
func (w TimeWindowedKStream[K, V]) Count(opts ...Opt) WindowedKTable[K, int64] {
	opts = append([]Opt{ValueSerde(serde.Int64())}, opts...)
	return WindowedAggregate(w, func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 }, opts...)
}

// Reduce combines the values per key and window with f.
func (w TimeWindowedKStream[K, V]) Reduce(f func(agg, v V) V, opts ...Opt) WindowedKTable[K, V] {
	c := config(opts)
	if c.valSerde == nil && w.g.s.vs != nil {
		opts = append([]Opt{ValueSerde(w.g.s.vs)}, opts...)
	}
	return windowedAggregate(w, "window-reduce", nil, func(_ K, v V, agg V, has bool) V {
		if !has {
			return v
		}
		return f(agg, v)
	}, opts)
}

// WindowedAggregate folds the values per key and window into an aggregate.
// A record whose window has closed (stream time >= window end + grace) is
// dropped and counted as "<node>: late".
func WindowedAggregate[K, V, VA any](w TimeWindowedKStream[K, V], init func() VA, add func(k K, v V, agg VA) VA, opts ...Opt) WindowedKTable[K, VA] {
	return windowedAggregate(w, "window-aggregate", init, func(k K, v V, agg VA, _ bool) VA { return add(k, v, agg) }, opts)
}

func windowedAggregate[K, V, VA any](w TimeWindowedKStream[K, V], kind string, init func() VA, add func(K, V, VA, bool) VA, opts []Opt) WindowedKTable[K, VA] {
	c := w.g.s.b.config(kind, opts, takesStore)
	b := w.g.s.b
	name := b.name(c.name, kind)
	store := storeNameFor(c, name)
	as := pick[VA](c.valSerde, nil)
	parent := w.g.s.node
	win := w.w
	b.add(func(t *streams.Topology) {
		if err := win.valid(); err != nil {
			b.fail(name, err.Error(), "fix the window definition")
			return
		}
		ks, as := resolve(b, w.g.s.ks), resolve(b, as)
		if ks == nil || as == nil {
			b.missing(t, name, ks == nil, as == nil)
		}
		streams.AddProcessor(t, name, func() streams.Processor[K, V, Windowed[K], Change[VA]] {
			return &windowAggregate[K, V, VA]{store: store, ks: ks, as: as, init: init, add: add, w: win}
		}, parent)
		t.AddStore(streams.StoreSpec{Spec: state.Spec{Name: store, Kind: state.KindWindow, InMemory: c.inMemory,
			Retention: win.size + win.grace, WindowSize: win.size}}, name)
	})
	var ks serde.Serde[Windowed[K]]
	if w.g.s.ks != nil {
		ks = WindowedSerde(w.g.s.ks, win.size)
	} else {
		ks = lazyWindowed[K]{b: b, size: win.size}
	}
	size := win.size.Milliseconds()
	return WindowedKTable[K, VA]{b: b, node: name, ks: ks, vs: as, store: store, topics: w.g.s.topics,
		windowEnd: func(k Windowed[K]) int64 { return k.Window.Start.UnixMilli() + size }, grace: win.grace}
}

// lazyWindowed resolves the inner key serde from the builder at use.
type lazyWindowed[K any] struct {
	b    *Builder
	size time.Duration
}

func (l lazyWindowed[K]) Serialize(topic string, v Windowed[K]) ([]byte, error) {
	return WindowedSerde(resolve[K](l.b, nil), l.size).Serialize(topic, v)
}
func (l lazyWindowed[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	return WindowedSerde(resolve[K](l.b, nil), l.size).Deserialize(topic, b)
}

type windowAggregate[K, V, VA any] struct {
	store  string
	ks     serde.Serde[K]
	as     serde.Serde[VA]
	init   func() VA
	add    func(K, V, VA, bool) VA
	w      TimeWindows
	ws     state.WindowStore
	ctx    streams.ProcessorContext[Windowed[K], Change[VA]]
	starts []int64
	// cached, pending, kbuf and vbuf are kvAggregate's, per key and window
	// start. tagged is ws as a store that keeps each window's latest input
	// record (a *pendingRec) as its tag; pending is used only when it is
	// nil.
	cached     bool
	tagged     stateengine.TaggedWindowStore
	pending    *pendingTable[K]
	kbuf, vbuf []byte
	// kenc and aenc are ks and as resolved once for appending.
	kenc serde.Encoder[K]
	aenc serde.Encoder[VA]
}

func (p *windowAggregate[K, V, VA]) Init(ctx streams.ProcessorContext[Windowed[K], Change[VA]]) error {
	p.ctx = ctx
	p.kenc, p.aenc = serde.NewEncoder(p.ks), serde.NewEncoder(p.as)
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	ws, ok := s.(state.WindowStore)
	if !ok {
		return &streams.TopologyError{Node: p.store, Problem: "store is not a window store"}
	}
	p.ws = ws
	if tw, ok := ws.(stateengine.TaggedWindowStore); ok && stateengine.SetWindowTagListener(ws, p.flushedTagged) {
		p.cached, p.tagged = true, tw
		return nil
	}
	p.cached = stateengine.SetWindowFlushListener(ws, p.flushed)
	if p.cached {
		p.pending = newPendingTable[K]()
	}
	return nil
}

// flushedTagged forwards a window's result when the cache writes it back;
// the window's tag is its latest input record.
func (p *windowAggregate[K, V, VA]) flushedTagged(kb []byte, start int64, nb, ob []byte, tag any) error {
	pr, _ := tag.(*pendingRec[K])
	if pr == nil {
		k, err := p.ks.Deserialize(p.store, kb)
		if err != nil {
			return err
		}
		pr = &pendingRec[K]{key: k, ts: p.ctx.StreamTime()}
	}
	return p.forwardFlushed(pr, start, nb, ob)
}

// flushed forwards a window's result when the cache writes it back.
func (p *windowAggregate[K, V, VA]) flushed(kb []byte, start int64, nb, ob []byte) error {
	pr, ok := p.pending.take(kb, start, 0)
	if !ok {
		k, err := p.ks.Deserialize(p.store, kb)
		if err != nil {
			return err
		}
		pr = pendingRec[K]{key: k, ts: p.ctx.StreamTime()}
	}
	return p.forwardFlushed(&pr, start, nb, ob)
}

func (p *windowAggregate[K, V, VA]) forwardFlushed(pr *pendingRec[K], start int64, nb, ob []byte) error {
	ch, err := decodeChange(p.as, p.store, nb, ob)
	if err != nil {
		return err
	}
	end := start + p.w.size.Milliseconds()
	key := Windowed[K]{Key: pr.key, Window: Window{Start: time.UnixMilli(start), End: time.UnixMilli(end)}}
	return p.ctx.Forward(streams.Record[Windowed[K], Change[VA]]{Key: key, Value: ch, Timestamp: pr.ts, Headers: pr.headers})
}

func (p *windowAggregate[K, V, VA]) Process(r streams.Record[K, V]) error {
	ts := r.Timestamp.UnixMilli()
	// NB: the store's observed stream time (restored from its changelog)
	// bounds the task's stream time from below after a failover, when the
	// task's own stream time starts over: replayed records of windows that
	// already closed stay dropped instead of restarting their count.
	closeTime := max(p.ctx.StreamTime().UnixMilli(), p.ws.ObservedStreamTime()) - p.w.grace.Milliseconds()
	size := p.w.size.Milliseconds()
	p.starts = p.w.starts(ts, p.starts[:0])
	var kb []byte
	for _, start := range p.starts {
		end := start + size
		if end <= closeTime {
			p.ctx.RecordDropped(streams.DropLate)
			continue
		}
		if kb == nil {
			var err error
			if kb, err = p.kenc.Append(p.kbuf[:0], p.store, r.Key); err != nil {
				return err
			}
			p.kbuf = kb
		}
		var old VA
		hasOld := false
		var b []byte
		var tag any
		var err error
		if p.tagged != nil {
			b, tag, err = p.tagged.GetTagged(kb, start)
		} else {
			b, err = p.ws.Get(kb, start)
		}
		if err != nil {
			return err
		}
		if b != nil {
			if old, err = p.as.Deserialize(p.store, b); err != nil {
				return err
			}
			hasOld = true
		}
		agg := old
		if !hasOld && p.init != nil {
			agg = p.init()
		}
		agg = p.add(r.Key, r.Value, agg, hasOld)
		vb, err := p.aenc.Append(p.vbuf[:0], p.store, agg)
		if err != nil {
			return err
		}
		p.vbuf = vb
		if vb == nil {
			vb = []byte{}
		}
		if p.tagged != nil {
			// The window's record slot is reused from one flush to the
			// next; set before the put, which may write the window back.
			pr, _ := tag.(*pendingRec[K])
			if pr == nil {
				pr = &pendingRec[K]{}
			}
			pr.key, pr.ts, pr.headers = r.Key, r.Timestamp, r.Headers
			if err := p.tagged.PutTagged(kb, start, vb, pr); err != nil {
				return err
			}
			continue
		}
		if p.cached {
			p.pending.put(kb, start, 0, r.Key, r.Timestamp, r.Headers)
			if err := p.ws.Put(kb, start, vb); err != nil {
				return err
			}
			continue
		}
		if err := p.ws.Put(kb, start, vb); err != nil {
			return err
		}
		wk := Windowed[K]{Key: r.Key, Window: Window{Start: time.UnixMilli(start), End: time.UnixMilli(end)}}
		if err := p.ctx.Forward(streams.Record[Windowed[K], Change[VA]]{Key: wk,
			Value: Change[VA]{New: agg, HasNew: true, Old: old, HasOld: hasOld}, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
			return err
		}
	}
	return nil
}

func (p *windowAggregate[K, V, VA]) Close() error { return nil }
