package dsl

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// Builder collects a DSL program and compiles it into a streams.Topology
// with Build. Operations record nodes as they are called; serdes left nil
// are resolved at Build from the builder's defaults (DefaultSerde), so
// defaults may be registered at any point before Build.
type Builder struct {
	ops      []func(t *streams.Topology)
	seq      int
	defaults map[reflect.Type]any
	names    map[string]bool
	errs     []error
}

// NewBuilder returns an empty builder. It knows default serdes for string,
// []byte, int64 and float64; register more with DefaultSerde.
func NewBuilder() *Builder {
	b := &Builder{defaults: map[reflect.Type]any{}, names: map[string]bool{}}
	DefaultSerde(b, serde.String())
	DefaultSerde(b, serde.Bytes())
	DefaultSerde(b, serde.Int64())
	DefaultSerde(b, serde.Float64())
	return b
}

// DefaultSerde makes s the serde of every key or value of type T whose
// serde the program leaves nil.
func DefaultSerde[T any](b *Builder, s serde.Serde[T]) {
	b.defaults[reflect.TypeFor[T]()] = s
}

// resolve returns s, or the builder's default for T, or nil (Build then
// reports the missing serde on the node that needs it).
func resolve[T any](b *Builder, s serde.Serde[T]) serde.Serde[T] {
	if s != nil {
		return s
	}
	if d, ok := b.defaults[reflect.TypeFor[T]()]; ok {
		return d.(serde.Serde[T])
	}
	return nil
}

// name returns the given name, or a generated one "<kind>-<seq>".
func (b *Builder) name(given, kind string) string {
	b.seq++
	n := given
	if n == "" {
		n = fmt.Sprintf("%s-%04d", kind, b.seq)
	}
	b.names[n] = true
	return n
}

func (b *Builder) add(op func(t *streams.Topology)) { b.ops = append(b.ops, op) }

