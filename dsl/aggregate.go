package dsl

import (
	"time"

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
	// results from its write-back hook.
	kvChanges[K, VA]
	init func() VA
	add  func(K, V, VA, bool) VA
	// kbuf and vbuf are reused for serialized keys and values: stores
	// copy what they keep.
	kbuf, vbuf []byte
}

// kvChanges is the part of a key-value processor that forwards Changes
// (tables and aggregations): it writes each result tagged with its input
// record and forwards from the store's write-back hook (see writeback.go).
type kvChanges[K, V any] struct {
	store string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	kv    writeBackKV
	ctx   streams.ProcessorContext[K, Change[V]]
	// kenc and venc are ks and vs resolved once for appending.
	kenc serde.Encoder[K]
	venc serde.Encoder[V]
	// through is set when kv is a write-through view (throughKV): its hook
	// runs inside PutTagged, for that write, and forwards cur, the Change
	// put has at hand.
	through bool
	cur     Change[V]
}

func (c *kvChanges[K, V]) Init(ctx streams.ProcessorContext[K, Change[V]]) (err error) {
	c.ctx = ctx
	c.kenc, c.venc = serde.NewEncoder(c.ks), serde.NewEncoder(c.vs)
	if c.kv, err = openWriteBackKV(ctx, c.store); err != nil {
		return err
	}
	c.kv.OnWriteBack(c.wroteBack)
	_, c.through = c.kv.(*throughKV)
	return nil
}

// get returns key kb's value and its tag (nil if none).
func (c *kvChanges[K, V]) get(kb []byte) (V, bool, *fwdRec[K], error) {
	var zero V
	b, tag, err := c.kv.GetTagged(kb)
	pr, _ := tag.(*fwdRec[K])
	if err != nil || b == nil {
		return zero, false, pr, err
	}
	v, err := c.vs.Deserialize(c.store, b)
	if err != nil {
		return zero, false, pr, err
	}
	return v, true, pr, nil
}

// put writes kb's serialized value vb (nil: delete) for the record
// (key, ts, h), which the result is forwarded with at its write-back. pr is
// the tag get returned, reused; ch is the change vb makes.
func (c *kvChanges[K, V]) put(kb, vb []byte, pr *fwdRec[K], key K, ts time.Time, h streams.Headers, ch Change[V]) error {
	// NB: the tag is set before the put, which may write the key back at
	// once (write-through, or an eviction).
	if pr == nil {
		pr = &fwdRec[K]{}
	}
	pr.key, pr.ts, pr.headers = key, ts, h
	if c.through {
		c.cur = ch
		err := c.kv.PutTagged(kb, vb, pr)
		var zero Change[V]
		c.cur = zero
		return err
	}
	return c.kv.PutTagged(kb, vb, pr)
}

// wroteBack forwards a key's change when the store writes it back.
func (c *kvChanges[K, V]) wroteBack(kb, nb, ob []byte, tag any) error {
	pr, _ := tag.(*fwdRec[K])
	if pr == nil {
		var err error
		if pr, err = keyRec(c.ks, c.store, kb, c.ctx.StreamTime()); err != nil {
			return err
		}
	}
	ch := c.cur
	if !c.through {
		var err error
		if ch, err = decodeChange(c.vs, c.store, nb, ob); err != nil {
			return err
		}
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
	return p.put(kb, vb, pr, r.Key, r.Timestamp, r.Headers, Change[VA]{New: agg, HasNew: true, Old: old, HasOld: hasOld})
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
	ws     writeBackWindow
	ctx    streams.ProcessorContext[Windowed[K], Change[VA]]
	starts []int64
	// kbuf and vbuf are kvAggregate's.
	kbuf, vbuf []byte
	// kenc and aenc are ks and as resolved once for appending.
	kenc serde.Encoder[K]
	aenc serde.Encoder[VA]
	// through and cur are kvChanges'.
	through bool
	cur     Change[VA]
}

func (p *windowAggregate[K, V, VA]) Init(ctx streams.ProcessorContext[Windowed[K], Change[VA]]) (err error) {
	p.ctx = ctx
	p.kenc, p.aenc = serde.NewEncoder(p.ks), serde.NewEncoder(p.as)
	if p.ws, err = openWriteBackWindow(ctx, p.store); err != nil {
		return err
	}
	p.ws.OnWriteBack(p.wroteBack)
	_, p.through = p.ws.(*throughWindow)
	return nil
}

// wroteBack forwards a window's result when the store writes it back.
func (p *windowAggregate[K, V, VA]) wroteBack(kb []byte, start int64, nb, ob []byte, tag any) error {
	pr, _ := tag.(*fwdRec[K])
	if pr == nil {
		var err error
		if pr, err = keyRec(p.ks, p.store, kb, p.ctx.StreamTime()); err != nil {
			return err
		}
	}
	ch := p.cur
	if !p.through {
		var err error
		if ch, err = decodeChange(p.as, p.store, nb, ob); err != nil {
			return err
		}
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
		if start+size <= closeTime {
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
		b, tag, err := p.ws.GetTagged(kb, start)
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
		// The window's tag is reused from one write to the next; set
		// before the put, which may write the window back at once.
		pr, _ := tag.(*fwdRec[K])
		if pr == nil {
			pr = &fwdRec[K]{}
		}
		pr.key, pr.ts, pr.headers = r.Key, r.Timestamp, r.Headers
		if p.through {
			p.cur = Change[VA]{New: agg, HasNew: true, Old: old, HasOld: hasOld}
		}
		err = p.ws.PutTagged(kb, start, vb, pr)
		p.cur = Change[VA]{}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *windowAggregate[K, V, VA]) Close() error { return nil }
