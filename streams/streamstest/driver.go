package streamstest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/internal/exec"
	"github.com/weir-dev/weir/internal/slab"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// Option configures a Driver.
type Option func(*config)

type config struct {
	appID       string
	partitions  map[string]int
	defParts    int
	start       time.Time
	commitEvery int
	discard     bool
	mapStores   bool
	eos         bool
}

// ApplicationID sets the application id that prefixes internal topics.
// Default "streamstest".
func ApplicationID(id string) Option { return func(c *config) { c.appID = id } }

// Partitions gives topic n partitions. Topics not named have
// DefaultPartitions.
func Partitions(topic string, n int) Option {
	return func(c *config) { c.partitions[topic] = n }
}

// DefaultPartitions sets the partition count of topics not named by
// Partitions. Default 1.
func DefaultPartitions(n int) Option { return func(c *config) { c.defParts = n } }

// WallClock sets the driver's initial wall-clock time. Default: the Unix
// epoch.
func WallClock(t time.Time) Option { return func(c *config) { c.start = t } }

// DiscardRecords makes the driver forget records once the tasks reading
// them have them, so output topics read nothing: for benchmarks that pipe
// millions of records. Default: topics keep every record.
func DiscardRecords() Option { return func(c *config) { c.discard = true } }

// MapStores opens every store unlogged and uncached: the state engine's
// in-memory stores with no changelog and no write-back cache, so an
// aggregation forwards each update as it happens. Restart then has nothing
// to restore from and is refused. Default: the same in-memory stores with a
// write-back cache per task and changelogs written to the driver's topics
// ("<application>-<store>-changelog"), as in production.
func MapStores() Option { return func(c *config) { c.mapStores = true } }

// ExactlyOnce runs the tasks as the runtime's runtime.ExactlyOnce does:
// everything the tasks write between two commits (output, repartition and
// changelog records) forms one transaction. Output topics show a
// transaction's records only once it commits (at each commit: CommitEvery,
// Driver.Commit); Restart, a crash, aborts the open transaction instead:
// its records are gone from every topic (their offsets stay used, as an
// aborted transaction's do), stores restore from the committed changelog
// records, and the input after the committed offsets is processed again,
// so output and stores show each input record's effect exactly once
// whenever Restart comes. Driver.Abort aborts without a restart, as a
// failed commit or a rebalance does. Default: at-least-once.
func ExactlyOnce() Option { return func(c *config) { c.eos = true } }

// CommitEvery commits the tasks (flushing their stores) after every n piped
// records instead of after each one. Default 1: every update of a cached
// aggregation reaches downstream. With n > 1 the write-back cache keeps
// only each key's latest result between commits, as in production; call
// Driver.Commit to flush the rest.
func CommitEvery(n int) Option { return func(c *config) { c.commitEvery = n } }

type rec struct {
	streams.RawRecord
	seq int64
	// txn is set, under ExactlyOnce, on records the tasks wrote: they
	// belong to the transaction open when they were written.
	txn bool
}

type topic struct {
	name  string
	parts [][]rec
	ends  []streams.Offset // next offset per partition
	all   []rec            // every record in append order (committed ones under ExactlyOnce)
	// pending are the records of the open transaction, in append order,
	// not in all until it commits (ExactlyOnce only).
	pending []rec
	// readers are the tasks reading the topic (nil until resolved).
	readers  []*exec.Task
	resolved bool
}

