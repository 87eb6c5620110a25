package dsl

import (
	"fmt"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// KStream is a record stream: every record is an independent event. It is
// a handle on a node of the program being built; operations add nodes
// downstream of it.
type KStream[K, V any] struct {
	b    *Builder
	node string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	// rekeyed is set after an operation that may have changed the key:
	// a grouping or join first repartitions the stream.
	rekeyed bool
	// topics are the topics the stream's records come from, for the
	// co-partitioning requirements of joins.
	topics []string
}

// KeyValue is a key and a value, returned by FlatMap and friends.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KV builds a KeyValue.
func KV[K, V any](k K, v V) KeyValue[K, V] { return KeyValue[K, V]{Key: k, Value: v} }

// Stream reads topic as a record stream with the given serdes (nil: the
// builder's default for the type).
func Stream[K, V any](b *Builder, topic string, keySerde serde.Serde[K], valueSerde serde.Serde[V], opts ...Opt) KStream[K, V] {
	return Streams(b, []string{topic}, keySerde, valueSerde, opts...)
}

// Streams reads several topics as one record stream.
func Streams[K, V any](b *Builder, topics []string, keySerde serde.Serde[K], valueSerde serde.Serde[V], opts ...Opt) KStream[K, V] {
	c := b.config("Stream", opts, optName|optExtractor)
	name := b.name(c.name, "source")
	b.add(func(t *streams.Topology) {
		streams.AddSource(t, name, resolve(b, keySerde), resolve(b, valueSerde), topics, c.sourceOpts()...)
	})
	return KStream[K, V]{b: b, node: name, ks: keySerde, vs: valueSerde, topics: topics}
}

// derive returns a stream on a new node with new types, inheriting topics.
func derive[K, V, K2, V2 any](s KStream[K, V], node string, ks serde.Serde[K2], vs serde.Serde[V2], rekeyed bool) KStream[K2, V2] {
	return KStream[K2, V2]{b: s.b, node: node, ks: ks, vs: vs, rekeyed: rekeyed, topics: s.topics}
}

// addProc adds a processor node below parent.
func addProc[KIn, VIn, KOut, VOut any](b *Builder, name, parent string, sup streams.ProcessorSupplier[KIn, VIn, KOut, VOut], stores ...string) {
	b.add(func(t *streams.Topology) {
		streams.AddProcessor(t, name, sup, parent)
		if len(stores) > 0 {
			t.ConnectStores(name, stores...)
		}
	})
}

func stateless[KIn, VIn, KOut, VOut any](f streams.ProcessorFunc[KIn, VIn, KOut, VOut]) streams.ProcessorSupplier[KIn, VIn, KOut, VOut] {
	return f.Supplier()
}

// Filter keeps the records for which pred is true.
func (s KStream[K, V]) Filter(pred func(k K, v V) bool, opts ...Opt) KStream[K, V] {
	name := s.b.name(s.b.config("Filter", opts, optName).name, "filter")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K, V], r streams.Record[K, V]) error {
		if pred(r.Key, r.Value) {
			return ctx.Forward(r)
		}
		return nil
	}))
	return derive(s, name, s.ks, s.vs, s.rekeyed)
}

// FilterNot drops the records for which pred is true.
func (s KStream[K, V]) FilterNot(pred func(k K, v V) bool, opts ...Opt) KStream[K, V] {
	if config(opts).name == "" {
		opts = append(opts, Named(s.b.name("", "filter-not")))
	}
	return s.Filter(func(k K, v V) bool { return !pred(k, v) }, opts...)
}

// Peek calls f for each record and passes the record on unchanged.
func (s KStream[K, V]) Peek(f func(k K, v V), opts ...Opt) KStream[K, V] {
	name := s.b.name(s.b.config("Peek", opts, optName).name, "peek")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K, V], r streams.Record[K, V]) error {
		f(r.Key, r.Value)
		return ctx.Forward(r)
	}))
	return derive(s, name, s.ks, s.vs, s.rekeyed)
}

