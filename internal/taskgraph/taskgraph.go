// Package taskgraph is the task engine's access to a task's instance of a
// sub-topology: the graph of typed node instances that package streams
// builds from a Topology, its entry points per input topic, and the
// TaskContext the engine gives the nodes.
//
// Applications never use it: they write processors against
// streams.ProcessorContext. internal/exec (the task engine of the runtime
// and the test driver) is its user:
//
//	g, err := taskgraph.New(topo, id.Subtopology)
//	err = g.Init(task) // task implements TaskContext
//	src, ok := g.Source("orders")
//	r.Timestamp = src.Timestamp(r)
//	err = src.Process(r) // deserializes r and runs it through the nodes
//
// The graph's implementation is in package streams (its nodes are generic,
// instantiated where the topology is built). The types here are aliases of
// type literals that streams repeats (streams cannot import this package),
// so a change to one must be made to both: the package refuses to
// initialize if they differ.
package taskgraph

import (
	"fmt"
	"time"

	"github.com/weir-dev/weir/internal/taskgraph/link"
	"github.com/weir-dev/weir/streams"
)

// TaskContext is what a task engine gives the nodes of a task graph: the
// engine's side of every streams.ProcessorContext.
type TaskContext = interface {
	TaskID() streams.TaskID
	ApplicationID() string
	// Store returns the task's instance of the named store.
	Store(name string) (any, error)
	// Schedule registers a punctuator for node.
	Schedule(node string, interval time.Duration, typ streams.PunctuationType, fn streams.Punctuator) (streams.Cancellable, error)
	RequestCommit()
	RecordMetadata() (streams.RecordMetadata, bool)
	StreamTime() time.Time
	// RecordDropped counts a record dropped on purpose by node.
	RecordDropped(node string, reason streams.DropReason)
	// Emit hands a serialized record to the task's output. Internal records
	// go to internal topics (r.Topic is the unprefixed name). The engine
	// may change r's fields and does not keep r.
	Emit(r *streams.RawRecord, internal bool) error
}

// Graph is one task's instance of a sub-topology: its nodes, wired
// together with their types.
type Graph = interface {
	// Source returns the entry point for topic (unprefixed for internal
	// topics).
	Source(topic string) (Source, bool)
	// SourceTopics lists the topics the graph reads, sorted.
	SourceTopics() []string
	// Init initializes every node (processors get their contexts). On
	// error the nodes already initialized are closed.
	Init(tc TaskContext) error
	// Close closes the initialized nodes and returns the first error.
	Close() error
}

// Source is a task graph's entry point for one input topic.
type Source = interface {
	// Timestamp returns the event time of r by the source's timestamp
	// extractor (r's own timestamp by default).
	Timestamp(r *streams.RawRecord) time.Time
	// Process deserializes r and passes it through the graph. r.Timestamp
	// must already hold the extracted event time. An error is the first
	// error of a node (a *streams.NodeError) or of a serde (a
	// *streams.SerdeError).
	Process(r *streams.RawRecord) error
}

// newGraph is package streams' constructor, registered in package link.
var newGraph = func() func(*streams.Topology, streams.SubtopologyID) (Graph, error) {
	f, ok := link.NewTaskGraph.(func(*streams.Topology, streams.SubtopologyID) (Graph, error))
	if !ok {
		// A broken invariant of the build: streams' type literals and ours
		// differ.
		panic(fmt.Sprintf("taskgraph: package streams registered a task-graph constructor of type %T, want %T",
			link.NewTaskGraph, f))
	}
	return f
}()

// New instantiates sub-topology id of a built topology for one task, with
// processors from their suppliers. Call Init before feeding it.
func New(t *streams.Topology, id streams.SubtopologyID) (Graph, error) {
	return newGraph(t, id)
}
