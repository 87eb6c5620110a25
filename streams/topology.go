package streams

import (
	"errors"
	"fmt"
	"github.com/weir-dev/weir/internal/slab"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// NodeKind tells sources, processors and sinks apart.
type NodeKind int

const (
	// SourceNode reads records from one or more topics.
	SourceNode NodeKind = iota
	// ProcessorNode runs a Processor.
	ProcessorNode
	// SinkNode writes records to a topic.
	SinkNode
)

func (k NodeKind) String() string {
	switch k {
	case SourceNode:
		return "Source"
	case SinkNode:
		return "Sink"
	default:
		return "Processor"
	}
}

// StoreSpec declares a state store of a topology. The engine that runs a
// task opens the store from it (Pebble-backed in the runtime by default, in
// memory in the test driver). The embedded state.Spec carries the name, kind
// and storage options.
type StoreSpec struct {
	state.Spec
	// SourceTopic, when set, is the input topic that already serves as the
	// store's changelog (a table read from a topic), so the engine creates
	// no changelog topic and restores from the source topic instead.
	SourceTopic string
	// Global marks a store filled by a global sub-topology: every instance
	// holds all of its data and every task reads the same instance.
	Global bool
}

// InternalTopicKind tells repartition and changelog topics apart.
type InternalTopicKind int

const (
	// RepartitionTopic carries records from one sub-topology to another
	// after a key change.
	RepartitionTopic InternalTopicKind = iota
	// ChangelogTopic backs a state store.
	ChangelogTopicKind
)

// InternalTopic is a topic the application creates and owns. Its real name
// is prefixed with the application id (see InternalTopicName).
type InternalTopic struct {
	// Name is the topic's name without the application prefix.
	Name string
	Kind InternalTopicKind
	// Partitions is the partition count; 0 means "as many as the input
	// topics of the sub-topology that writes it".
	Partitions int
}

// InternalTopicName returns the real name of an application's internal
// topic: "<applicationID>-<name>", or name alone with no application id.
func InternalTopicName(applicationID, name string) string {
	if applicationID == "" {
		return name
	}
	return applicationID + "-" + name
}

// Node describes one node of a topology.
type Node struct {
	Name     string
	Kind     NodeKind
	Parents  []string
	Children []string
	// Topics are a source's input topics or a sink's output topic (empty for
	// a sink choosing its topic per record).
	Topics []string
	// Internal is true for a source or sink on an internal topic.
	Internal bool
	// Stores are the stores a processor is connected to.
	Stores []string
	// Global is true for nodes of a global sub-topology.
	Global bool
	// KeyType, ValueType are the types the node emits (sinks: consumes).
	KeyType, ValueType reflect.Type

	keyIn, valIn reflect.Type
	serdeErr     []string
	newInstance  func() nodeInstance
	extract      TimestampExtractor
	subtopology  SubtopologyID
}

// Subtopology is a connected part of a topology: the nodes linked by
// parent-child edges or shared stores. Each runs as tasks, one per
// partition of its input topics.
type Subtopology struct {
	ID     SubtopologyID
	Nodes  []string
	Stores []string
	// SourceTopics are the topics its sources read (internal ones by their
	// unprefixed names).
	SourceTopics []string
	// SinkTopics are the fixed topics its sinks write.
	SinkTopics []string
	// Global is true for a sub-topology that fills global stores.
	Global bool
}

// Topology is a graph of source, processor and sink nodes with their state
// stores. Build it with AddSource, AddProcessor, AddSink and AddStore (or
// with the dsl package), then call Build, which validates it and groups it
// into sub-topologies. A built topology is immutable and may be run by many
// tasks at once.
type Topology struct {
	nodes         []*Node
	byName        map[string]*Node
	stores        []*StoreSpec
	storeByName   map[string]*StoreSpec
	storeUsers    map[string][]string
	internal      map[string]*InternalTopic
	copart        [][]string
	errs          []error
	built         bool
	subs          []*Subtopology
	bySourceTopic map[string]SubtopologyID
}

// NewTopology returns an empty topology.
func NewTopology() *Topology {
	return &Topology{
		byName:      map[string]*Node{},
		storeByName: map[string]*StoreSpec{},
		storeUsers:  map[string][]string{},
		internal:    map[string]*InternalTopic{},
	}
}

// TopologyError is one problem Build found, naming the node (or store or
// topic) and how to fix it.
type TopologyError struct {
	Node    string
	Problem string
	Fix     string
}

func (e *TopologyError) Error() string {
	s := fmt.Sprintf("streams: node %q: %s", e.Node, e.Problem)
	if e.Fix != "" {
		s += " (fix: " + e.Fix + ")"
	}
	return s
}

// ErrInvalidTopology is matched (errors.Is) by every error Build returns.
var ErrInvalidTopology = errors.New("streams: invalid topology")

// IsInvalidTopology reports whether err comes from topology validation.
func IsInvalidTopology(err error) bool { return errors.Is(err, ErrInvalidTopology) }

func (e *TopologyError) Is(target error) bool { return target == ErrInvalidTopology }

func (t *Topology) fail(node, problem, fix string) {
	t.errs = append(t.errs, &TopologyError{Node: node, Problem: problem, Fix: fix})
}

func (t *Topology) addNode(n *Node) bool {
	if t.built {
		t.fail(n.Name, "added after Build", "add every node before calling Build")
		return false
	}
	if n.Name == "" {
		t.fail(n.Name, "empty node name", "give every node a name")
		return false
	}
	if _, dup := t.byName[n.Name]; dup {
		t.fail(n.Name, "duplicate node name", "give each node a unique name")
		return false
	}
	t.nodes = append(t.nodes, n)
	t.byName[n.Name] = n
	return true
}

// SourceOption configures a source node.
type SourceOption func(*Node)

// WithTimestampExtractor sets the source's timestamp extractor. Default:
// the record's own timestamp.
func WithTimestampExtractor(f TimestampExtractor) SourceOption {
	return func(n *Node) { n.extract = f }
}

// Internal marks a source or sink as reading or writing an internal topic
// (a repartition topic declared with AddInternalTopic).
func Internal() SourceOption { return func(n *Node) { n.Internal = true } }

// AddSource adds a source node named name reading topics with the given
// serdes. A nil serde is reported by Build.
func AddSource[K, V any](t *Topology, name string, keySerde serde.Serde[K], valueSerde serde.Serde[V], topics []string, opts ...SourceOption) {
	n := &Node{Name: name, Kind: SourceNode, Topics: slices.Clone(topics),
		KeyType: reflect.TypeFor[K](), ValueType: reflect.TypeFor[V]()}
	if keySerde == nil {
		n.serdeErr = append(n.serdeErr, "key")
	}
	if valueSerde == nil {
		n.serdeErr = append(n.serdeErr, "value")
	}
	for _, o := range opts {
		o(n)
	}
	n.newInstance = func() nodeInstance {
		return newSourceInstance(name, keySerde, valueSerde)
	}
	if len(topics) == 0 {
		t.fail(name, "source reads no topic", "name at least one topic")
	}
	t.addNode(n)
}

// AddProcessor adds a processor node named name whose processors come from
// supplier, as a child of parents. Build checks that each parent emits the
// key and value types the processor consumes.
func AddProcessor[KIn, VIn, KOut, VOut any](t *Topology, name string, supplier ProcessorSupplier[KIn, VIn, KOut, VOut], parents ...string) {
	n := &Node{Name: name, Kind: ProcessorNode, Parents: slices.Clone(parents),
		keyIn: reflect.TypeFor[KIn](), valIn: reflect.TypeFor[VIn](),
		KeyType: reflect.TypeFor[KOut](), ValueType: reflect.TypeFor[VOut]()}
	if supplier == nil {
		t.fail(name, "nil processor supplier", "pass a function returning a new Processor")
		return
	}
	n.newInstance = func() nodeInstance {
		return &processorInstance[KIn, VIn, KOut, VOut]{name: name, proc: supplier()}
	}
	t.addNode(n)
}

// TopicChooser picks the output topic for a record (a sink with a per-record
// topic). It receives the record before serialization.
type TopicChooser[K, V any] func(r Record[K, V]) string

// SinkOption configures a sink node.
type SinkOption func(*sinkConfig)

type sinkConfig struct {
	internal    bool
	partitioner any // StreamPartitioner[K, V] of the sink's types
}

// ToInternal marks a sink as writing an internal (repartition) topic.
func ToInternal() SinkOption { return func(c *sinkConfig) { c.internal = true } }

// StreamPartitioner picks the partition, in [0, partitions), of a record a
// sink writes to topic, given the topic's partition count. It is called
// with the record before serialization; the test driver calls it at once,
// the runtime's producer once it knows the topic's partition count. A
// result out of range fails the record in the driver; the runtime wraps
// it into range (modulo).
type StreamPartitioner[K, V any] func(topic string, key K, value V, partitions int) int

// WithPartitioner makes the sink place its records with p instead of by the
// murmur2 hash of the serialized key (Kafka's default partitioner). K and V
// must be the sink's key and value types (Build reports a mismatch).
// Default: the key's hash.
func WithPartitioner[K, V any](p StreamPartitioner[K, V]) SinkOption {
	return func(c *sinkConfig) { c.partitioner = p }
}

// AddSink adds a sink named name writing records from parents to topic.
func AddSink[K, V any](t *Topology, name, topic string, keySerde serde.Serde[K], valueSerde serde.Serde[V], parents []string, opts ...SinkOption) {
	addSink(t, name, topic, nil, keySerde, valueSerde, parents, opts)
}

// AddDynamicSink adds a sink that chooses each record's topic with choose.
func AddDynamicSink[K, V any](t *Topology, name string, choose TopicChooser[K, V], keySerde serde.Serde[K], valueSerde serde.Serde[V], parents []string, opts ...SinkOption) {
	if choose == nil {
		t.fail(name, "nil topic chooser", "pass a function returning the topic")
		return
	}
	addSink(t, name, "", choose, keySerde, valueSerde, parents, opts)
}

func addSink[K, V any](t *Topology, name, topic string, choose TopicChooser[K, V], keySerde serde.Serde[K], valueSerde serde.Serde[V], parents []string, opts []SinkOption) {
	var cfg sinkConfig
	for _, o := range opts {
		o(&cfg)
	}
	n := &Node{Name: name, Kind: SinkNode, Parents: slices.Clone(parents), Internal: cfg.internal,
		keyIn: reflect.TypeFor[K](), valIn: reflect.TypeFor[V](),
		KeyType: reflect.TypeFor[K](), ValueType: reflect.TypeFor[V]()}
	if topic != "" {
		n.Topics = []string{topic}
	}
	if keySerde == nil {
		n.serdeErr = append(n.serdeErr, "key")
	}
	if valueSerde == nil {
		n.serdeErr = append(n.serdeErr, "value")
	}
	var part StreamPartitioner[K, V]
	if cfg.partitioner != nil {
		var ok bool
		if part, ok = cfg.partitioner.(StreamPartitioner[K, V]); !ok || part == nil {
			t.fail(name, fmt.Sprintf("partitioner %T does not take the sink's records (%v, %v)", cfg.partitioner, n.KeyType, n.ValueType),
				"pass a partitioner of the sink's key and value types, or none")
			return
		}
	}
	n.newInstance = func() nodeInstance {
		s := &sinkInstance[K, V]{name: name, topic: topic, choose: choose, kw: slab.NewWriter(keySerde), vw: slab.NewWriter(valueSerde),
			internal: cfg.internal, part: part}
		s.stable = s.kw.Appends() && s.vw.Appends()
		return s
	}
	t.addNode(n)
}

// AddStore declares a state store and connects it to processors.
func (t *Topology) AddStore(spec StoreSpec, processors ...string) {
	if spec.Name == "" {
		t.fail("", "store with empty name", "name every store")
		return
	}
	if _, dup := t.storeByName[spec.Name]; dup {
		t.fail(spec.Name, "duplicate store name", "give each store a unique name, or connect the existing store with ConnectStores")
		return
	}
	s := spec
	t.stores = append(t.stores, &s)
	t.storeByName[spec.Name] = &s
	for _, p := range processors {
		t.ConnectStores(p, spec.Name)
	}
}

// ConnectStores gives a processor access to stores declared with AddStore.
// Unknown names are reported by Build.
func (t *Topology) ConnectStores(processor string, stores ...string) {
	for _, s := range stores {
		t.storeUsers[s] = append(t.storeUsers[s], processor)
	}
}

// AddInternalTopic declares a topic the application owns (a repartition
// topic); sources and sinks on it are marked with Internal/ToInternal.
func (t *Topology) AddInternalTopic(it InternalTopic) {
	if _, dup := t.internal[it.Name]; dup {
		t.fail(it.Name, "duplicate internal topic", "give each repartition topic a unique name")
		return
	}
	c := it
	t.internal[it.Name] = &c
}

// RequireCopartitioned records that topics must have the same partition
// count (the inputs of a join). The engines check it before running.
func (t *Topology) RequireCopartitioned(topics ...string) {
	t.copart = append(t.copart, slices.Clone(topics))
}

// Build validates the topology and groups it into sub-topologies. It
// reports every problem at once, each naming the node and the fix; the
// errors match ErrInvalidTopology. Build is idempotent.
func (t *Topology) Build() error {
	if t.built {
		return errors.Join(t.errs...)
	}
	t.validate()
	if len(t.errs) > 0 {
		return errors.Join(t.errs...)
	}
	t.group()
	t.validateGroups()
	if len(t.errs) > 0 {
		return errors.Join(t.errs...)
	}
	t.built = true
	return nil
}

func typeName(tp reflect.Type) string {
	if tp == nil {
		return "<nil>"
	}
	return tp.String()
}

func (t *Topology) validate() {
	for _, n := range t.nodes {
		n.Children = nil
	}
	for _, n := range t.nodes {
		for _, what := range n.serdeErr {
			t.fail(n.Name, fmt.Sprintf("%s %s has no %s serde", strings.ToLower(n.Kind.String()), n.Name, what),
				fmt.Sprintf("pass a %s serde for type %s, or set a default serde on the builder", what, typeName(map[string]reflect.Type{"key": n.KeyType, "value": n.ValueType}[what])))
		}
		if n.Kind != SourceNode && len(n.Parents) == 0 {
			t.fail(n.Name, "has no parent", "connect it to a source or processor")
		}
		for _, p := range n.Parents {
			pn, ok := t.byName[p]
			if !ok {
				t.fail(n.Name, fmt.Sprintf("unknown parent %q", p), "add the parent node before its children")
				continue
			}
			if pn.Kind == SinkNode {
				t.fail(n.Name, fmt.Sprintf("parent %q is a sink", p), "sinks have no children; read the topic with a new source")
				continue
			}
			if pn.KeyType != n.keyIn || pn.ValueType != n.valIn {
				t.fail(n.Name, fmt.Sprintf("consumes (%s, %s) but parent %q emits (%s, %s)",
					typeName(n.keyIn), typeName(n.valIn), p, typeName(pn.KeyType), typeName(pn.ValueType)),
					"insert a mapping step or change the processor's type parameters")
				continue
			}
			pn.Children = append(pn.Children, n.Name)
		}
		if (n.Kind == SourceNode || n.Kind == SinkNode) && n.Internal {
			for _, tp := range n.Topics {
				if _, ok := t.internal[tp]; !ok {
					t.fail(n.Name, fmt.Sprintf("internal topic %q is not declared", tp), "declare it with AddInternalTopic")
				}
			}
		}
	}
	names := make([]string, 0, len(t.storeUsers))
	for s := range t.storeUsers {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		if _, ok := t.storeByName[s]; !ok {
			for _, p := range t.storeUsers[s] {
				t.fail(p, fmt.Sprintf("connected to unknown store %q", s), "declare the store with AddStore (or fix the name)")
			}
			continue
		}
		for _, p := range t.storeUsers[s] {
			pn, ok := t.byName[p]
			if !ok {
				t.fail(p, fmt.Sprintf("store %q connected to unknown processor", s), "add the processor before connecting stores")
				continue
			}
			if pn.Kind != ProcessorNode {
				t.fail(p, fmt.Sprintf("store %q connected to a %s", s, strings.ToLower(pn.Kind.String())), "connect stores to processors only")
				continue
			}
			if !slices.Contains(pn.Stores, s) {
				pn.Stores = append(pn.Stores, s)
			}
		}
	}
	for _, grp := range t.copart {
		for _, tp := range grp {
			if !t.readsTopic(tp) {
				t.fail(tp, "co-partitioning requirement names a topic no source reads", "name the joined topics")
			}
		}
	}
}

func (t *Topology) readsTopic(topic string) bool {
	for _, n := range t.nodes {
		if n.Kind == SourceNode && slices.Contains(n.Topics, topic) {
			return true
		}
	}
	return false
}

// group computes sub-topologies with a union-find over edges and stores.
func (t *Topology) group() {
	idx := map[string]int{}
	for i, n := range t.nodes {
		idx[n.Name] = i
	}
	parent := make([]int, len(t.nodes))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra < rb {
			parent[rb] = ra
		} else if rb < ra {
			parent[ra] = rb
		}
	}
	for i, n := range t.nodes {
		for _, p := range n.Parents {
			union(i, idx[p])
		}
	}
	for _, s := range t.stores {
		users := t.storeUsers[s.Name]
		if s.Global {
			// A global store is written by its global sub-topology and read by
			// any task: readers do not join the writer's sub-topology.
			continue
		}
		for i := 1; i < len(users); i++ {
			union(idx[users[0]], idx[users[i]])
		}
	}
	byRoot := map[int]*Subtopology{}
	t.subs = nil
	for i, n := range t.nodes {
		r := find(i)
		st, ok := byRoot[r]
		if !ok {
			st = &Subtopology{ID: SubtopologyID(len(t.subs))}
			byRoot[r] = st
			t.subs = append(t.subs, st)
		}
		n.subtopology = st.ID
		st.Nodes = append(st.Nodes, n.Name)
		switch n.Kind {
		case SourceNode:
			st.SourceTopics = append(st.SourceTopics, n.Topics...)
		case SinkNode:
			st.SinkTopics = append(st.SinkTopics, n.Topics...)
		}
		for _, s := range n.Stores {
			if spec := t.storeByName[s]; spec != nil && spec.Global {
				if slices.Contains(t.globalWriters(s), n.Name) {
					st.Global = true
				} else {
					continue
				}
			}
			if !slices.Contains(st.Stores, s) {
				st.Stores = append(st.Stores, s)
			}
		}
	}
	t.bySourceTopic = map[string]SubtopologyID{}
	for _, st := range t.subs {
		for _, n := range st.Nodes {
			t.byName[n].Global = st.Global
		}
		for _, tp := range st.SourceTopics {
			t.bySourceTopic[tp] = st.ID
		}
	}
}