// Foreach calls f for each record; it ends the stream.
func (s KStream[K, V]) Foreach(f func(k K, v V), opts ...Opt) {
	name := s.b.name(s.b.config("Foreach", opts, optName).name, "foreach")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K, V], r streams.Record[K, V]) error {
		f(r.Key, r.Value)
		return nil
	}))
}

// Map replaces each record's key and value. The key may change, so a later
// grouping or join repartitions.
func Map[K, V, K2, V2 any](s KStream[K, V], f func(k K, v V) (K2, V2), opts ...Opt) KStream[K2, V2] {
	c := s.b.config("Map", opts, optName|optKeySerde|optValueSerde)
	name := s.b.name(c.name, "map")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K2, V2], r streams.Record[K, V]) error {
		k, v := f(r.Key, r.Value)
		return ctx.Forward(streams.Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
	}))
	return derive(s, name, pick[K2](c.keySerde, nil), pick[V2](c.valSerde, nil), true)
}

// MapValues replaces each record's value; the key stays, so no repartition
// follows.
func MapValues[K, V, V2 any](s KStream[K, V], f func(v V) V2, opts ...Opt) KStream[K, V2] {
	c := s.b.config("MapValues", opts, optName|optValueSerde)
	name := s.b.name(c.name, "map-values")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K, V2], r streams.Record[K, V]) error {
		return ctx.Forward(streams.WithValue(r, f(r.Value)))
	}))
	return derive(s, name, s.ks, pick[V2](c.valSerde, nil), s.rekeyed)
}

// MapValuesWithKey is MapValues with read-only access to the key.
func MapValuesWithKey[K, V, V2 any](s KStream[K, V], f func(k K, v V) V2, opts ...Opt) KStream[K, V2] {
	c := s.b.config("MapValuesWithKey", opts, optName|optValueSerde)
	name := s.b.name(c.name, "map-values")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K, V2], r streams.Record[K, V]) error {
		return ctx.Forward(streams.WithValue(r, f(r.Key, r.Value)))
	}))
	return derive(s, name, s.ks, pick[V2](c.valSerde, nil), s.rekeyed)
}

// SelectKey sets each record's key to f(key, value); a later grouping or
// join repartitions.
func SelectKey[K, V, K2 any](s KStream[K, V], f func(k K, v V) K2, opts ...Opt) KStream[K2, V] {
	c := s.b.config("SelectKey", opts, optName|optKeySerde)
	name := s.b.name(c.name, "select-key")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K2, V], r streams.Record[K, V]) error {
		return ctx.Forward(streams.WithKey(r, f(r.Key, r.Value)))
	}))
	return derive(s, name, pick[K2](c.keySerde, nil), s.vs, true)
}

// FlatMap turns each record into zero or more records; a later grouping or
// join repartitions.
func FlatMap[K, V, K2, V2 any](s KStream[K, V], f func(k K, v V) []KeyValue[K2, V2], opts ...Opt) KStream[K2, V2] {
	c := s.b.config("FlatMap", opts, optName|optKeySerde|optValueSerde)
	name := s.b.name(c.name, "flat-map")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K2, V2], r streams.Record[K, V]) error {
		for _, kv := range f(r.Key, r.Value) {
			if err := ctx.Forward(streams.Record[K2, V2]{Key: kv.Key, Value: kv.Value, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
				return err
			}
		}
		return nil
	}))
	return derive(s, name, pick[K2](c.keySerde, nil), pick[V2](c.valSerde, nil), true)
}

// FlatMapValues turns each record into zero or more records with the same
// key.
func FlatMapValues[K, V, V2 any](s KStream[K, V], f func(v V) []V2, opts ...Opt) KStream[K, V2] {
	c := s.b.config("FlatMapValues", opts, optName|optValueSerde)
	name := s.b.name(c.name, "flat-map-values")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K, V2], r streams.Record[K, V]) error {
		for _, v := range f(r.Value) {
			if err := ctx.Forward(streams.WithValue(r, v)); err != nil {
				return err
			}
		}
		return nil
	}))
	return derive(s, name, s.ks, pick[V2](c.valSerde, nil), s.rekeyed)
}

