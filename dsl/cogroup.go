package dsl

import (
	"fmt"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// CogroupedKStream aggregates several grouped streams with the same key
// into one table: each input has its own adder, all update one aggregate per
// key in one store. The inputs must be co-partitioned (they are recorded as
// a co-partition group).
type CogroupedKStream[K, VA any] struct {
	b      *Builder
	ks     serde.Serde[K]
	inputs []func(t *streams.Topology, name string, idx int, store string, ks serde.Serde[K], as serde.Serde[VA], init func() VA) string
	topics []string
}

// Cogroup starts a cogrouped aggregation with g and its adder.
func Cogroup[K, V, VA any](g KGroupedStream[K, V], add func(k K, v V, agg VA) VA) CogroupedKStream[K, VA] {
	c := CogroupedKStream[K, VA]{b: g.s.b, ks: g.s.ks}
	return CogroupWith(c, g, add)
}

// CogroupWith adds another grouped stream, with its adder, to c.
func CogroupWith[K, V, VA any](c CogroupedKStream[K, VA], g KGroupedStream[K, V], add func(k K, v V, agg VA) VA) CogroupedKStream[K, VA] {
	parent := g.s.node
	c.inputs = append(c.inputs, func(t *streams.Topology, name string, idx int, store string, ks serde.Serde[K], as serde.Serde[VA], init func() VA) string {
		node := fmt.Sprintf("%s-input-%d", name, idx)
		streams.AddProcessor(t, node, func() streams.Processor[K, V, K, Change[VA]] {
			return &kvAggregate[K, V, VA]{kvChanges: kvChanges[K, VA]{store: store, ks: ks, vs: as}, init: init,
				add: func(k K, v V, agg VA, _ bool) VA { return add(k, v, agg) }}
		}, parent)
		t.ConnectStores(node, store)
		return node
	})
	c.topics = append(append([]string(nil), c.topics...), g.s.topics...)
	if c.ks == nil {
		c.ks = g.s.ks
	}
	return c
}

// Aggregate builds the cogrouped table, starting each key from init().
// Opts: Named, StoreName, InMemory, ValueSerde (of the aggregate).
func (c CogroupedKStream[K, VA]) Aggregate(init func() VA, opts ...Opt) KTable[K, VA] {
	o := c.b.config("Aggregate", opts, takesStore)
	b := c.b
	name := b.name(o.name, "cogroup")
	store := storeNameFor(o, name)
	merge := name + "-merge"
	as := pick[VA](o.valSerde, nil)
	inputs, topics := c.inputs, c.topics
	b.add(func(t *streams.Topology) {
		ks, as := resolve(b, c.ks), resolve(b, as)
		if ks == nil || as == nil {
			b.missing(t, name, ks == nil, as == nil)
		}
		t.AddStore(kvSpec(store, o))
		parents := make([]string, len(inputs))
		for i, in := range inputs {
			parents[i] = in(t, name, i, store, ks, as, init)
		}
		streams.AddProcessor(t, merge, stateless(func(ctx streams.ProcessorContext[K, Change[VA]], r streams.Record[K, Change[VA]]) error {
			return ctx.Forward(r)
		}), parents...)
		if len(topics) > 1 {
			t.RequireCopartitioned(topics...)
		}
	})
	return KTable[K, VA]{b: b, node: merge, ks: c.ks, vs: as, store: store, topics: topics}
}
