package exec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/weir-dev/weir/internal/taskgraph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// StoreProvider gives tasks their state stores.
type StoreProvider interface {
	// OpenStore returns task's instance of the store spec declares, ready
	// for use (restored). For a global spec every task gets the one shared
	// instance. The result implements the interface of spec.Kind
	// (state.KeyValueStore, state.WindowStore or state.SessionStore).
	OpenStore(task streams.TaskID, spec streams.StoreSpec) (state.Store, error)
}

// RecordSink receives a task's output records.
type RecordSink interface {
	// Send delivers one output record. r.Topic is the real topic name;
	// r.Partition is streams.AnyPartition unless a node chose one. Send must
	// not retain r itself, but may keep r.Key, r.Value and r.Headers, and
	// may change r's fields (r is the emitting sink's scratch record).
	Send(r *streams.RawRecord) error
}

// Clock tells wall-clock time. The runtime uses the system clock, the
// driver a clock the test advances.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Options configure a Task.
type Options struct {
	// ApplicationID prefixes the names of internal topics
	// ("<application>-<name>"). Default "" (no prefix).
	ApplicationID string
	// Clock gives wall-clock time for wall-clock punctuators scheduled
	// before the first Punctuate. Default SystemClock.
	Clock Clock
}

// Metrics are a task's counters.
type Metrics struct {
	// Processed counts input records processed.
	Processed int64
	// Punctuations counts punctuator calls.
	Punctuations int64
	// Dropped counts records dropped on purpose, by node and reason.
	Dropped map[streams.Drop]int64
}

// DroppedTotal sums Dropped.
func (m Metrics) DroppedTotal() int64 {
	var n int64
	for _, v := range m.Dropped {
		n += v
	}
	return n
}

type partitionQueue struct {
	tp     streams.TopicPartition
	source taskgraph.Source
	recs   []streams.RawRecord
	head   int
	next   streams.Offset // next offset to commit; -1: nothing consumed
}

type punctuation struct {
	node     string
	interval time.Duration
	typ      streams.PunctuationType
	fn       streams.Punctuator
	next     int64 // ms; math.MinInt64: at the first stream time seen
	canceled bool
}

func (p *punctuation) Cancel() { p.canceled = true }

// Task runs one sub-topology for one partition number. See the package
// documentation for how an owner drives it.
type Task struct {
	id    streams.TaskID
	topo  *streams.Topology
	graph taskgraph.Graph
	opts  Options
	prov  StoreProvider
	out   RecordSink

	logical map[string]string // real input topic -> topology topic
	queues  []*partitionQueue // sorted by topic, partition
	byTP    map[streams.TopicPartition]*partitionQueue
	lastQ   *partitionQueue // the queue of the last Add, a fast path

	stores     map[string]state.Store
	storeOrder []string

	streamTime int64 // ms; math.MinInt64 before the first record
	current    *streams.RawRecord
	puncts     []*punctuation

	commitRequested bool
	dirty           bool
	inited, closed  bool
	metrics         Metrics // Dropped unused: see dropped
	dropped         map[streams.Drop]int64
}

// NewTask creates the task id of a built topology: its nodes are
// instantiated but not initialized (see Init). stores gives the task its
// stores; out receives its output.
func NewTask(topo *streams.Topology, id streams.TaskID, stores StoreProvider, out RecordSink, opts Options) (*Task, error) {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if stores == nil || out == nil {
		return nil, errors.New("exec: NewTask needs a StoreProvider and a RecordSink")
	}
	g, err := taskgraph.New(topo, id.Subtopology)
	if err != nil {
		return nil, fmt.Errorf("exec: task %s: %w", id, err)
	}
	t := &Task{
		id: id, topo: topo, graph: g, opts: opts, prov: stores, out: out,
		logical:    map[string]string{},
		byTP:       map[streams.TopicPartition]*partitionQueue{},
		stores:     map[string]state.Store{},
		streamTime: math.MinInt64,
		dropped:    map[streams.Drop]int64{},
	}
	for _, tp := range g.SourceTopics() {
		real := tp
		if topo.IsInternalTopic(tp) {
			real = streams.InternalTopicName(opts.ApplicationID, tp)
		}
		t.logical[real] = tp
	}
	return t, nil
}

