package dsl

import (
	"encoding/binary"
	"errors"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// KGroupedTable is a table re-grouped by a new key, ready to aggregate with
// an adder and a subtractor: an update of a source row subtracts its old
// value from the old group and adds its new value to the new group.
type KGroupedTable[K, V any] struct {
	b      *Builder
	node   string
	ks     serde.Serde[K]
	vs     serde.Serde[V]
	topics []string
}

// GroupTable re-groups t by sel(key, value), through a repartition topic.
// Opts: Named, KeySerde, ValueSerde (of the new key and value),
// WithPartitions.
func GroupTable[K, V, K2, V2 any](t KTable[K, V], sel func(k K, v V) (K2, V2), opts ...Opt) KGroupedTable[K2, V2] {
	c := t.b.config("GroupTable", opts, takesRepartition)
	b := t.b
	name := b.name(c.name, "group-table")
	selNode := name + "-select"
	ks, vs := pick[K2](c.keySerde, nil), pick[V2](c.valSerde, nil)
	addProc(b, selNode, t.node, stateless(func(ctx streams.ProcessorContext[K2, Change[V2]], r streams.Record[K, Change[V]]) error {
		// Subtract from the old group first, then add to the new one.
		if r.Value.HasOld {
			k2, v2 := sel(r.Key, r.Value.Old)
			if err := ctx.Forward(streams.Record[K2, Change[V2]]{Key: k2, Value: Change[V2]{Old: v2, HasOld: true}, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
				return err
			}
		}
		if r.Value.HasNew {
			k2, v2 := sel(r.Key, r.Value.New)
			return ctx.Forward(streams.Record[K2, Change[V2]]{Key: k2, Value: Change[V2]{New: v2, HasNew: true}, Timestamp: r.Timestamp, Headers: r.Headers})
		}
		return nil
	}))
	topic := name + "-repartition"
	sink, src := name+"-sink", name+"-source"
	b.add(func(tp *streams.Topology) {
		ks, vs := resolve(b, ks), resolve(b, vs)
		var cs serde.Serde[Change[V2]]
		if vs != nil {
			cs = changeSerde[V2]{inner: vs}
		}
		tp.AddInternalTopic(streams.InternalTopic{Name: topic, Kind: streams.RepartitionTopic, Partitions: c.partitions})
		streams.AddSink(tp, sink, topic, ks, cs, []string{selNode}, streams.ToInternal())
		streams.AddSource(tp, src, ks, cs, []string{topic}, streams.Internal())
	})
	return KGroupedTable[K2, V2]{b: b, node: src, ks: ks, vs: vs, topics: []string{topic}}
}

// changeSerde carries a Change through a repartition topic: a flags byte
// (1: has new, 2: has old), then the new and old values, each as a uvarint
// length and the inner serde's bytes.
type changeSerde[V any] struct{ inner serde.Serde[V] }

func (s changeSerde[V]) Serialize(topic string, c Change[V]) ([]byte, error) {
	var flags byte
	var nb, ob []byte
	var err error
	if c.HasNew {
		flags |= 1
		if nb, err = s.inner.Serialize(topic, c.New); err != nil {
			return nil, err
		}
	}
	if c.HasOld {
		flags |= 2
		if ob, err = s.inner.Serialize(topic, c.Old); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, 1+len(nb)+len(ob)+2*binary.MaxVarintLen32)
	out = append(out, flags)
	if c.HasNew {
		out = appendValue(out, nb)
	}
	if c.HasOld {
		out = appendValue(out, ob)
	}
	return out, nil
}

var errBadChange = errors.New("dsl: corrupt change record")

func (s changeSerde[V]) Deserialize(topic string, b []byte) (Change[V], error) {
	var c Change[V]
	if len(b) < 1 || b[0] > 3 {
		return c, &serde.DecodeError{Serde: "change", Topic: topic, Len: len(b), Err: errBadChange}
	}
	flags, rest := b[0], b[1:]
	var vals [][]byte
	if err := eachValue(rest, func(v []byte) error { vals = append(vals, v); return nil }); err != nil {
		return c, &serde.DecodeError{Serde: "change", Topic: topic, Len: len(b), Err: err}
	}
	want := int(flags&1) + int(flags>>1)
	if len(vals) != want {
		return c, &serde.DecodeError{Serde: "change", Topic: topic, Len: len(b), Err: errBadChange}
	}
	var err error
	if flags&1 != 0 {
		if c.New, err = s.inner.Deserialize(topic, vals[0]); err != nil {
			return c, err
		}
		c.HasNew = true
		vals = vals[1:]
	}
	if flags&2 != 0 {
		if c.Old, err = s.inner.Deserialize(topic, vals[0]); err != nil {
			return c, err
		}
		c.HasOld = true
	}
	return c, nil
}

// Count counts the source rows per group.
func (g KGroupedTable[K, V]) Count(opts ...Opt) KTable[K, int64] {
	opts = append([]Opt{ValueSerde(serde.Int64())}, opts...)
	return AggregateTable(g, func() int64 { return 0 },
		func(_ K, _ V, n int64) int64 { return n + 1 },
		func(_ K, _ V, n int64) int64 { return n - 1 }, opts...)
}

// Reduce combines the rows per group with add, and takes an updated or
// deleted row's old value out with sub.
func (g KGroupedTable[K, V]) Reduce(add, sub func(agg, v V) V, opts ...Opt) KTable[K, V] {
	c := config(opts)
	if c.valSerde == nil && g.vs != nil {
		opts = append([]Opt{ValueSerde(g.vs)}, opts...)
	}
	return aggregateTable(g, nil, func(_ K, ch Change[V], agg V, has bool) V {
		if ch.HasOld && has {
			agg = sub(agg, ch.Old)
		}
		if ch.HasNew {
			if !has && !ch.HasOld {
				return ch.New // the group's first value is taken as is
			}
			agg = add(agg, ch.New)
		}
		return agg
	}, opts)
}

// AggregateTable folds a re-grouped table: each new row value is added with
// add, each replaced or deleted one taken out with sub.
func AggregateTable[K, V, VA any](g KGroupedTable[K, V], init func() VA, add func(k K, v V, agg VA) VA, sub func(k K, v V, agg VA) VA, opts ...Opt) KTable[K, VA] {
	return aggregateTable(g, init, func(k K, ch Change[V], agg VA, _ bool) VA {
		if ch.HasOld {
			agg = sub(k, ch.Old, agg)
		}
		if ch.HasNew {
			agg = add(k, ch.New, agg)
		}
		return agg
	}, opts)
}

func aggregateTable[K, V, VA any](g KGroupedTable[K, V], init func() VA, f func(K, Change[V], VA, bool) VA, opts []Opt) KTable[K, VA] {
	c := g.b.config("table aggregate", opts, takesStore)
	b := g.b
	name := b.name(c.name, "table-aggregate")
	store := storeNameFor(c, name)
	as := pick[VA](c.valSerde, nil)
	parent := g.node
	b.add(func(t *streams.Topology) {
		ks, as := resolve(b, g.ks), resolve(b, as)
		if ks == nil || as == nil {
			b.missing(t, name, ks == nil, as == nil)
		}
		streams.AddProcessor(t, name, func() streams.Processor[K, Change[V], K, Change[VA]] {
			return &kvAggregate[K, Change[V], VA]{kvChanges: kvChanges[K, VA]{store: store, ks: ks, vs: as}, init: init, add: f}
		}, parent)
		t.AddStore(kvSpec(store, c), name)
	})
	return KTable[K, VA]{b: b, node: name, ks: g.ks, vs: as, store: store, topics: g.topics}
}
