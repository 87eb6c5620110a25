package streams

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weir-dev/weir/internal/slab"
	"github.com/weir-dev/weir/internal/taskgraph/link"
	"github.com/weir-dev/weir/serde"
)

// The task graph is how a task engine (internal/exec, used by the runtime
// and the test driver) runs a sub-topology. It is not part of this
// package's API: internal/taskgraph gives the engine these types (the
// interface types below are aliases of type literals that it repeats, so
// that the two packages need not import each other) and its constructor,
// which this package registers in package link.

// taskContext is what a task engine gives the nodes of a task graph
// (internal/taskgraph.TaskContext).
type taskContext = interface {
	TaskID() TaskID
	ApplicationID() string
	// Store returns the task's instance of the named store.
	Store(name string) (any, error)
	// Schedule registers a punctuator for node.
	Schedule(node string, interval time.Duration, typ PunctuationType, fn Punctuator) (Cancellable, error)
	RequestCommit()
	RecordMetadata() (RecordMetadata, bool)
	StreamTime() time.Time
	// RecordDropped counts a record dropped on purpose by node.
	RecordDropped(node string, reason DropReason)
	// Emit hands a serialized record to the task's output. Internal records
	// go to internal topics (r.Topic is the unprefixed name). The engine
	// may change r's fields and does not keep r.
	Emit(r *RawRecord, internal bool) error
}

// taskGraphAPI is what the engine sees of a *taskGraph
// (internal/taskgraph.Graph).
type taskGraphAPI = interface {
	Source(topic string) (graphSourceAPI, bool)
	SourceTopics() []string
	Init(tc taskContext) error
	Close() error
}

// graphSourceAPI is what the engine sees of a *graphSource
// (internal/taskgraph.Source).
type graphSourceAPI = interface {
	Timestamp(r *RawRecord) time.Time
	Process(r *RawRecord) error
}

func init() {
	link.NewTaskGraph = func(t *Topology, id SubtopologyID) (taskGraphAPI, error) {
		g, err := t.newTaskGraph(id)
		if err != nil {
			return nil, err
		}
		return g, nil
	}
}

// NodeError wraps an error returned by a node's processor with the node's
// name.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %q: %v", e.Node, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

func wrapNode(name string, err error) error {
	var ne *NodeError
	if errors.As(err, &ne) {
		return err
	}
	return &NodeError{Node: name, Err: err}
}

// SerdeError reports a record that a source could not deserialize or a sink
// could not serialize.
type SerdeError struct {
	Node  string
	Topic string
	// What is "key" or "value".
	What string
	Err  error
}

func (e *SerdeError) Error() string {
	return fmt.Sprintf("node %q: %s of topic %q: %v", e.Node, e.What, e.Topic, e.Err)
}
func (e *SerdeError) Unwrap() error { return e.Err }

type nodeInstance interface {
	// input returns func(Record[KIn, VIn]) error (nil for sources).
	input() any
	connect(children []nodeInstance, names []string) error
	init(tc taskContext) error
	close() error
}

// taskGraph is one task's instance of a sub-topology: its nodes, wired
// together with their types. Task engines create one per task and feed
// input records to its sources.
type taskGraph struct {
	nodes   []nodeInstance
	names   []string
	sources map[string]*graphSource
	inited  int
}

// graphSource is a task graph's entry point for one input topic.
type graphSource struct {
	extract TimestampExtractor
	inst    rawProcessor
}

type rawProcessor interface {
	processRaw(r *RawRecord) error
}

// Timestamp returns the event time of r by the source's extractor.
func (s *graphSource) Timestamp(r *RawRecord) time.Time {
	if s.extract != nil {
		return s.extract(r)
	}
	return r.Timestamp
}

// Process deserializes r and passes it through the graph. r.Timestamp must
// already hold the extracted event time.
func (s *graphSource) Process(r *RawRecord) error { return s.inst.processRaw(r) }

