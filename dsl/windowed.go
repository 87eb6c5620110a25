package dsl

import (
	"time"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// WindowedKTable is the table a windowed aggregation produces: its rows are
// keyed by Windowed[K]. It is a type of its own (rather than a
// KTable[Windowed[K], V]) because Go forbids methods that instantiate their
// own type with a growing type argument; AsTable converts it when the
// general table operations are needed.
type WindowedKTable[K, V any] struct {
	b         *Builder
	node      string
	ks        serde.Serde[Windowed[K]]
	vs        serde.Serde[V]
	store     string
	topics    []string
	windowEnd func(Windowed[K]) int64
	grace     time.Duration
}

// StoreName returns the name of the window (or session) store holding the
// table, to query it by.
func (t WindowedKTable[K, V]) StoreName() string { return t.store }

// Suppress holds updates back as cfg says; with UntilWindowCloses each
// window's final value is emitted exactly once, when stream time passes the
// window's end plus grace. The buffer is a logged key-value store
// (StoreName, default "<node>-store"), restored after a crash or a task move
// like any other store, so pending final results survive a failover.
// Opts: Named, StoreName.
func (t WindowedKTable[K, V]) Suppress(cfg SuppressConfig, opts ...Opt) WindowedKTable[K, V] {
	name := t.b.name(config(opts).name, "suppress")
	addSuppress[Windowed[K], V](t.b, name, t.node, t.ks, t.vs, t.windowEnd, t.grace, cfg, opts)
	out := t
	out.node = name
	return out
}

// ToStream turns the table's updates into a stream of new values.
func (t WindowedKTable[K, V]) ToStream(opts ...Opt) WindowedKStream[K, V] {
	name := t.b.name(t.b.config("ToStream", opts, optName).name, "to-stream")
	addProc(t.b, name, t.node, stateless(func(ctx streams.ProcessorContext[Windowed[K], V], r streams.Record[Windowed[K], Change[V]]) error {
		if !r.Value.HasNew {
			return nil
		}
		return ctx.Forward(streams.WithValue(r, r.Value.New))
	}))
	return WindowedKStream[K, V]{b: t.b, node: name, ks: t.ks, vs: t.vs, topics: t.topics}
}

// AsTable returns the windowed table as a general KTable keyed by
// Windowed[K] (a package function: see WindowedKTable).
func AsTable[K, V any](t WindowedKTable[K, V]) KTable[Windowed[K], V] {
	return KTable[Windowed[K], V]{b: t.b, node: t.node, ks: t.ks, vs: t.vs, store: t.store, topics: t.topics}
}

// WindowedKStream is a record stream keyed by Windowed[K], from a windowed
// table. AsStream converts it to a general KStream.
type WindowedKStream[K, V any] struct {
	b      *Builder
	node   string
	ks     serde.Serde[Windowed[K]]
	vs     serde.Serde[V]
	topics []string
}

// AsStream returns s as a general KStream keyed by Windowed[K].
func AsStream[K, V any](s WindowedKStream[K, V]) KStream[Windowed[K], V] {
	return KStream[Windowed[K], V]{b: s.b, node: s.node, ks: s.ks, vs: s.vs, topics: s.topics}
}

// Filter keeps the records for which pred is true.
func (s WindowedKStream[K, V]) Filter(pred func(k Windowed[K], v V) bool, opts ...Opt) WindowedKStream[K, V] {
	name := s.b.name(s.b.config("Filter", opts, optName).name, "filter")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[Windowed[K], V], r streams.Record[Windowed[K], V]) error {
		if pred(r.Key, r.Value) {
			return ctx.Forward(r)
		}
		return nil
	}))
	s.node = name
	return s
}

// Peek calls f for each record and passes it on.
func (s WindowedKStream[K, V]) Peek(f func(k Windowed[K], v V), opts ...Opt) WindowedKStream[K, V] {
	name := s.b.name(s.b.config("Peek", opts, optName).name, "peek")
	addProc(s.b, name, s.node, stateless(func(ctx streams.ProcessorContext[Windowed[K], V], r streams.Record[Windowed[K], V]) error {
		f(r.Key, r.Value)
		return ctx.Forward(r)
	}))
	s.node = name
	return s
}

// To writes the stream to topic; keys are written with WindowedSerde (or
// SessionWindowedSerde) of the grouping's key serde unless KeySerde says
// otherwise.
func (s WindowedKStream[K, V]) To(topic string, opts ...Opt) {
	c := s.b.config("To", opts, takesSink)
	name := s.b.name(c.name, "sink")
	ks, vs := pick[Windowed[K]](c.keySerde, s.ks), pick[V](c.valSerde, s.vs)
	b := s.b
	b.add(func(t *streams.Topology) {
		so, ok := sinkOpts[Windowed[K], V](b, name, c)
		if !ok {
			return
		}
		streams.AddSink(t, name, topic, ks, resolve(b, vs), []string{s.node}, so...)
	})
}
