package dsl

import (
	"time"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// Change is an update of a table row: the row's new value and the value it
// replaces. HasNew is false for a deletion, HasOld false for an insertion.
type Change[V any] struct {
	New, Old       V
	HasNew, HasOld bool
}

// KTable is a changelog stream: each record updates its key's row. Tables
// built by this package are materialized in a key-value store (windowed
// tables in a window or session store) that is queryable by name.
type KTable[K, V any] struct {
	b      *Builder
	node   string
	ks     serde.Serde[K]
	vs     serde.Serde[V]
	store  string
	topics []string
}

// StoreName returns the name of the store the table is materialized in
// (the name to query it by).
func (t KTable[K, V]) StoreName() string { return t.store }

func kvSpec(name string, c opConfig) streams.StoreSpec {
	return streams.StoreSpec{Spec: state.Spec{Name: name, Kind: state.KindKeyValue, InMemory: c.inMemory}}
}

func storeNameFor(c opConfig, node string) string {
	if c.storeName != "" {
		return c.storeName
	}
	return node + "-store"
}

// Table reads topic as a table: the topic is the table's changelog (records
// with a nil value delete their key), materialized in a key-value store
// named by StoreName (default "<topic>-store").
func Table[K, V any](b *Builder, topic string, keySerde serde.Serde[K], valueSerde serde.Serde[V], opts ...Opt) KTable[K, V] {
	node, store := addTableSource(b, topic, keySerde, valueSerde, b.config("Table", opts, optName|optStoreName|optInMemory|optExtractor), false)
	return KTable[K, V]{b: b, node: node, ks: keySerde, vs: valueSerde, store: store, topics: []string{topic}}
}

// addTableSource adds a source of topic and the processor materializing it
// into a key-value store whose changelog is the topic itself; global marks
// the store as held whole by every instance. It returns the materializing
// node and the store name (default "<topic>-store" or "<topic>-global-store").
func addTableSource[K, V any](b *Builder, topic string, keySerde serde.Serde[K], valueSerde serde.Serde[V], c opConfig, global bool) (node, store string) {
	kind, suffix := "table-source", "-store"
	if global {
		kind, suffix = "global-source", "-global-store"
	}
	src := b.name(c.name, kind)
	node = src + "-materialize"
	store = c.storeName
	if store == "" {
		store = topic + suffix
	}
	b.add(func(t *streams.Topology) {
		ks, vs := resolve(b, keySerde), resolve(b, valueSerde)
		var ns serde.Serde[Nullable[V]]
		if vs != nil {
			ns = NullableSerde(vs)
		}
		streams.AddSource(t, src, ks, ns, []string{topic}, c.sourceOpts()...)
		streams.AddProcessor(t, node, func() streams.Processor[K, Nullable[V], K, Change[V]] {
			return &tableSource[K, V]{kvChanges[K, V]{store: store, ks: ks, vs: vs}}
		}, src)
		spec := kvSpec(store, c)
		spec.SourceTopic = topic
		spec.Global = global
		t.AddStore(spec, node)
	})
	return node, store
}

// tableSource materializes a table's updates and forwards them as Changes
// from its store's write-back hook, as the aggregations do: behind the
// task's write-back cache once per key and commit, so a re-grouping or a
// join downstream sees a key's net change per commit.
type tableSource[K, V any] struct {
	kvChanges[K, V]
}

func (p *tableSource[K, V]) Process(r streams.Record[K, Nullable[V]]) error {
	kb, err := p.ks.Serialize(p.store, r.Key)
	if err != nil {
		return err
	}
	old, hasOld, pr, err := p.get(kb)
	if err != nil {
		return err
	}
	ch := Change[V]{Old: old, HasOld: hasOld, New: r.Value.Value, HasNew: r.Value.Valid}
	if !ch.HasNew && !hasOld {
		return nil
	}
	var vb []byte
	if ch.HasNew {
		if vb, err = p.vs.Serialize(p.store, ch.New); err != nil {
			return err
		}
		if vb == nil {
			vb = []byte{} // a present value, not a deletion
		}
	}
	return p.put(kb, vb, pr, r.Key, r.Timestamp, r.Headers, ch)
}

func (p *tableSource[K, V]) Close() error { return nil }

func kvStore[K, V any](ctx streams.ProcessorContext[K, V], name string) (state.KeyValueStore, error) {
	return storeAs[state.KeyValueStore](ctx, name, "key-value")
}

func getValue[V any](kv state.KeyValueStore, vs serde.Serde[V], store string, kb []byte) (V, bool, error) {
	var zero V
	b, err := kv.Get(kb)
	if err != nil || b == nil {
		return zero, false, err
	}
	v, err := vs.Deserialize(store, b)
	if err != nil {
		return zero, false, err
	}
	return v, true, nil
}

func putValue[V any](kv state.KeyValueStore, vs serde.Serde[V], store string, kb []byte, v V) error {
	b, err := vs.Serialize(store, v)
	if err != nil {
		return err
	}
	if b == nil {
		b = []byte{}
	}
	return kv.Put(kb, b)
}

// ToStream turns the table's updates into a record stream of the new
// values; deletions are not forwarded (use ChangeStream to see them).
func (t KTable[K, V]) ToStream(opts ...Opt) KStream[K, V] {
	name := t.b.name(t.b.config("ToStream", opts, optName).name, "to-stream")
	addProc(t.b, name, t.node, stateless(func(ctx streams.ProcessorContext[K, V], r streams.Record[K, Change[V]]) error {
		if !r.Value.HasNew {
			return nil
		}
		return ctx.Forward(streams.WithValue(r, r.Value.New))
	}))
	return KStream[K, V]{b: t.b, node: name, ks: t.ks, vs: t.vs, topics: t.topics}
}

// ChangeStream turns the table's updates into a stream of Nullable new
// values, where a deletion is an absent value. Writing it with To produces
// tombstones for deletions.
func ChangeStream[K, V any](t KTable[K, V], opts ...Opt) KStream[K, Nullable[V]] {
	name := t.b.name(t.b.config("ChangeStream", opts, optName).name, "change-stream")
	addProc(t.b, name, t.node, stateless(func(ctx streams.ProcessorContext[K, Nullable[V]], r streams.Record[K, Change[V]]) error {
		return ctx.Forward(streams.WithValue(r, Nullable[V]{Value: r.Value.New, Valid: r.Value.HasNew}))
	}))
	var ns serde.Serde[Nullable[V]]
	if t.vs != nil {
		ns = NullableSerde(t.vs)
	}
	out := KStream[K, Nullable[V]]{b: t.b, node: name, ks: t.ks, vs: ns, topics: t.topics}
	b := t.b
	if ns == nil {
		// Resolve the inner serde from the builder's defaults at Build.
		out.vs = lazyNullable[V]{b: b}
	}
	return out
}

// lazyNullable resolves its inner serde from the builder at first use.
type lazyNullable[V any] struct{ b *Builder }

func (l lazyNullable[V]) Serialize(topic string, v Nullable[V]) ([]byte, error) {
	return NullableSerde(resolve[V](l.b, nil)).Serialize(topic, v)
}
func (l lazyNullable[V]) Deserialize(topic string, b []byte) (Nullable[V], error) {
	return NullableSerde(resolve[V](l.b, nil)).Deserialize(topic, b)
}

// tableOp adds a processor deriving a new materialized table from t with f,
// which maps a change of t to a change of the new table (ok false: nothing
// to forward).
func tableOp[K, V, V2 any](t KTable[K, V], kind string, vs2 serde.Serde[V2], opts []Opt, takes optKind, f func(k K, ch Change[V]) Change[V2]) KTable[K, V2] {
	c := t.b.config(kind, opts, takes)
	name := t.b.name(c.name, kind)
	store := storeNameFor(c, name)
	b := t.b
	b.add(func(tp *streams.Topology) {
		ks, vs := resolve(b, t.ks), resolve(b, vs2)
		streams.AddProcessor(tp, name, func() streams.Processor[K, Change[V], K, Change[V2]] {
			return &tableDerive[K, V, V2]{store: store, ks: ks, vs: vs, f: f}
		}, t.node)
		tp.AddStore(kvSpec(store, c), name)
		if ks == nil || vs == nil {
			b.missing(tp, name, ks == nil, vs == nil)
		}
	})
	return KTable[K, V2]{b: b, node: name, ks: t.ks, vs: vs2, store: store, topics: t.topics}
}

type tableDerive[K, V, V2 any] struct {
	store string
	ks    serde.Serde[K]
	vs    serde.Serde[V2]
	f     func(K, Change[V]) Change[V2]
	kv    state.KeyValueStore
	ctx   streams.ProcessorContext[K, Change[V2]]
}

func (p *tableDerive[K, V, V2]) Init(ctx streams.ProcessorContext[K, Change[V2]]) (err error) {
	p.ctx = ctx
	p.kv, err = kvStore(ctx, p.store)
	return err
}

func (p *tableDerive[K, V, V2]) Process(r streams.Record[K, Change[V]]) error {
	ch := p.f(r.Key, r.Value)
	if !ch.HasNew && !ch.HasOld {
		return nil
	}
	kb, err := p.ks.Serialize(p.store, r.Key)
	if err != nil {
		return err
	}
	if ch.HasNew {
		err = putValue(p.kv, p.vs, p.store, kb, ch.New)
	} else {
		err = p.kv.Delete(kb)
	}
	if err != nil {
		return err
	}
	return p.ctx.Forward(streams.WithValue(r, ch))
}

func (p *tableDerive[K, V, V2]) Close() error { return nil }

// Filter keeps the rows for which pred holds: a row that stops matching is
// deleted downstream.
func (t KTable[K, V]) Filter(pred func(k K, v V) bool, opts ...Opt) KTable[K, V] {
	return tableOp(t, "table-filter", t.vs, opts, optName|optStoreName|optInMemory, func(k K, ch Change[V]) Change[V] {
		out := Change[V]{New: ch.New, Old: ch.Old}
		out.HasNew = ch.HasNew && pred(k, ch.New)
		out.HasOld = ch.HasOld && pred(k, ch.Old)
		return out
	})
}

// FilterNot drops the rows for which pred holds.
func (t KTable[K, V]) FilterNot(pred func(k K, v V) bool, opts ...Opt) KTable[K, V] {
	return t.Filter(func(k K, v V) bool { return !pred(k, v) }, opts...)
}

// TableMapValues maps every row's value with f.
func TableMapValues[K, V, V2 any](t KTable[K, V], f func(v V) V2, opts ...Opt) KTable[K, V2] {
	c := config(opts)
	return tableOp(t, "table-map-values", pick[V2](c.valSerde, nil), opts, takesStore, func(k K, ch Change[V]) Change[V2] {
		var out Change[V2]
		if ch.HasNew {
			out.New, out.HasNew = f(ch.New), true
		}
		if ch.HasOld {
			out.Old, out.HasOld = f(ch.Old), true
		}
		return out
	})
}

// To writes the table's changelog to topic: updates as values, deletions as
// tombstones (nil values).
func (t KTable[K, V]) To(topic string, opts ...Opt) {
	c := t.b.config("To", opts, optName|optKeySerde|optValueSerde)
	name := t.b.name(c.name, "table-sink")
	conv := name + "-changes"
	b := t.b
	b.add(func(tp *streams.Topology) {
		ks, vs := resolve(b, pick[K](c.keySerde, t.ks)), resolve(b, pick[V](c.valSerde, t.vs))
		var ns serde.Serde[Nullable[V]]
		if vs != nil {
			ns = NullableSerde(vs)
		}
		streams.AddProcessor(tp, conv, stateless(func(ctx streams.ProcessorContext[K, Nullable[V]], r streams.Record[K, Change[V]]) error {
			return ctx.Forward(streams.WithValue(r, Nullable[V]{Value: r.Value.New, Valid: r.Value.HasNew}))
		}), t.node)
		streams.AddSink(tp, name, topic, ks, ns, []string{conv})
	})
}

// SuppressConfig chooses when Suppress lets a table's updates through.
type SuppressConfig struct {
	untilWindowCloses bool
	timeLimit         time.Duration
}

// UntilWindowCloses holds a windowed table's updates until its window
// closes (stream time passes window end plus grace), then emits the final
// value once.
func UntilWindowCloses() SuppressConfig { return SuppressConfig{untilWindowCloses: true} }

// UntilTimeLimit holds each key's updates for d of stream time after its
// first update, then emits the latest.
func UntilTimeLimit(d time.Duration) SuppressConfig { return SuppressConfig{timeLimit: d} }

// Suppress holds each key's updates for the stream time UntilTimeLimit
// gives and emits the latest value per key when released (UntilWindowCloses
// needs a windowed table: see WindowedKTable.Suppress). The buffer is a
// logged store (StoreName, default "<node>-store"), restored after a crash
// or a task move like any other. Opts: Named, StoreName.
func (t KTable[K, V]) Suppress(cfg SuppressConfig, opts ...Opt) KTable[K, V] {
	name := t.b.name(config(opts).name, "suppress")
	if cfg.untilWindowCloses {
		t.b.add(func(*streams.Topology) {
			t.b.fail(name, "UntilWindowCloses on a table that is not windowed", "suppress a windowed aggregation, or use UntilTimeLimit")
		})
		return t
	}
	addSuppress[K, V](t.b, name, t.node, t.ks, t.vs, nil, 0, cfg, opts)
	out := t
	out.node = name
	return out
}

// ToTable materializes the stream as a table: each record upserts its key.
// Opts: Named, StoreName, InMemory.
func (s KStream[K, V]) ToTable(opts ...Opt) KTable[K, V] {
	c := s.b.config("ToTable", opts, optName|optStoreName|optInMemory)
	name := s.b.name(c.name, "to-table")
	store := storeNameFor(c, name)
	b := s.b
	if s.rekeyed {
		s = repartition(s, name, s.ks, s.vs, 0)
	}
	parent := s.node
	b.add(func(t *streams.Topology) {
		ks, vs := resolve(b, s.ks), resolve(b, s.vs)
		if ks == nil || vs == nil {
			b.missing(t, name, ks == nil, vs == nil)
		}
		streams.AddProcessor(t, name, func() streams.Processor[K, V, K, Change[V]] {
			return &streamToTable[K, V]{tableSource[K, V]{kvChanges[K, V]{store: store, ks: ks, vs: vs}}}
		}, parent)
		t.AddStore(kvSpec(store, c), name)
	})
	return KTable[K, V]{b: b, node: name, ks: s.ks, vs: s.vs, store: store, topics: s.topics}
}

type streamToTable[K, V any] struct{ tableSource[K, V] }

func (p *streamToTable[K, V]) Process(r streams.Record[K, V]) error {
	return p.tableSource.Process(streams.WithValue(r, Some(r.Value)))
}