// newTaskGraph instantiates sub-topology id of a built topology for one
// task, with processors from their suppliers. Call Init before feeding it.
func (t *Topology) newTaskGraph(id SubtopologyID) (*taskGraph, error) {
	if !t.built {
		return nil, errors.New("streams: a task graph of a topology that was not built")
	}
	if int(id) < 0 || int(id) >= len(t.subs) {
		return nil, fmt.Errorf("streams: no sub-topology %d", id)
	}
	st := t.subs[id]
	g := &taskGraph{sources: map[string]*graphSource{}}
	insts := map[string]nodeInstance{}
	for _, name := range st.Nodes {
		n := t.byName[name]
		in := n.newInstance()
		if pi, ok := in.(interface{ setStores([]string) }); ok {
			pi.setStores(n.Stores)
		}
		insts[name] = in
		g.nodes = append(g.nodes, in)
		g.names = append(g.names, name)
		if n.Kind == SourceNode {
			for _, tp := range n.Topics {
				g.sources[tp] = &graphSource{extract: n.extract, inst: in.(rawProcessor)}
			}
		}
	}
	for _, name := range st.Nodes {
		n := t.byName[name]
		if n.Kind == SinkNode {
			continue
		}
		children := make([]nodeInstance, len(n.Children))
		for i, c := range n.Children {
			children[i] = insts[c]
		}
		if err := insts[name].connect(children, n.Children); err != nil {
			return nil, fmt.Errorf("streams: node %q: %w", name, err)
		}
	}
	return g, nil
}

// Source returns the entry point for topic (unprefixed for internal topics).
func (g *taskGraph) Source(topic string) (graphSourceAPI, bool) {
	s, ok := g.sources[topic]
	if !ok {
		return nil, false
	}
	return s, true
}

// SourceTopics lists the topics the graph reads.
func (g *taskGraph) SourceTopics() []string {
	out := make([]string, 0, len(g.sources))
	for tp := range g.sources {
		out = append(out, tp)
	}
	slices.Sort(out)
	return out
}

// Init initializes every node (processors get their contexts). On error the
// nodes already initialized are closed.
func (g *taskGraph) Init(tc taskContext) error {
	for i, n := range g.nodes {
		if err := n.init(tc); err != nil {
			g.inited = i
			_ = g.Close()
			return wrapNode(g.names[i], err)
		}
	}
	g.inited = len(g.nodes)
	return nil
}

// Close closes the initialized nodes and returns the first error.
func (g *taskGraph) Close() error {
	var first error
	for i := 0; i < g.inited; i++ {
		if err := g.nodes[i].close(); err != nil && first == nil {
			first = wrapNode(g.names[i], err)
		}
	}
	g.inited = 0
	return first
}

func connectTyped[K, V any](children []nodeInstance, names []string) ([]func(Record[K, V]) error, error) {
	out := make([]func(Record[K, V]) error, len(children))
	for i, c := range children {
		f, ok := c.input().(func(Record[K, V]) error)
		if !ok {
			return nil, fmt.Errorf("child %q does not consume this node's record types", names[i])
		}
		out[i] = f
	}
	return out, nil
}

// sourceInstance deserializes raw records and forwards them.
type sourceInstance[K, V any] struct {
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	// ka and va are ks's and vs's AliasDecoders, nil if they have none:
	// they decode the bytes of Stable records.
	ka       serde.AliasDecoder[K]
	va       serde.AliasDecoder[V]
	children []func(Record[K, V]) error
}

func newSourceInstance[K, V any](name string, ks serde.Serde[K], vs serde.Serde[V]) *sourceInstance[K, V] {
	s := &sourceInstance[K, V]{name: name, ks: ks, vs: vs}
	s.ka, _ = ks.(serde.AliasDecoder[K])
	s.va, _ = vs.(serde.AliasDecoder[V])
	return s
}