// Merge returns a stream of the records of s and other, in processing
// order.
func (s KStream[K, V]) Merge(other KStream[K, V], opts ...Opt) KStream[K, V] {
	name := s.b.name(s.b.config("Merge", opts, optName).name, "merge")
	pass := func() streams.Processor[K, V, K, V] {
		return &funcProc[K, V]{f: func(ctx streams.ProcessorContext[K, V], r streams.Record[K, V]) error { return ctx.Forward(r) }}
	}
	s.b.add(func(t *streams.Topology) {
		streams.AddProcessor(t, name, pass, s.node, other.node)
	})
	out := derive(s, name, s.ks, s.vs, s.rekeyed || other.rekeyed)
	out.topics = append(append([]string(nil), s.topics...), other.topics...)
	if out.ks == nil {
		out.ks = other.ks
	}
	if out.vs == nil {
		out.vs = other.vs
	}
	return out
}

type funcProc[K, V any] struct {
	ctx streams.ProcessorContext[K, V]
	f   func(ctx streams.ProcessorContext[K, V], r streams.Record[K, V]) error
}

func (p *funcProc[K, V]) Init(ctx streams.ProcessorContext[K, V]) error {
	p.ctx = ctx
	return nil
}
func (p *funcProc[K, V]) Process(r streams.Record[K, V]) error { return p.f(p.ctx, r) }
func (p *funcProc[K, V]) Close() error                         { return nil }

// Branch is one named branch of Split: the records for which Pred is true
// (and no earlier branch's).
type Branch[K, V any] struct {
	Name string
	Pred func(k K, v V) bool
}

// Split routes each record to the first branch whose predicate holds; with
// a default branch (named defaultBranch, "" for none) records matching no
// branch go there, otherwise they are dropped. It returns the branches by
// name.
func (s KStream[K, V]) Split(branches []Branch[K, V], defaultBranch string, opts ...Opt) map[string]KStream[K, V] {
	name := s.b.name(s.b.config("Split", opts, optName).name, "split")
	out := map[string]KStream[K, V]{}
	nodes := make([]string, len(branches))
	for i, br := range branches {
		nodes[i] = name + "-" + br.Name
	}
	defNode := ""
	if defaultBranch != "" {
		defNode = name + "-" + defaultBranch
	}
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[K, V], r streams.Record[K, V]) error {
		for i, br := range branches {
			if br.Pred(r.Key, r.Value) {
				return ctx.ForwardTo(nodes[i], r)
			}
		}
		if defNode != "" {
			return ctx.ForwardTo(defNode, r)
		}
		return nil
	}))
	pass := stateless(func(ctx streams.ProcessorContext[K, V], r streams.Record[K, V]) error { return ctx.Forward(r) })
	add := func(branch, node string) {
		if _, dup := out[branch]; dup {
			s.b.errs = append(s.b.errs, &streams.TopologyError{Node: name, Problem: fmt.Sprintf("duplicate branch %q", branch), Fix: "name each branch once"})
		}
		addProc(s.b, node, name, pass)
		out[branch] = derive(s, node, s.ks, s.vs, s.rekeyed)
	}
	for i, br := range branches {
		add(br.Name, nodes[i])
	}
	if defNode != "" {
		add(defaultBranch, defNode)
	}
	return out
}

// Repartition writes the stream to an internal repartition topic and reads
// it back, partitioned by the current key: the next operations run in a new
// sub-topology. Opts: Named, KeySerde, ValueSerde, WithPartitions.
func (s KStream[K, V]) Repartition(opts ...Opt) KStream[K, V] {
	c := s.b.config("Repartition", opts, takesRepartition)
	name := s.b.name(c.name, "repartition")
	return repartition(s, name, pick[K](c.keySerde, s.ks), pick[V](c.valSerde, s.vs), c.partitions)
}