// ID returns the task's id.
func (t *Task) ID() streams.TaskID { return t.id }

// InputTopics returns the real names of the topics the task reads.
func (t *Task) InputTopics() []string {
	out := make([]string, 0, len(t.logical))
	for real := range t.logical {
		out = append(out, real)
	}
	sort.Strings(out)
	return out
}

// Init initializes the task's processors (which open their stores).
func (t *Task) Init() error {
	if t.inited {
		return nil
	}
	if err := t.graph.Init(t); err != nil {
		return fmt.Errorf("exec: task %s: init: %w", t.id, err)
	}
	t.inited = true
	return nil
}

// Add queues records of one input partition, in offset order. tp.Topic is
// the real topic name. The task keeps recs' slices (not the slice itself).
func (t *Task) Add(tp streams.TopicPartition, recs []streams.RawRecord) error {
	q, err := t.queue(tp)
	if err != nil {
		return err
	}
	t.room(q, len(recs))
	n := len(q.recs)
	q.recs = append(q.recs, recs...)
	for i := n; i < len(q.recs); i++ {
		// NB: the extractor gets a pointer into the queue, not to a local
		// copy, so that the record does not escape to the heap.
		q.recs[i].Timestamp = q.source.Timestamp(&q.recs[i])
	}
	return nil
}

// AddOne is Add of the one record *r: it saves the owner a slice around a
// single record (the test driver adds records one by one). The task keeps
// r's slices, not r.
func (t *Task) AddOne(tp streams.TopicPartition, r *streams.RawRecord) error {
	q, err := t.queue(tp)
	if err != nil {
		return err
	}
	t.room(q, 1)
	q.recs = append(q.recs, *r)
	last := &q.recs[len(q.recs)-1]
	last.Timestamp = q.source.Timestamp(last)
	return nil
}

// queue returns tp's queue, creating it on first use, with room to append
// (a drained queue starts over).
func (t *Task) queue(tp streams.TopicPartition) (*partitionQueue, error) {
	q := t.lastQ
	if q == nil || q.tp != tp {
		q = nil
		if len(t.queues) <= 8 {
			// NB: a few comparisons beat hashing the topic name.
			for _, c := range t.queues {
				if c.tp == tp {
					q = c
					break
				}
			}
		} else {
			q = t.byTP[tp]
		}
	}
	if q == nil {
		logical, ok := t.logical[tp.Topic]
		if !ok {
			return nil, fmt.Errorf("exec: task %s does not read topic %q", t.id, tp.Topic)
		}
		src, _ := t.graph.Source(logical)
		q = &partitionQueue{tp: tp, source: src, next: -1}
		t.byTP[tp] = q
		t.queues = append(t.queues, q)
		sort.Slice(t.queues, func(i, j int) bool {
			a, b := t.queues[i].tp, t.queues[j].tp
			if a.Topic != b.Topic {
				return a.Topic < b.Topic
			}
			return a.Partition < b.Partition
		})
	}
	t.lastQ = q
	// NB: not while a record is processed: it may be this queue's, and
	// an owner may add records from inside its processing (the test
	// driver's sink feeds a topic the task reads).
	if t.current == nil && q.head > 0 && q.head == len(q.recs) {
		q.recs, q.head = q.recs[:0], 0
	}
	return q, nil
}

// room makes room for n more records. A queue that never drains (a join's,
// whose inputs take turns) would otherwise grow a new array whenever its
// slice fills, copying and keeping every processed record ahead of head:
// when the records will not fit and at least half of them are processed,
// the unprocessed ones move to the front instead, and the slots they leave
// are cleared so that processed records' buffers can be collected. Each
// record moved is paid for by one processed, so Add stays O(1) amortized.
//
// Not while a record is processed (see queue): the record is in a queue,
// maybe this one, until its processing ends; appending alone leaves it be.
func (t *Task) room(q *partitionQueue, n int) {
	if t.current != nil || len(q.recs)+n <= cap(q.recs) || q.head < len(q.recs)-q.head {
		return
	}
	live := copy(q.recs, q.recs[q.head:])
	clear(q.recs[live:])
	q.recs, q.head = q.recs[:live], 0
}