// globalWriters are the processors of a global store's own sub-topology:
// the first processor connected to it (the one AddGlobalStore declared).
func (t *Topology) globalWriters(store string) []string {
	users := t.storeUsers[store]
	if len(users) == 0 {
		return nil
	}
	return users[:1]
}

func (t *Topology) validateGroups() {
	seen := map[string]SubtopologyID{}
	for _, st := range t.subs {
		for _, tp := range st.SourceTopics {
			if prev, dup := seen[tp]; dup && prev != st.ID {
				t.fail(tp, fmt.Sprintf("topic read by sub-topologies %d and %d", prev, st.ID),
					"read each topic with one source, and fan out from it")
			}
			seen[tp] = st.ID
		}
		for _, tp := range st.SinkTopics {
			if slices.Contains(st.SourceTopics, tp) {
				sink := ""
				for _, n := range st.Nodes {
					if nd := t.byName[n]; nd.Kind == SinkNode && slices.Contains(nd.Topics, tp) {
						sink = n
					}
				}
				t.fail(sink, fmt.Sprintf("sub-topology %d both reads and writes topic %q", st.ID, tp),
					"write to a different topic, or go through a repartition topic (Repartition) so the records are read by a new sub-topology")
			}
		}
	}
}

// Nodes returns the topology's nodes in the order they were added.
func (t *Topology) Nodes() []Node {
	out := make([]Node, len(t.nodes))
	for i, n := range t.nodes {
		out[i] = *n
	}
	return out
}