// Driver runs a topology in-process, synchronously and deterministically:
// piping a record into an input topic processes it, and everything it
// causes (repartition topics included), before the pipe call returns.
// Create one with New; it is closed by the test's cleanup.
type Driver struct {
	tb     testing.TB
	topo   *streams.Topology
	cfg    config
	clock  *clock
	topics map[string]*topic
	tasks  []*exec.Task
	// readers maps a real topic name to the tasks reading it, by partition
	// (global tasks under every partition).
	readers map[string][]*exec.Task
	global  []*exec.Task
	stores  map[storeKey]state.Store
	engine  *stateengine.Engine
	caches  map[streams.TaskID]*stateengine.Cache
	// committed holds each task's committed input offsets (Restart
	// resumes from them).
	committed map[streams.TaskID]map[streams.TopicPartition]streams.Offset
	// commitSeq is the seq of the last record when the last transaction
	// committed (ExactlyOnce): records the tasks wrote after it belong to
	// the open transaction.
	commitSeq int64
	// subParts is the task count of each sub-topology (changelog
	// partitions).
	subParts map[streams.SubtopologyID]int
	seq      int64
	// queued counts the records added to tasks and not yet processed.
	queued int
	// recent are topics of recent appends, a fast path for the usual
	// alternation of an input and an output topic; nextRecent is the slot
	// the next miss fills.
	recent     [4]*topic
	nextRecent int
	// slab holds the serialized records piped by input topics.
	slab   slab.Slab
	piped  int
	closed bool
}