// Buffered returns the number of queued records.
func (t *Task) Buffered() int {
	n := 0
	for _, q := range t.queues {
		n += len(q.recs) - q.head
	}
	return n
}

// Process processes the queued record with the smallest timestamp (ties:
// the first queue by topic and partition). It reports false when no record
// was queued. An error is a *streams.ProcessingError carrying the record;
// the record counts as consumed.
func (t *Task) Process() (bool, error) {
	if !t.inited {
		return false, errors.New("exec: Process before Init")
	}
	var best *partitionQueue
	var bestTS time.Time
	for _, q := range t.queues {
		if q.head == len(q.recs) {
			continue
		}
		ts := q.recs[q.head].Timestamp
		if best == nil || ts.Before(bestTS) {
			best, bestTS = q, ts
		}
	}
	if best == nil {
		return false, nil
	}
	r := &best.recs[best.head]
	best.head++
	best.next = r.Offset + 1
	// NB: a drained queue is reset by the next Add, not here: r points into
	// it while the record is processed.
	t.dirty = true
	t.metrics.Processed++
	if ms := r.Timestamp.UnixMilli(); ms > t.streamTime {
		t.streamTime = ms
	}
	t.current = r
	err := best.source.Process(r)
	t.current = nil
	if err != nil {
		cp := *r
		return true, &streams.ProcessingError{Task: t.id, Record: &cp, Err: err}
	}
	if err := t.punctuate(streams.StreamTime, t.streamTime); err != nil {
		return true, err
	}
	return true, nil
}

// StreamTime returns the task's stream time (zero before the first record).
func (t *Task) StreamTime() time.Time {
	if t.streamTime == math.MinInt64 {
		return time.Time{}
	}
	return time.UnixMilli(t.streamTime)
}

// Punctuate fires the wall-clock punctuators due at now.
func (t *Task) Punctuate(now time.Time) error {
	if !t.inited {
		return nil
	}
	return t.punctuate(streams.WallClockTime, now.UnixMilli())
}

func (t *Task) punctuate(typ streams.PunctuationType, now int64) error {
	for i := 0; i < len(t.puncts); i++ {
		p := t.puncts[i]
		if p.canceled || p.typ != typ {
			continue
		}
		if p.next == math.MinInt64 {
			p.next = now
		}
		if now < p.next {
			continue
		}
		iv := p.interval.Milliseconds()
		if iv <= 0 {
			iv = 1
		}
		// Fire once for the latest due time, then move past now.
		p.next += (now - p.next) / iv * iv
		at := p.next
		p.next += iv
		t.metrics.Punctuations++
		if err := p.fn(time.UnixMilli(at)); err != nil {
			return &streams.ProcessingError{Task: t.id, Err: err}
		}
	}
	return nil
}

// CommitNeeded reports whether records were processed since the last
// commit or a processor requested a commit.
func (t *Task) CommitNeeded() bool { return t.dirty || t.commitRequested }

// CommitRequested reports whether a processor asked for a commit since the
// last one.
func (t *Task) CommitRequested() bool { return t.commitRequested }

// Commit flushes the task's stores (their caches, so that aggregations
// forward, and their changelogs). Records forwarded by a flush go through
// the rest of the graph (sinks, repartition topics) before Commit returns;
// stores are flushed in the order the nodes opened them, upstream first, so
// a store written by what an upstream flush forwarded is flushed after it.
// The owner then flushes its producer and commits Offsets: the output of
// every update precedes the commit of the input that caused it.
func (t *Task) Commit(ctx context.Context) error {
	for _, name := range t.storeOrder {
		if spec, _ := t.topo.Store(name); spec.Global && t.id.Partition >= 0 {
			continue // a global store is flushed by its global task
		}
		if err := t.stores[name].Flush(ctx); err != nil {
			return fmt.Errorf("exec: task %s: flush store %q: %w", t.id, name, err)
		}
	}
	t.dirty, t.commitRequested = false, false
	return nil
}