func repartition[K, V any](s KStream[K, V], name string, ks serde.Serde[K], vs serde.Serde[V], partitions int) KStream[K, V] {
	b := s.b
	topic := name + "-repartition"
	sink, src := name+"-sink", name+"-source"
	b.add(func(t *streams.Topology) {
		t.AddInternalTopic(streams.InternalTopic{Name: topic, Kind: streams.RepartitionTopic, Partitions: partitions})
		streams.AddSink(t, sink, topic, resolve(b, ks), resolve(b, vs), []string{s.node}, streams.ToInternal())
		streams.AddSource(t, src, resolve(b, ks), resolve(b, vs), []string{topic}, streams.Internal())
	})
	return KStream[K, V]{b: b, node: src, ks: ks, vs: vs, topics: []string{topic}}
}

// repartitionIfRekeyed repartitions s if its key may have changed.
func repartitionIfRekeyed[K, V any](s KStream[K, V], name string, ks serde.Serde[K], vs serde.Serde[V]) KStream[K, V] {
	if !s.rekeyed {
		return s
	}
	return repartition(s, name, ks, vs, 0)
}

// To writes the stream to topic with the stream's serdes (or KeySerde and
// ValueSerde options, or the builder's defaults). Opts: Named, KeySerde,
// ValueSerde, Partitioner (default: by the hash of the serialized key).
func (s KStream[K, V]) To(topic string, opts ...Opt) {
	c := s.b.config("To", opts, takesSink)
	name := s.b.name(c.name, "sink")
	ks, vs := pick[K](c.keySerde, s.ks), pick[V](c.valSerde, s.vs)
	b := s.b
	b.add(func(t *streams.Topology) {
		so, ok := sinkOpts[K, V](b, name, c)
		if !ok {
			return
		}
		streams.AddSink(t, name, topic, resolve(b, ks), resolve(b, vs), []string{s.node}, so...)
	})
}

// ToFunc writes each record to the topic choose returns for it.
// Opts: Named, KeySerde, ValueSerde, Partitioner.
func (s KStream[K, V]) ToFunc(choose func(k K, v V) string, opts ...Opt) {
	c := s.b.config("ToFunc", opts, takesSink)
	name := s.b.name(c.name, "sink")
	ks, vs := pick[K](c.keySerde, s.ks), pick[V](c.valSerde, s.vs)
	b := s.b
	b.add(func(t *streams.Topology) {
		so, ok := sinkOpts[K, V](b, name, c)
		if !ok {
			return
		}
		streams.AddDynamicSink(t, name, func(r streams.Record[K, V]) string { return choose(r.Key, r.Value) },
			resolve(b, ks), resolve(b, vs), []string{s.node}, so...)
	})
}

// Process runs a custom processor (Processor API) on the stream.
// Opts: Named, Stores (the stores the processor opens, declared with
// KeyValueStore, WindowStore or SessionStore, or tables' stores), KeySerde
// and ValueSerde (of its output).
func Process[K, V, K2, V2 any](s KStream[K, V], supplier streams.ProcessorSupplier[K, V, K2, V2], opts ...Opt) KStream[K2, V2] {
	c := s.b.config("Process", opts, optName|optKeySerde|optValueSerde|optStores)
	name := s.b.name(c.name, "process")
	addProc(s.b, name, s.node, supplier, c.stores...)
	return derive(s, name, pick[K2](c.keySerde, nil), pick[V2](c.valSerde, nil), true)
}

// AddStore declares a state store from its full specification, for what
// KeyValueStore, WindowStore and SessionStore do not offer (an unlogged or
// uncached store, changelog configs). Connect it to a Process node by
// passing the handle it returns to Stores; a processor gets the store
// untyped from its context's Store.
func AddStore(b *Builder, spec streams.StoreSpec) StoreHandle {
	b.add(func(t *streams.Topology) { t.AddStore(spec) })
	return storeRef(spec.Name)
}

// storeRef is a store handle that knows only the store's name.
type storeRef string

func (r storeRef) StoreName() string { return string(r) }