type storeKey struct {
	name string
	task streams.TaskID
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// New returns a driver for a built topology. It fails the test if the
// topology cannot run (unbuilt, co-partitioning violated).
func New(tb testing.TB, topo *streams.Topology, opts ...Option) *Driver {
	tb.Helper()
	d, err := open(topo, opts...)
	if err != nil {
		tb.Fatalf("streamstest: %v", err)
		return nil
	}
	d.tb = tb
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

func open(topo *streams.Topology, opts ...Option) (_ *Driver, err error) {
	c := config{appID: "streamstest", partitions: map[string]int{}, defParts: 1, start: time.Unix(0, 0), commitEvery: 1}
	for _, o := range opts {
		o(&c)
	}
	if c.commitEvery < 1 {
		return nil, fmt.Errorf("streamstest: CommitEvery(%d): want n >= 1", c.commitEvery)
	}
	d := &Driver{topo: topo, cfg: c, clock: &clock{now: c.start}, topics: map[string]*topic{},
		readers: map[string][]*exec.Task{}, stores: map[storeKey]state.Store{},
		caches: map[streams.TaskID]*stateengine.Cache{}, subParts: map[streams.SubtopologyID]int{},
		committed: map[streams.TaskID]map[streams.TopicPartition]streams.Offset{}}
	if len(topo.Subtopologies()) == 0 {
		return nil, errors.New("streamstest: topology not built (call Build) or empty")
	}
	if err := d.openEngine(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = d.Close() // stop the engine's goroutines
		}
	}()
	ext := func(tp string) int {
		if n, ok := c.partitions[tp]; ok {
			return n
		}
		return c.defParts
	}
	internal := topo.InternalTopicPartitions(ext)
	parts := func(tp string) int {
		if n, ok := internal[tp]; ok {
			return n
		}
		return ext(tp)
	}
	if err := topo.CheckCopartitioning(parts); err != nil {
		return nil, err
	}
	for name, n := range internal {
		d.topic(streams.InternalTopicName(c.appID, name), n)
	}
	for _, st := range topo.Subtopologies() {
		n := 0
		for _, tp := range st.SourceTopics {
			n = max(n, parts(tp))
		}
		d.subParts[st.ID] = max(n, 1)
	}
	if err := d.startTasks(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Driver) openEngine() error {
	eng, err := stateengine.Open(stateengine.Options{Dir: "/", FS: vfs.NewMem(), MemoryBudget: 64 << 20, NoSync: true})
	if err != nil {
		return fmt.Errorf("streamstest: open state engine: %w", err)
	}
	d.engine = eng
	return nil
}

// startTasks creates and initializes a task per sub-topology and partition
// (opening the stores their processors use).
func (d *Driver) startTasks() error {
	topo, c := d.topo, d.cfg
	for _, st := range topo.Subtopologies() {
		n := d.subParts[st.ID]
		if st.Global {
			t, err := exec.NewTask(topo, streams.TaskID{Subtopology: st.ID, Partition: -1}, (*hooks)(d), (*hooks)(d), exec.Options{ApplicationID: c.appID, Clock: d.clock})
			if err != nil {
				return err
			}
			d.global = append(d.global, t)
			for _, real := range t.InputTopics() {
				d.readers[real] = append(d.readers[real], t)
			}
			continue
		}
		for p := 0; p < n; p++ {
			t, err := exec.NewTask(topo, streams.TaskID{Subtopology: st.ID, Partition: streams.Partition(p)}, (*hooks)(d), (*hooks)(d), exec.Options{ApplicationID: c.appID, Clock: d.clock})
			if err != nil {
				return err
			}
			d.tasks = append(d.tasks, t)
			for _, real := range t.InputTopics() {
				d.readers[real] = append(d.readers[real], t)
			}
		}
	}
	// Global tasks first: their stores must be filled before stream tasks
	// read them.
	for _, t := range append(slices.Clone(d.global), d.tasks...) {
		if err := t.Init(); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) topic(name string, n int) *topic {
	t, ok := d.topics[name]
	if !ok {
		if n <= 0 {
			n = d.partitionsOf(name)
		}
		t = &topic{name: name, parts: make([][]rec, n), ends: make([]streams.Offset, n)}
		d.topics[name] = t
	}
	return t
}

// checkInput refuses piping into a topic no task reads: its records would
// vanish.
func (d *Driver) checkInput(name string) error {
	if _, ok := d.readers[name]; ok {
		return nil
	}
	return fmt.Errorf("streamstest: the topology reads no topic %q; it reads %s", name, quoteList(slices.Sorted(maps.Keys(d.readers))))
}

// checkOutput refuses reading a topic the topology neither writes nor
// reads, unless a sink chooses its topic per record (any name may then be
// written).
func (d *Driver) checkOutput(name string) error {
	known := map[string]bool{}
	for n := range d.topics {
		known[n] = true
	}
	for n := range d.readers {
		known[n] = true
	}
	for _, n := range d.topo.Nodes() {
		if n.Kind != streams.SinkNode {
			continue
		}
		if len(n.Topics) == 0 {
			return nil // a topic chosen per record
		}
		for _, tp := range n.Topics {
			if n.Internal {
				tp = streams.InternalTopicName(d.cfg.appID, tp)
			}
			known[tp] = true
		}
	}
	if known[name] {
		return nil
	}
	return fmt.Errorf("streamstest: the topology writes no topic %q; its topics are %s", name, quoteList(slices.Sorted(maps.Keys(known))))
}

func quoteList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func (d *Driver) partitionsOf(name string) int {
	if n, ok := d.cfg.partitions[name]; ok {
		return n
	}
	return d.cfg.defParts
}

// hooks is the driver seen by its tasks: it implements exec.StoreProvider
// and exec.RecordSink without adding those methods to Driver's API.
type hooks Driver

// OpenStore implements exec.StoreProvider with the engine's in-memory
// stores.
func (h *hooks) OpenStore(task streams.TaskID, spec streams.StoreSpec) (state.Store, error) {
	d := (*Driver)(h)
	key := storeKey{name: spec.Name, task: task}
	if spec.Global {
		key.task = streams.TaskID{Partition: -1}
	}
	if s, ok := d.stores[key]; ok {
		return s, nil
	}
	s, err := d.openEngineStore(task, spec)
	if err != nil {
		return nil, err
	}
	d.stores[key] = s
	return s, nil
}

func (d *Driver) openEngineStore(task streams.TaskID, spec streams.StoreSpec) (state.Store, error) {
	sp := spec.Spec
	sp.InMemory = true
	if d.cfg.mapStores {
		sp.Unlogged, sp.Uncached = true, true
	}
	if spec.SourceTopic != "" {
		sp.Unlogged = true // the source topic is the changelog
	}
	part := int32(task.Partition)
	if spec.Global || part < 0 {
		part = 0
	}
	var cl state.ChangelogWriter
	// restoreFrom is the topic the store is restored from: its changelog,
	// or the source topic of a table.
	restoreFrom := spec.SourceTopic
	if restoreFrom != "" && d.topo.IsInternalTopic(restoreFrom) {
		restoreFrom = streams.InternalTopicName(d.cfg.appID, restoreFrom)
	}
	if spec.Global {
		// NB: a global store spans every partition of its topic; Restart
		// refills it by replaying the whole topic through the global task.
		restoreFrom = ""
	}
	if !sp.Unlogged {
		restoreFrom = state.ChangelogTopicName(d.cfg.appID, sp.Name)
		d.topic(restoreFrom, d.subParts[task.Subtopology])
		cl = &changelog{d: d, topic: restoreFrom, partition: streams.Partition(part), last: state.NoOffset}
	}
	ctx := context.Background()
	cache := d.caches[task]
	if cache == nil && !sp.Uncached {
		cache = d.engine.NewCache()
		d.caches[task] = cache
	}
	var (
		s   state.Store
		err error
	)
	switch sp.Kind {
	case state.KindWindow:
		var ws state.WindowStore
		if ws, err = d.engine.OpenWindow(ctx, sp, part, cl); err == nil && !sp.Uncached {
			ws, err = cache.Window(ws, nil)
		}
		s = ws
	case state.KindSession:
		var ss state.SessionStore
		if ss, err = d.engine.OpenSession(ctx, sp, part, cl); err == nil && !sp.Uncached {
			ss, err = cache.Session(ss, nil)
		}
		s = ss
	default:
		var kv state.KeyValueStore
		if kv, err = d.engine.OpenKeyValue(ctx, sp, part, cl); err == nil && !sp.Uncached {
			kv, err = cache.KeyValue(kv, nil)
		}
		s = kv
	}
	if err != nil {
		return nil, err
	}
	// A store opened after Restart comes back from what its changelog
	// holds, as the runtime restores it.
	if t, ok := d.topics[restoreFrom]; ok && restoreFrom != "" && int(part) < len(t.ends) && t.ends[part] > 0 {
		if _, err := stateengine.Restore(ctx, s, &changelogReader{t: t, partition: part, discard: d.cfg.discard}); err != nil {
			return nil, fmt.Errorf("streamstest: restore store %q of task %s from %q: %w", sp.Name, task, restoreFrom, err)
		}
	}
	return s, nil
}

// changelogReader reads a partition of a driver topic for a restore.
type changelogReader struct {
	t         *topic
	partition int32
	discard   bool
}

func (r *changelogReader) Topic() string    { return r.t.name }
func (r *changelogReader) Partition() int32 { return r.partition }
func (r *changelogReader) EndOffset(context.Context) (state.Offset, error) {
	return state.Offset(r.t.ends[r.partition]), nil
}

func (r *changelogReader) Read(_ context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	recs := r.t.parts[r.partition]
	if r.discard {
		return fmt.Errorf("streamstest: topic %q was not kept (DiscardRecords): cannot restore from it", r.t.name)
	}
	var batch []state.ChangelogRecord
	for _, rc := range recs {
		if o := state.Offset(rc.Offset); o >= from && o < to {
			batch = append(batch, state.ChangelogRecord{Offset: o, Key: rc.Key, Value: rc.Value})
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return fn(batch)
}

// changelog writes a store's changes to its changelog topic in the driver.
type changelog struct {
	d         *Driver
	topic     string
	partition streams.Partition
	last      state.Offset
}

func (c *changelog) Append(key, value []byte) error {
	// NB: the store never modifies what it appends (state.ChangelogWriter).
	r := streams.RawRecord{Topic: c.topic, Partition: c.partition, Stable: true, Key: key, Value: value, Timestamp: c.d.clock.now}
	c.d.append(&r, c.d.cfg.eos)
	c.last = state.Offset(r.Offset)
	return nil
}

func (c *changelog) Flush(context.Context) (state.Offset, error) { return c.last, nil }

// Send implements exec.RecordSink: it appends the record to its topic and
// queues it for the tasks reading that topic.
// It sets r's partition and offset (r is the emitting sink's scratch
// record, see exec.RecordSink).
func (h *hooks) Send(r *streams.RawRecord) error {
	d := (*Driver)(h)
	if r.PartitionFor != nil {
		n := len(d.topic(r.Topic, 0).parts)
		p := r.PartitionFor(n)
		if p < 0 || int(p) >= n {
			return fmt.Errorf("streamstest: partitioner put a record of %q in partition %d; the topic has %d", r.Topic, p, n)
		}
		r.Partition, r.PartitionFor = p, nil
	}
	d.append(r, d.cfg.eos)
	return nil
}

// append adds r to its topic; txn says it belongs to the open transaction.
func (d *Driver) append(r *streams.RawRecord, txn bool) {
	var t *topic
	for _, rt := range d.recent {
		if rt != nil && rt.name == r.Topic {
			t = rt
			break
		}
	}
	if t == nil {
		// NB: replaced in turn, not kept in recency order: reordering on
		// every hit cost more than it saved.
		t = d.topic(r.Topic, 0)
		d.recent[d.nextRecent] = t
		d.nextRecent = (d.nextRecent + 1) % len(d.recent)
	}
	if !t.resolved {
		t.readers, t.resolved = d.readers[r.Topic], true
	}
	n := len(t.parts)
	p := r.Partition
	if p == streams.AnyPartition {
		p = 0
		// NB: a topic of one partition needs no hash to choose it.
		if r.Key != nil && n > 1 {
			p = streams.KeyPartition(r.Key, n)
		}
	}
	if int(p) >= n || p < 0 {
		p = p % streams.Partition(n)
	}
	r.Partition = p
	r.Offset = t.ends[p]
	t.ends[p]++
	d.seq++
	if !d.cfg.discard {
		e := rec{RawRecord: *r, seq: d.seq, txn: txn}
		t.parts[p] = append(t.parts[p], e)
		if txn {
			t.pending = append(t.pending, e)
		} else {
			t.all = append(t.all, e)
		}
	}
	for _, task := range t.readers {
		if task.ID().Partition == p || task.ID().Partition < 0 {
			// AddOne only fails for topics the task does not read.
			if task.AddOne(streams.TopicPartition{Topic: r.Topic, Partition: p}, r) == nil {
				d.queued++
			}
		}
	}
}

// run processes until no task has queued records, global tasks first.
func (d *Driver) run() error {
	for d.queued > 0 {
		progress := false
		for _, ts := range [2][]*exec.Task{d.global, d.tasks} {
			for _, t := range ts {
				// NB: d.queued, not a last Process reporting false, ends
				// the loop: that saves a call per task and record.
				for d.queued > 0 {
					ok, err := t.Process()
					if ok {
						d.queued--
						progress = true
					}
					if err != nil {
						return err
					}
					if !ok {
						break
					}
				}
			}
		}
		if !progress {
			panic(fmt.Sprintf("streamstest: %d records counted as queued, none in any task", d.queued))
		}
	}
	return nil
}

// commit commits every task that needs it. A commit flushes the write-back
// caches, so aggregations forward then: what they send to other tasks
// (through repartition topics) is processed and committed in turn, until
// nothing is left, as the runtime would before its next commit.
func (d *Driver) commit() error {
	// NB: under ExactlyOnce the offsets are committed with the
	// transaction, so only once every task has flushed.
	offsets := map[streams.TaskID]map[streams.TopicPartition]streams.Offset{}
	for {
		committed := false
		for _, t := range append(slices.Clone(d.global), d.tasks...) {
			if t.CommitNeeded() {
				if err := t.Commit(context.Background()); err != nil {
					return err
				}
				offsets[t.ID()] = t.Offsets()
				committed = true
			}
		}
		if !committed {
			maps.Copy(d.committed, offsets)
			d.commitTxn()
			return nil
		}
		if err := d.run(); err != nil {
			return err
		}
	}
}

// pipeRaw appends a serialized record to an input topic and processes
// everything it causes.
func (d *Driver) pipeRaw(r *streams.RawRecord) error {
	if d.closed {
		return errors.New("streamstest: driver closed")
	}
	d.append(r, false)
	if err := d.run(); err != nil {
		return err
	}
	d.piped++
	if d.piped%d.cfg.commitEvery == 0 {
		return d.commit()
	}
	return nil
}

// Commit commits every task now, as the runtime does each commit interval:
// caches are flushed, so cached aggregations forward their latest result
// per key, and what that causes downstream is processed. With the default
// CommitEvery(1) the driver commits after each piped record anyway.
func (d *Driver) Commit() {
	d.tb.Helper()
	if d.closed {
		d.fail(errors.New("driver closed"))
	}
	if err := d.commit(); err != nil {
		d.fail(err)
	}
}

// Restart simulates the application crashing and starting again (or its
// tasks moving to another instance): the tasks are dropped without a
// commit, with every store and write-back cache; new tasks restore their
// stores from the changelog topics (tables from their source topics) as the
// runtime does, then process again every input record after the offsets
// last committed, as a consumer group resumes. Records written to output
// topics stay; what was emitted after the last commit is emitted again
// (at-least-once), so restart right after a commit (CommitEvery(1), the
// default, or Driver.Commit) to see each result once, or run ExactlyOnce,
// under which Restart aborts what was written since the last commit. Restart needs
// logged stores (not MapStores) and the records of the topics read again
// (not DiscardRecords).
func (d *Driver) Restart() {
	d.tb.Helper()
	if err := d.restart(); err != nil {
		d.fail(err)
	}
}

// commitTxn commits the open transaction (ExactlyOnce): its records
// become visible in the output topics.
func (d *Driver) commitTxn() {
	if !d.cfg.eos {
		return
	}
	for _, t := range d.topics {
		t.all = append(t.all, t.pending...)
		t.pending = nil
	}
	d.commitSeq = d.seq
}

// abortTxn aborts the open transaction (ExactlyOnce): its records leave
// every topic; their offsets stay used.
func (d *Driver) abortTxn() {
	if !d.cfg.eos {
		return
	}
	for _, t := range d.topics {
		t.pending = nil
		for p, recs := range t.parts {
			t.parts[p] = slices.DeleteFunc(recs, func(r rec) bool { return r.txn && r.seq > d.commitSeq })
		}
	}
	// What the tasks queued from the aborted records goes with the
	// tasks (restart drops them).
}

// Abort aborts the open transaction under ExactlyOnce, as a failed commit
// or a rebalance does in the runtime: the records the tasks wrote since the
// last commit are dropped from every topic, the tasks restart from their
// stores' committed changelog records, and the input after the committed
// offsets is processed again. It fails the test without ExactlyOnce.
func (d *Driver) Abort() {
	d.tb.Helper()
	if !d.cfg.eos {
		d.fail(errors.New("Abort needs ExactlyOnce"))
		return
	}
	if err := d.restart(); err != nil {
		d.fail(err)
	}
}

func (d *Driver) restart() error {
	if d.closed {
		return errors.New("driver closed")
	}
	if d.cfg.mapStores {
		return errors.New("Restart needs logged stores, not MapStores")
	}
	d.abortTxn()
	var errs []error
	for _, t := range append(slices.Clone(d.global), d.tasks...) {
		errs = append(errs, t.Close())
	}
	for _, s := range d.stores {
		errs = append(errs, s.Close())
	}
	errs = append(errs, d.engine.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop tasks: %w", err)
	}
	d.engine, d.tasks, d.global, d.queued = nil, nil, nil, 0
	d.stores, d.caches = map[storeKey]state.Store{}, map[streams.TaskID]*stateengine.Cache{}
	d.readers, d.recent, d.nextRecent = map[string][]*exec.Task{}, [4]*topic{}, 0
	for _, t := range d.topics {
		t.readers, t.resolved = nil, false
	}
	if err := d.openEngine(); err != nil {
		return err
	}
	if err := d.startTasks(); err != nil {
		return err
	}
	// Queue the input not committed, global tasks from the start.
	for _, t := range append(slices.Clone(d.global), d.tasks...) {
		global := t.ID().Partition < 0
		for _, name := range t.InputTopics() {
			tp, ok := d.topics[name]
			if !ok {
				continue
			}
			for p := range tp.parts {
				if !global && streams.Partition(p) != t.ID().Partition {
					continue
				}
				from := streams.Offset(0)
				if !global {
					from = d.committed[t.ID()][streams.TopicPartition{Topic: name, Partition: streams.Partition(p)}]
				}
				if from >= tp.ends[p] {
					continue
				}
				if d.cfg.discard {
					return fmt.Errorf("topic %q was not kept (DiscardRecords): cannot read it again", name)
				}
				var recs []streams.RawRecord
				for _, r := range tp.parts[p] {
					if r.Offset >= from {
						recs = append(recs, r.RawRecord)
					}
				}
				if err := t.Add(streams.TopicPartition{Topic: name, Partition: streams.Partition(p)}, recs); err != nil {
					return err
				}
				d.queued += len(recs)
			}
		}
	}
	if err := d.run(); err != nil {
		return err
	}
	return d.commit()
}

// AdvanceWallClock moves the driver's wall clock by dt and fires the
// wall-clock punctuators that are due, processing what they emit.
func (d *Driver) AdvanceWallClock(dt time.Duration) error {
	d.clock.now = d.clock.now.Add(dt)
	for _, t := range append(slices.Clone(d.global), d.tasks...) {
		if err := t.Punctuate(d.clock.now); err != nil {
			return err
		}
		if err := d.run(); err != nil {
			return err
		}
	}
	return d.commit()
}

// WallClockTime returns the driver's wall-clock time.
func (d *Driver) WallClockTime() time.Time { return d.clock.now }

// Metrics are the driver's counters, summed over its tasks.
type Metrics struct {
	// Processed counts input records processed (records of repartition
	// topics included).
	Processed int64
	// Punctuations counts punctuator calls.
	Punctuations int64
	// Dropped counts records dropped on purpose, by processor node and
	// reason: d.Metrics().Dropped[streams.Drop{Node: "count", Reason:
	// streams.DropLate}] is how many records the node "count" dropped as
	// late for their windows.
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

// Metrics sums the tasks' counters.
func (d *Driver) Metrics() Metrics {
	m := Metrics{Dropped: map[streams.Drop]int64{}}
	for _, t := range append(slices.Clone(d.global), d.tasks...) {
		tm := t.Metrics()
		m.Processed += tm.Processed
		m.Punctuations += tm.Punctuations
		for k, v := range tm.Dropped {
			m.Dropped[k] += v
		}
	}
	return m
}

// Tasks returns the ids of the driver's tasks.
func (d *Driver) Tasks() []streams.TaskID {
	var out []streams.TaskID
	for _, t := range append(slices.Clone(d.global), d.tasks...) {
		out = append(out, t.ID())
	}
	return out
}

// Topics returns the names of every topic the driver holds, sorted.
func (d *Driver) Topics() []string {
	out := make([]string, 0, len(d.topics))
	for n := range d.topics {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// storeInstances returns the instances of a store, by task partition.
func (d *Driver) storeInstances(name string) ([]state.Store, error) {
	spec, ok := d.topo.Store(name)
	if !ok {
		return nil, fmt.Errorf("streamstest: no store %q in the topology", name)
	}
	var out []state.Store
	if spec.Global && len(d.global) > 0 {
		// Every task gets the one shared instance of a global store.
		s, err := d.global[0].Store(name)
		if err != nil {
			return nil, err
		}
		return []state.Store{s.(state.Store)}, nil
	}
	for _, t := range d.tasks {
		if s, ok := d.stores[storeKey{name: name, task: t.ID()}]; ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// Close closes the tasks. It is idempotent.
func (d *Driver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, t := range append(slices.Clone(d.global), d.tasks...) {
		errs = append(errs, t.Close())
	}
	for _, s := range d.stores {
		errs = append(errs, s.Close())
	}
	if d.engine != nil {
		errs = append(errs, d.engine.Close())
	}
	return errors.Join(errs...)
}

func (d *Driver) fail(err error) {
	d.tb.Helper()
	if strings.HasPrefix(err.Error(), "streamstest: ") {
		d.tb.Fatalf("%v", err)
		return
	}
	d.tb.Fatalf("streamstest: %v", err)
}
