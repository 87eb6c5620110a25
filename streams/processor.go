package streams

import "time"

// Processor is a node of a topology written against the Processor API. A
// task creates one Processor per node (from the node's supplier), calls Init
// once before the first record, Process for each record that reaches the
// node and Close when the task stops.
//
// Process may forward any number of records through the context it got in
// Init; forwarding calls the children synchronously, depth first, and returns
// their first error. An error returned by Process stops the task and is
// reported with the input record that caused it.
type Processor[KIn, VIn, KOut, VOut any] interface {
	Init(ctx ProcessorContext[KOut, VOut]) error
	Process(r Record[KIn, VIn]) error
	Close() error
}

// ProcessorSupplier returns a new Processor; the topology calls it once per
// task, so processors may keep per-task state in fields.
type ProcessorSupplier[KIn, VIn, KOut, VOut any] func() Processor[KIn, VIn, KOut, VOut]

// PunctuationType chooses the clock a punctuator follows.
type PunctuationType int

const (
	// StreamTime punctuators fire as the task's stream time (the largest
	// record timestamp seen) advances past each interval boundary. They never
	// fire while no records arrive.
	StreamTime PunctuationType = iota
	// WallClockTime punctuators fire from the engine's clock, independent of
	// records: the runtime's system clock, or the test driver's clock when
	// the test advances it.
	WallClockTime
)

func (p PunctuationType) String() string {
	if p == WallClockTime {
		return "wall-clock"
	}
	return "stream-time"
}

// Punctuator is called by a scheduled punctuation with the time it fires for
// (a stream time or a wall-clock time, by the schedule's type).
type Punctuator func(ts time.Time) error

// Cancellable cancels a scheduled punctuation.
type Cancellable interface {
	Cancel()
}

// ProcessorContext is a processor's view of its task: it forwards records to
// the node's children, exposes the current record's metadata and the stores
// the node declared, schedules punctuators and requests commits.
type ProcessorContext[K, V any] interface {
	// Forward passes r to every child of the node.
	Forward(r Record[K, V]) error
	// ForwardTo passes r to the child node named child only; naming a node
	// that is not a child is an error.
	ForwardTo(child string, r Record[K, V]) error
	// TaskID is the task running this processor.
	TaskID() TaskID
	// ApplicationID is the running application's id ("" in a topology run
	// without one).
	ApplicationID() string
	// RecordMetadata describes the input record being processed; ok is false
	// inside a punctuator, where no input record is current.
	RecordMetadata() (md RecordMetadata, ok bool)
	// StreamTime is the task's stream time: the largest timestamp the task
	// has processed (the zero time before the first record).
	StreamTime() time.Time
	// Store returns the state store named name. The node must be connected
	// to it (see AddProcessor's stores argument and ConnectStore). Assert the
	// result to the store interface of its kind (state.KeyValueStore,
	// state.WindowStore, state.SessionStore) or use the typed helpers.
	Store(name string) (any, error)
	// Schedule calls fn every interval on the chosen clock until cancelled or
	// the task closes. interval must be positive.
	Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) (Cancellable, error)
	// RequestCommit asks the engine to commit the task soon (after the
	// current record).
	RequestCommit()
	// RecordDropped counts one record the node dropped on purpose (late for
	// its window, null key, ...) under reason, in the task's metrics.
	RecordDropped(reason DropReason)
}

// DropReason says why a processor dropped a record on purpose. It labels
// the dropped-record counts of a task's metrics (the runtime's
// weir_dropped_records_total, the test driver's Metrics). A custom
// processor may name reasons of its own.
type DropReason string

// Drop reasons of Weir's own processors.
const (
	// DropLate: the record belongs to a window that had already closed
	// (stream time had passed the window's end plus its grace).
	DropLate DropReason = "late"
)

// Drop names a count of dropped records: the processor node that dropped
// them and why.
type Drop struct {
	Node   string
	Reason DropReason
}

// String returns "node: reason".
func (d Drop) String() string { return d.Node + ": " + string(d.Reason) }

// ProcessorFunc adapts a function to a stateless Processor.
type ProcessorFunc[KIn, VIn, KOut, VOut any] func(ctx ProcessorContext[KOut, VOut], r Record[KIn, VIn]) error

// Supplier returns a ProcessorSupplier whose processors call f.
func (f ProcessorFunc[KIn, VIn, KOut, VOut]) Supplier() ProcessorSupplier[KIn, VIn, KOut, VOut] {
	return func() Processor[KIn, VIn, KOut, VOut] { return &funcProcessor[KIn, VIn, KOut, VOut]{f: f} }
}

type funcProcessor[KIn, VIn, KOut, VOut any] struct {
	f   ProcessorFunc[KIn, VIn, KOut, VOut]
	ctx ProcessorContext[KOut, VOut]
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Init(ctx ProcessorContext[KOut, VOut]) error {
	p.ctx = ctx
	return nil
}
func (p *funcProcessor[KIn, VIn, KOut, VOut]) Process(r Record[KIn, VIn]) error { return p.f(p.ctx, r) }
func (p *funcProcessor[KIn, VIn, KOut, VOut]) Close() error                     { return nil }

// TimestampExtractor picks a record's event time from the record as read
// from its topic. The default (nil) uses the record's own timestamp.
type TimestampExtractor func(r *RawRecord) time.Time