// Offsets returns, per input partition consumed from, the offset to commit:
// the offset after the last record processed.
func (t *Task) Offsets() map[streams.TopicPartition]streams.Offset {
	out := make(map[streams.TopicPartition]streams.Offset, len(t.queues))
	for _, q := range t.queues {
		if q.next >= 0 {
			out[q.tp] = q.next
		}
	}
	return out
}

// Metrics returns a copy of the task's counters.
func (t *Task) Metrics() Metrics {
	m := t.metrics
	m.Dropped = make(map[streams.Drop]int64, len(t.dropped))
	for k, v := range t.dropped {
		m.Dropped[k] += v
	}
	return m
}

// Close closes the task's processors. Stores stay open: the provider owns
// them. Close is idempotent.
func (t *Task) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	if !t.inited {
		return nil
	}
	if err := t.graph.Close(); err != nil {
		return fmt.Errorf("exec: task %s: close: %w", t.id, err)
	}
	return nil
}

// Store returns the task's instance of a store, opening it on first use.
// It serves the nodes (taskgraph.TaskContext) and the test driver.
func (t *Task) Store(name string) (any, error) {
	if s, ok := t.stores[name]; ok {
		return s, nil
	}
	spec, ok := t.topo.Store(name)
	if !ok {
		return nil, fmt.Errorf("exec: task %s: unknown store %q", t.id, name)
	}
	s, err := t.prov.OpenStore(t.id, spec)
	if err != nil {
		return nil, fmt.Errorf("exec: task %s: open store %q: %w", t.id, name, err)
	}
	t.stores[name] = s
	t.storeOrder = append(t.storeOrder, name)
	return s, nil
}

// The rest implements taskgraph.TaskContext.

var _ taskgraph.TaskContext = (*Task)(nil)

// TaskID implements taskgraph.TaskContext.
func (t *Task) TaskID() streams.TaskID { return t.id }

// ApplicationID implements taskgraph.TaskContext.
func (t *Task) ApplicationID() string { return t.opts.ApplicationID }

// Schedule implements taskgraph.TaskContext.
func (t *Task) Schedule(node string, interval time.Duration, typ streams.PunctuationType, fn streams.Punctuator) (streams.Cancellable, error) {
	p := &punctuation{node: node, interval: interval, typ: typ, fn: fn}
	switch typ {
	case streams.StreamTime:
		if t.streamTime == math.MinInt64 {
			p.next = math.MinInt64
		} else {
			p.next = t.streamTime + interval.Milliseconds()
		}
	default:
		p.next = t.opts.Clock.Now().UnixMilli() + interval.Milliseconds()
	}
	t.puncts = append(t.puncts, p)
	return p, nil
}

// RequestCommit implements taskgraph.TaskContext.
func (t *Task) RequestCommit() { t.commitRequested = true }

// RecordMetadata implements taskgraph.TaskContext.
func (t *Task) RecordMetadata() (streams.RecordMetadata, bool) {
	if t.current == nil {
		return streams.RecordMetadata{}, false
	}
	return streams.RecordMetadata{Topic: t.current.Topic, Partition: t.current.Partition, Offset: t.current.Offset}, true
}

// RecordDropped implements taskgraph.TaskContext.
func (t *Task) RecordDropped(node string, reason streams.DropReason) {
	t.dropped[streams.Drop{Node: node, Reason: reason}]++
}

// Emit implements taskgraph.TaskContext.
func (t *Task) Emit(r *streams.RawRecord, internal bool) error {
	if internal {
		r.Topic = streams.InternalTopicName(t.opts.ApplicationID, r.Topic)
	}
	return t.out.Send(r)
}