// Build compiles the program into a validated topology. Every problem is
// reported at once (see streams.Topology.Build).
func (b *Builder) Build() (*streams.Topology, error) {
	t := streams.NewTopology()
	b.errs = nil
	for _, op := range b.ops {
		op(t)
	}
	err := t.Build()
	if len(b.errs) > 0 {
		return nil, errors.Join(append(b.errs, err)...)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (b *Builder) fail(node, problem, fix string) {
	b.errs = append(b.errs, &streams.TopologyError{Node: node, Problem: problem, Fix: fix})
}

// missing reports a stateful node whose key or value serde is unknown.
func (b *Builder) missing(_ *streams.Topology, node string, key, value bool) {
	if key {
		b.fail(node, "no key serde for its store", "pass dsl.KeySerde(...) to the operation, or register dsl.DefaultSerde for the key type")
	}
	if value {
		b.fail(node, "no value serde for its store", "pass dsl.ValueSerde(...) to the operation, or register dsl.DefaultSerde for the value type")
	}
}

// Opt configures one DSL operation: its node name, serdes or store. Each
// operation's documentation lists the options it takes; Build reports an
// option given to an operation that does not use it (dsl.InMemory on a
// Filter, say), naming the operation and the options it takes.
type Opt interface{ apply(*opConfig) }

type opConfig struct {
	name       string
	storeName  string
	keySerde   any
	valSerde   any
	inMemory   bool
	partitions int
	extract    streams.TimestampExtractor
	partition  any // func(topic string, k K, v V, partitions int) int
	stores     []string
	// given are the kinds of the options applied.
	given optKind
}

// optKind is a set of option kinds.
type optKind uint16

const (
	optName optKind = 1 << iota
	optStoreName
	optInMemory
	optPartitions
	optExtractor
	optPartitioner
	optKeySerde
	optValueSerde
	optStores
)

// Option sets of the operations' kinds.
const (
	// stateful operations with a key-value, window or session store.
	takesStore = optName | optStoreName | optInMemory | optValueSerde
	// operations that write a repartition topic.
	takesRepartition = optName | optKeySerde | optValueSerde | optPartitions
	// sinks.
	takesSink = optName | optKeySerde | optValueSerde | optPartitioner
)

var optNames = [...]string{"Named", "StoreName", "InMemory", "WithPartitions", "TimestampExtractor", "Partitioner", "KeySerde", "ValueSerde", "Stores"}

func (k optKind) String() string {
	var names []string
	for i, n := range optNames {
		if k&(1<<i) != 0 {
			names = append(names, "dsl."+n)
		}
	}
	return strings.Join(names, ", ")
}

type option struct {
	kind optKind
	set  func(*opConfig)
}

func (o option) apply(c *opConfig) {
	o.set(c)
	c.given |= o.kind
}

func config(opts []Opt) opConfig {
	var c opConfig
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// config applies the options of operation op (the name its documentation
// uses) and reports at Build those it does not take.
func (b *Builder) config(op string, opts []Opt, takes optKind) opConfig {
	c := config(opts)
	if extra := c.given &^ takes; extra != 0 {
		node := c.name
		if node == "" {
			node = op
		}
		b.add(func(*streams.Topology) {
			b.fail(node, fmt.Sprintf("%s has no effect on %s", extra, op), fmt.Sprintf("remove it; %s takes %s", op, takes))
		})
	}
	return c
}

// Named names the operation's node (and derived topics and stores).
// Default: "<operation>-<sequence number>". Every operation takes it.
func Named(name string) Opt { return option{optName, func(c *opConfig) { c.name = name }} }

// StoreName names the store of a stateful operation, which makes it
// queryable by that name. Default: "<node name>-store".
func StoreName(name string) Opt {
	return option{optStoreName, func(c *opConfig) { c.storeName = name }}
}

// InMemory asks a stateful operation for an in-memory store instead of
// the default Pebble one.
func InMemory() Opt { return option{optInMemory, func(c *opConfig) { c.inMemory = true }} }

// WithPartitions fixes the partition count of the repartition topic of
// GroupByKey, GroupBy, GroupTable and Repartition. Default 0: as many
// partitions as the upstream input topics.
func WithPartitions(n int) Opt {
	return option{optPartitions, func(c *opConfig) { c.partitions = n }}
}

// TimestampExtractor sets how a source (Stream, Table, GlobalTable) reads
// each record's event time. Default: the record's own timestamp.
func TimestampExtractor(f streams.TimestampExtractor) Opt {
	return option{optExtractor, func(c *opConfig) { c.extract = f }}
}

// Partitioner makes a sink (To, ToFunc) place each record in the partition
// p returns for it, given the topic and its partition count; p must return
// a partition in [0, partitions). K and V are the sink's key and value
// types (Build reports a mismatch). Default: the murmur2 hash of the
// serialized key, as Kafka's default partitioner.
func Partitioner[K, V any](p func(topic string, k K, v V, partitions int) int) Opt {
	return option{optPartitioner, func(c *opConfig) { c.partition = p }}
}

// sinkOpts turns the operation's options into sink options; ok is false
// (and the problem recorded) if the partitioner does not fit K and V.
func sinkOpts[K, V any](b *Builder, node string, c opConfig) (opts []streams.SinkOption, ok bool) {
	if c.partition == nil {
		return nil, true
	}
	p, fits := c.partition.(func(string, K, V, int) int)
	if !fits {
		b.fail(node, fmt.Sprintf("partitioner %T does not take the stream's records", c.partition),
			fmt.Sprintf("pass dsl.Partitioner of func(string, %v, %v, int) int", reflect.TypeFor[K](), reflect.TypeFor[V]()))
		return nil, false
	}
	return []streams.SinkOption{streams.WithPartitioner(streams.StreamPartitioner[K, V](p))}, true
}

// sourceOpts turns the operation's options into source options.
func (c opConfig) sourceOpts() []streams.SourceOption {
	if c.extract == nil {
		return nil
	}
	return []streams.SourceOption{streams.WithTimestampExtractor(c.extract)}
}

// KeySerde sets the key serde an operation writes or stores with.
func KeySerde[K any](s serde.Serde[K]) Opt {
	return option{optKeySerde, func(c *opConfig) { c.keySerde = s }}
}

// ValueSerde sets the value serde an operation writes or stores with.
func ValueSerde[V any](s serde.Serde[V]) Opt {
	return option{optValueSerde, func(c *opConfig) { c.valSerde = s }}
}

// pick returns the option's serde if it has type serde.Serde[T], else def.
func pick[T any](opt any, def serde.Serde[T]) serde.Serde[T] {
	if s, ok := opt.(serde.Serde[T]); ok && s != nil {
		return s
	}
	return def
}