func (s *sourceInstance[K, V]) input() any { return nil }
func (s *sourceInstance[K, V]) connect(children []nodeInstance, names []string) (err error) {
	s.children, err = connectTyped[K, V](children, names)
	return err
}
func (s *sourceInstance[K, V]) init(taskContext) error { return nil }
func (s *sourceInstance[K, V]) close() error           { return nil }
func (s *sourceInstance[K, V]) processRaw(raw *RawRecord) error {
	var (
		k   K
		v   V
		err error
	)
	if raw.Stable && s.ka != nil {
		k, err = s.ka.DeserializeAlias(raw.Topic, raw.Key)
	} else {
		k, err = s.ks.Deserialize(raw.Topic, raw.Key)
	}
	if err != nil {
		return &SerdeError{Node: s.name, Topic: raw.Topic, What: "key", Err: err}
	}
	if raw.Stable && s.va != nil {
		v, err = s.va.DeserializeAlias(raw.Topic, raw.Value)
	} else {
		v, err = s.vs.Deserialize(raw.Topic, raw.Value)
	}
	if err != nil {
		return &SerdeError{Node: s.name, Topic: raw.Topic, What: "value", Err: err}
	}
	r := Record[K, V]{Key: k, Value: v, Timestamp: raw.Timestamp, Headers: raw.Headers}
	if len(s.children) == 1 {
		return s.children[0](r)
	}
	for _, c := range s.children {
		if err := c(r); err != nil {
			return err
		}
	}
	return nil
}

// processorInstance runs a user Processor and is its ProcessorContext.
type processorInstance[KIn, VIn, KOut, VOut any] struct {
	name       string
	proc       Processor[KIn, VIn, KOut, VOut]
	tc         taskContext
	children   []func(Record[KOut, VOut]) error
	childNames []string
	stores     []string
	in         func(Record[KIn, VIn]) error
}

func (p *processorInstance[KIn, VIn, KOut, VOut]) input() any {
	if fp, ok := p.proc.(*funcProcessor[KIn, VIn, KOut, VOut]); ok && p.in == nil {
		// A ProcessorFunc is called directly, one call less per record
		// (its Init only keeps the context, which is p).
		f, ctx := fp.f, ProcessorContext[KOut, VOut](p)
		p.in = func(r Record[KIn, VIn]) error {
			if err := f(ctx, r); err != nil {
				return wrapNode(p.name, err)
			}
			return nil
		}
	}
	if p.in == nil {
		p.in = func(r Record[KIn, VIn]) error {
			if err := p.proc.Process(r); err != nil {
				return wrapNode(p.name, err)
			}
			return nil
		}
	}
	return p.in
}

func (p *processorInstance[KIn, VIn, KOut, VOut]) connect(children []nodeInstance, names []string) (err error) {
	p.childNames = names
	p.children, err = connectTyped[KOut, VOut](children, names)
	return err
}

func (p *processorInstance[KIn, VIn, KOut, VOut]) init(tc taskContext) error {
	p.tc = tc
	return p.proc.Init(p)
}

func (p *processorInstance[KIn, VIn, KOut, VOut]) close() error { return p.proc.Close() }

func (p *processorInstance[KIn, VIn, KOut, VOut]) Forward(r Record[KOut, VOut]) error {
	if len(p.children) == 1 {
		return p.children[0](r)
	}
	for _, c := range p.children {
		if err := c(r); err != nil {
			return err
		}
	}
	return nil
}

func (p *processorInstance[KIn, VIn, KOut, VOut]) ForwardTo(child string, r Record[KOut, VOut]) error {
	for i, n := range p.childNames {
		if n == child {
			return p.children[i](r)
		}
	}
	return fmt.Errorf("streams: node %q has no child %q (children: %v)", p.name, child, p.childNames)
}

func (p *processorInstance[KIn, VIn, KOut, VOut]) TaskID() TaskID        { return p.tc.TaskID() }
func (p *processorInstance[KIn, VIn, KOut, VOut]) ApplicationID() string { return p.tc.ApplicationID() }
func (p *processorInstance[KIn, VIn, KOut, VOut]) RecordMetadata() (RecordMetadata, bool) {
	return p.tc.RecordMetadata()
}
func (p *processorInstance[KIn, VIn, KOut, VOut]) StreamTime() time.Time     { return p.tc.StreamTime() }
func (p *processorInstance[KIn, VIn, KOut, VOut]) setStores(stores []string) { p.stores = stores }