// Subtopologies returns the sub-topologies of a built topology.
func (t *Topology) Subtopologies() []Subtopology {
	out := make([]Subtopology, len(t.subs))
	for i, s := range t.subs {
		out[i] = *s
	}
	return out
}

// Stores returns the topology's store declarations.
func (t *Topology) Stores() []StoreSpec {
	out := make([]StoreSpec, len(t.stores))
	for i, s := range t.stores {
		out[i] = *s
	}
	return out
}

// Store returns the declaration of the store named name.
func (t *Topology) Store(name string) (StoreSpec, bool) {
	s, ok := t.storeByName[name]
	if !ok {
		return StoreSpec{}, false
	}
	return *s, true
}

// InternalTopics returns the topology's internal topics, by name.
func (t *Topology) InternalTopics() []InternalTopic {
	out := make([]InternalTopic, 0, len(t.internal))
	for _, it := range t.internal {
		out = append(out, *it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// IsInternalTopic reports whether name (unprefixed) is an internal topic.
func (t *Topology) IsInternalTopic(name string) bool {
	_, ok := t.internal[name]
	return ok
}

// CopartitionGroups returns the groups of topics that must have equal
// partition counts.
func (t *Topology) CopartitionGroups() [][]string {
	out := make([][]string, len(t.copart))
	for i, g := range t.copart {
		out[i] = slices.Clone(g)
	}
	return out
}

// SubtopologyOf returns the sub-topology reading topic (unprefixed for
// internal topics).
func (t *Topology) SubtopologyOf(topic string) (SubtopologyID, bool) {
	id, ok := t.bySourceTopic[topic]
	return id, ok
}

// ErrCopartitioning is matched by errors from CheckCopartitioning.
var ErrCopartitioning = errors.New("streams: topics not co-partitioned")

// CheckCopartitioning checks the recorded co-partitioning requirements
// against the partition counts partitions reports (by unprefixed name for
// internal topics). Repartition topics with no fixed count adapt and are
// not checked.
func (t *Topology) CheckCopartitioning(partitions func(topic string) int) error {
	var errs []error
	for _, grp := range t.copart {
		want, first := 0, ""
		for _, tp := range grp {
			if it, ok := t.internal[tp]; ok && it.Partitions == 0 {
				continue
			}
			n := partitions(tp)
			if want == 0 {
				want, first = n, tp
				continue
			}
			if n != want {
				errs = append(errs, fmt.Errorf("%w: %q has %d partitions but %q has %d; joined topics need equal partition counts (fix: create them alike, or Repartition one side)",
					ErrCopartitioning, first, want, tp, n))
			}
		}
	}
	return errors.Join(errs...)
}

// InternalTopicPartitions resolves the partition count of every internal
// topic: its fixed count, or the largest partition count among the input
// topics of the sub-topology writing it (resolved transitively).
// partitions gives the counts of the external topics.
func (t *Topology) InternalTopicPartitions(partitions func(topic string) int) map[string]int {
	out := map[string]int{}
	for name, it := range t.internal {
		if it.Partitions > 0 {
			out[name] = it.Partitions
		}
	}
	for range len(t.internal) + 1 {
		for name := range t.internal {
			if _, ok := out[name]; ok {
				continue
			}
			max, ok := 0, true
			for _, st := range t.subs {
				if !slices.Contains(st.SinkTopics, name) {
					continue
				}
				for _, src := range st.SourceTopics {
					var n int
					if _, internal := t.internal[src]; internal {
						var known bool
						n, known = out[src]
						if !known {
							ok = false
						}
					} else {
						n = partitions(src)
					}
					if n > max {
						max = n
					}
				}
			}
			if ok && max > 0 {
				out[name] = max
			}
		}
	}
	for name := range t.internal {
		if _, ok := out[name]; !ok {
			out[name] = 1
		}
	}
	return out
}