func (p *processorInstance[KIn, VIn, KOut, VOut]) Store(name string) (any, error) {
	if !slices.Contains(p.stores, name) {
		return nil, fmt.Errorf("streams: node %q is not connected to store %q (connected: %v); connect it with AddStore or ConnectStores", p.name, name, p.stores)
	}
	return p.tc.Store(name)
}
func (p *processorInstance[KIn, VIn, KOut, VOut]) Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) (Cancellable, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("streams: node %q: punctuation interval %v must be positive", p.name, interval)
	}
	name := p.name
	return p.tc.Schedule(name, interval, typ, func(ts time.Time) error {
		if err := fn(ts); err != nil {
			return wrapNode(name, err)
		}
		return nil
	})
}
func (p *processorInstance[KIn, VIn, KOut, VOut]) RequestCommit() { p.tc.RequestCommit() }
func (p *processorInstance[KIn, VIn, KOut, VOut]) RecordDropped(reason DropReason) {
	p.tc.RecordDropped(p.name, reason)
}

// sinkInstance serializes records and emits them.
type sinkInstance[K, V any] struct {
	name     string
	topic    string
	choose   TopicChooser[K, V]
	kw       slab.Writer[K]
	vw       slab.Writer[V]
	internal bool
	// real is the name of an internal fixed topic with the application's
	// prefix, set by init so that records need no prefixing one by one.
	real string
	// stable: both serdes append, so the bytes are carved from slab,
	// where nothing writes them again (RawRecord.Stable).
	stable bool
	part   StreamPartitioner[K, V]
	tc     taskContext
	raw    RawRecord
	// slab is where serialized keys and values are carved from: the
	// record sink may keep them.
	slab slab.Slab
}

func (s *sinkInstance[K, V]) input() any {
	return func(r Record[K, V]) error { return s.emit(r) }
}
func (s *sinkInstance[K, V]) connect([]nodeInstance, []string) error { return nil }
func (s *sinkInstance[K, V]) init(tc taskContext) error {
	s.tc = tc
	if s.internal && s.choose == nil {
		s.real = InternalTopicName(tc.ApplicationID(), s.topic)
	}
	return nil
}
func (s *sinkInstance[K, V]) close() error { return nil }

func (s *sinkInstance[K, V]) emit(r Record[K, V]) error {
	topic := s.topic
	if s.choose != nil {
		topic = s.choose(r)
		if topic == "" {
			return &NodeError{Node: s.name, Err: errors.New("topic chooser returned an empty topic")}
		}
	}
	kb, err := s.kw.Append(&s.slab, topic, r.Key)
	if err != nil {
		return &SerdeError{Node: s.name, Topic: topic, What: "key", Err: err}
	}
	vb, err := s.vw.Append(&s.slab, topic, r.Value)
	if err != nil {
		return &SerdeError{Node: s.name, Topic: topic, What: "value", Err: err}
	}
	// NB: field by field, not a composite literal: assigning a whole
	// RawRecord to the heap copies (and write-barriers) every field.
	raw := &s.raw
	raw.Topic, raw.Partition, raw.Stable, raw.Offset = topic, AnyPartition, s.stable, 0
	raw.Key, raw.Value = kb, vb
	raw.Timestamp, raw.Headers = r.Timestamp, r.Headers
	raw.PartitionFor = nil
	if s.part != nil {
		part, k, v := s.part, r.Key, r.Value
		raw.PartitionFor = func(n int) Partition { return Partition(part(topic, k, v, n)) }
	}
	internal := s.internal
	if s.real != "" {
		// NB: serdes and errors above name the topic as the topology does.
		s.raw.Topic, internal = s.real, false
	}
	if err := s.tc.Emit(&s.raw, internal); err != nil {
		return wrapNode(s.name, err)
	}
	return nil
}

// ProcessingError reports an error raised while a task processed one input
// record (or ran a punctuator): the task, the record as read from its topic
// (nil for a punctuator) and the cause, which is usually a *NodeError or
// *SerdeError naming the node.
type ProcessingError struct {
	Task   TaskID
	Record *RawRecord
	Err    error
}

func (e *ProcessingError) Error() string {
	if e.Record == nil {
		return fmt.Sprintf("streams: task %s: punctuation: %v", e.Task, e.Err)
	}
	r := e.Record
	return fmt.Sprintf("streams: task %s: record %s/%d@%d (timestamp %d, key %q): %v",
		e.Task, r.Topic, r.Partition, r.Offset, r.Timestamp.UnixMilli(), r.Key, e.Err)
}
func (e *ProcessingError) Unwrap() error { return e.Err }
