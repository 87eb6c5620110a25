package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/atomicfile"
	"github.com/weir-dev/weir/internal/exec"
	"github.com/weir-dev/weir/runtime/internal/client"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// globalBatch bounds the records a global task processes while it holds
// the global lock, so that stream tasks reading global stores wait little.
const globalBatch = 500

// globalIdle is how long a bootstrap waits for records it expects before
// it takes the partitions as read (records below the end offset can be
// missing: compaction, transaction markers).
const globalIdle = 2 * time.Second

// ErrGlobalReadOnly is returned when a stream task writes to a global
// store: only the store's global sub-topology writes it.
var ErrGlobalReadOnly = errors.New("runtime: global stores are read-only for stream tasks")

// globals runs the global sub-topologies: every instance reads every
// partition of their topics, with a consumer of its own outside the group,
// into its global stores. Start bootstraps them to the end offsets found
// at start; the group client starts only afterwards, so no task processes
// before the global stores are complete. Then a goroutine keeps reading
// and applying updates, and commits every CommitInterval: flush the stores,
// then write the offsets reached to a checkpoint file beside the state. The
// source topic is the stores' changelog: a restart reads from the
// checkpoint, so it replays only the tail (records after the checkpoint are
// applied again after a crash; a table's puts and deletes converge to the
// same state).
type globals struct {
	a  *App
	cl *kgo.Client

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns; nil before run starts

	// mu serializes the global tasks' processing and commits with the
	// stream tasks' reads of global stores. Lock order: App.mu, then mu.
	mu sync.Mutex
	// tasks are the global tasks. Guarded by mu.
	tasks []*globalTask
	// lastCommit is when the global tasks last committed. Only run touches
	// it.
	lastCommit time.Time
}

// globalTask is one global sub-topology running over all partitions of its
// topics.
type globalTask struct {
	id     streams.TaskID
	label  string
	exec   *exec.Task
	stores map[string]state.Store
	// file is the checkpoint file of the task's offsets.
	file string
	// next is the next offset to read per partition. Guarded by
	// globals.mu.
	next map[streams.TopicPartition]streams.Offset
	// hw is the last high watermark fetched per partition. Guarded by
	// globals.mu.
	hw map[streams.TopicPartition]int64
	// dirty is set when records were processed since the last commit.
	dirty bool
	// inflight counts dead-lettered records not yet acknowledged; a
	// commit waits for them.
	inflight *client.Inflight
}

// startGlobals bootstraps the global stores of the topology, if it has
// any, and starts the goroutine that keeps them updated.
func (a *App) startGlobals(ctx context.Context) error {
	if len(a.plan.Globals) == 0 {
		return nil
	}
	cctx, cancel := context.WithCancel(context.Background())
	g := &globals{a: a, ctx: cctx, cancel: cancel}
	a.global = g
	subs := map[streams.SubtopologyID][]string{}
	for tp, st := range a.plan.Globals {
		subs[st] = append(subs[st], tp)
	}
	ids := make([]streams.SubtopologyID, 0, len(subs))
	for id := range subs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	ends, err := g.endOffsets(ctx)
	if err != nil {
		return err
	}
	consume := map[string]map[int32]kgo.Offset{}
	for _, id := range ids {
		t, err := g.openTask(id, ends)
		if err != nil {
			return err
		}
		g.tasks = append(g.tasks, t)
		for tp, o := range t.next {
			if consume[tp.Topic] == nil {
				consume[tp.Topic] = map[int32]kgo.Offset{}
			}
			consume[tp.Topic][int32(tp.Partition)] = kgo.NewOffset().At(int64(o))
		}
	}
	g.cl, err = kgo.NewClient(append(a.clientOpts(),
		kgo.ConsumePartitions(consume),
		kgo.RecordPartitioner(client.Partitioner{}),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return fmt.Errorf("runtime: global consumer: %w", err)
	}
	if err := g.bootstrap(ctx, ends); err != nil {
		return err
	}
	g.done = make(chan struct{})
	go g.run()
	return nil
}

// endOffsets returns the end offset of every partition of the global
// topics.
func (g *globals) endOffsets(ctx context.Context) (map[streams.TopicPartition]streams.Offset, error) {
	out := map[streams.TopicPartition]streams.Offset{}
	for tp := range g.a.plan.Globals {
		for p := range g.a.plan.Partitions[tp] {
			end, err := client.EndOffset(ctx, g.a.adm, tp, p)
			if err != nil {
				return nil, err
			}
			out[streams.TopicPartition{Topic: tp, Partition: streams.Partition(p)}] = streams.Offset(end)
		}
	}
	return out, nil
}

// openTask creates the global task of sub-topology id and opens its stores
// at the offsets of its checkpoint file. Without a usable checkpoint (none,
// unreadable, offsets beyond the topic's end, or an in-memory store) the
// stores are dropped and read from the start.
func (g *globals) openTask(id streams.SubtopologyID, ends map[streams.TopicPartition]streams.Offset) (*globalTask, error) {
	a := g.a
	tid := streams.TaskID{Subtopology: id, Partition: -1}
	t := &globalTask{
		id:       tid,
		label:    fmt.Sprintf("global-%d", id),
		stores:   map[string]state.Store{},
		file:     filepath.Join(a.opts.StateDir, "global", fmt.Sprintf("%s-%d.offsets", a.opts.ApplicationID, id)),
		next:     map[streams.TopicPartition]streams.Offset{},
		hw:       map[streams.TopicPartition]int64{},
		inflight: client.NewInflight(),
	}
	var st streams.Subtopology
	for _, s := range a.topo.Subtopologies() {
		if s.ID == id {
			st = s
		}
	}
	cp, err := readGlobalCheckpoint(t.file)
	var why string
	if err != nil {
		why = err.Error()
	}
	for tp, end := range ends {
		if a.plan.Globals[tp.Topic] != id {
			continue
		}
		o, ok := cp[tp]
		switch {
		case why != "":
		case !ok:
			why = fmt.Sprintf("no offset for %s/%d", tp.Topic, tp.Partition)
		case o > end:
			why = fmt.Sprintf("offset %d of %s/%d is beyond its end %d", o, tp.Topic, tp.Partition, end)
		}
		t.next[tp] = o
	}
	for _, name := range st.Stores {
		spec, _ := a.topo.Store(name)
		if spec.InMemory && why == "" {
			why = fmt.Sprintf("store %q is in memory", name)
		}
		if spec.Kind != state.KindKeyValue {
			return nil, fmt.Errorf("runtime: global store %q: the runtime supports key-value global stores only, not %v", name, spec.Kind)
		}
	}
	if why != "" {
		if !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("global stores read from the start", "task", t.label, "why", why)
		}
		for _, name := range st.Stores {
			if err := a.eng.Drop(name, -1); err != nil {
				return nil, fmt.Errorf("runtime: global store %q: %w", name, err)
			}
		}
		for tp := range t.next {
			t.next[tp] = 0
		}
	}
	et, err := exec.NewTask(a.topo, tid, globalProvider{g: g, t: t}, globalSink{t.label}, exec.Options{ApplicationID: a.opts.ApplicationID})
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	t.exec = et
	if err := et.Init(); err != nil {
		g.closeStores(t)
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return t, nil
}

// bootstrap reads every global partition up to ends and commits.
func (g *globals) bootstrap(ctx context.Context, ends map[streams.TopicPartition]streams.Offset) error {
	start := time.Now()
	left := func() int64 {
		var n int64
		for _, t := range g.tasks {
			for tp, o := range t.next {
				n += max(int64(ends[tp]-o), 0)
			}
		}
		return n
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reportLocked(ends)
	lastRecord := time.Now()
	for left() > 0 {
		g.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := g.cl.PollFetches(pctx)
		cancel()
		g.mu.Lock()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("runtime: global stores bootstrap: %w", err)
		}
		_ = fetchErrors(fs, "global ", g.a.log, nil)
		n, err := g.processLocked(fs)
		if err != nil {
			return err
		}
		g.reportLocked(ends)
		if n > 0 {
			lastRecord = time.Now()
		} else if time.Since(lastRecord) >= globalIdle {
			g.a.log.Warn("global stores bootstrap: records below the end offsets never arrived; taking them as gone", "left", left())
			break
		}
	}
	if err := g.commitLocked(ctx); err != nil {
		return err
	}
	g.a.log.Info("global stores bootstrapped", "took", time.Since(start))
	return nil
}

// run keeps the global stores updated until close.
func (g *globals) run() {
	defer close(g.done)
	g.lastCommit = time.Now()
	p := pollLoop{
		kind:       "global ",
		cl:         g.cl,
		every:      200 * time.Millisecond,
		log:        g.a.log,
		mu:         &g.mu,
		stepLocked: func(fs kgo.Fetches, _ time.Duration) error { return g.stepLocked(fs) },
	}
	if err := p.run(g.ctx); err != nil && g.ctx.Err() == nil {
		g.a.mu.Lock()
		g.a.failLocked(err)
		g.a.mu.Unlock()
		g.a.log.Error("global stores failed", "err", err)
	}
}

// stepLocked processes one poll's records, runs the wall-clock
// punctuators and commits when due.
func (g *globals) stepLocked(fs kgo.Fetches) error {
	_, err := g.processLocked(fs)
	if err == nil {
		err = g.punctuateLocked(time.Now())
	}
	g.reportLocked(nil)
	if err == nil && time.Since(g.lastCommit) >= g.a.opts.CommitInterval {
		err = g.commitLocked(g.ctx)
		g.lastCommit = time.Now()
	}
	return err
}

// processLocked feeds fetched records to the global tasks and processes
// them, a batch at a time (it unlocks between batches so that stream
// tasks can read). It returns how many records it processed.
func (g *globals) processLocked(fs kgo.Fetches) (int, error) {
	byTopic := map[string]*globalTask{}
	for _, t := range g.tasks {
		for tp := range t.next {
			byTopic[tp.Topic] = t
		}
	}
	var err error
	n := 0
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		t := byTopic[p.Topic]
		if t == nil || err != nil {
			return
		}
		if p.Err != nil {
			return // the poll loop (or bootstrap) logged it
		}
		tp := streams.TopicPartition{Topic: p.Topic, Partition: streams.Partition(p.Partition)}
		t.hw[tp] = p.HighWatermark
		recs := make([]streams.RawRecord, 0, len(p.Records))
		for _, r := range p.Records {
			if streams.Offset(r.Offset) < t.next[tp] {
				continue
			}
			rr := streams.RawRecord{
				Topic: r.Topic, Partition: tp.Partition, Offset: streams.Offset(r.Offset),
				Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
			}
			for _, h := range r.Headers {
				rr.Headers = append(rr.Headers, streams.Header{Key: h.Key, Value: h.Value})
			}
			recs = append(recs, rr)
		}
		if len(recs) == 0 {
			return
		}
		if err = t.exec.Add(tp, recs); err != nil {
			err = fmt.Errorf("runtime: global task %s: %w", t.label, err)
			return
		}
		t.next[tp] = recs[len(recs)-1].Offset + 1
		t.dirty = true
		for _, st := range t.stores {
			g.a.m.restored.WithLabelValues(t.label, st.Name()).Add(float64(len(recs)))
		}
		n += len(recs)
	})
	if err != nil {
		return n, err
	}
	for _, t := range g.tasks {
		for i := 0; ; i++ {
			if i > 0 && i%globalBatch == 0 {
				g.mu.Unlock()
				g.mu.Lock()
			}
			ok, perr := t.exec.Process()
			if perr != nil {
				if herr := g.handleLocked(t, perr); herr != nil {
					return n, fmt.Errorf("runtime: global task %s: %w", t.label, herr)
				}
				continue
			}
			if !ok {
				break
			}
		}
	}
	return n, nil
}

// punctuateLocked runs the global tasks' wall-clock punctuators that are
// due at now (checked once per poll, as for stream tasks; stream-time
// punctuators run as records are processed). What they write is
// committed with the task's next commit.
func (g *globals) punctuateLocked(now time.Time) error {
	for _, t := range g.tasks {
		if err := t.exec.Punctuate(now); err != nil {
			return fmt.Errorf("runtime: global task %s: %w", t.label, err)
		}
		if t.exec.CommitNeeded() {
			t.dirty = true
		}
	}
	return nil
}

// handleLocked applies the deserialization handler to a global record a
// source could not deserialize (as the stream tasks do; dead letters go
// through the global consumer's client, which also produces); any other
// error is returned.
func (g *globals) handleLocked(t *globalTask, err error) error {
	return g.a.handleDeserialization(err, "global ", func(rec *kgo.Record) {
		b := t.inflight.Add()
		g.cl.Produce(g.ctx, rec, func(_ *kgo.Record, err error) { b.Done(err) })
	})
}

// reportLocked sets the remaining-records gauge of each global store: the
// records between the position and the end (ends, or the last high
// watermarks fetched when ends is nil).
func (g *globals) reportLocked(ends map[streams.TopicPartition]streams.Offset) {
	for _, t := range g.tasks {
		var left int64
		for tp, o := range t.next {
			end := t.hw[tp]
			if ends != nil {
				end = int64(ends[tp])
			}
			left += max(end-int64(o), 0)
		}
		for _, st := range t.stores {
			g.a.m.restoreLeft.WithLabelValues(t.label, st.Name()).Set(float64(left))
		}
	}
}

// commitLocked flushes the global stores and then records the offsets
// reached in each task's checkpoint file.
func (g *globals) commitLocked(ctx context.Context) error {
	for _, t := range g.tasks {
		if !t.dirty {
			continue
		}
		if err := t.exec.Commit(ctx); err != nil {
			return fmt.Errorf("runtime: commit global task %s: %w", t.label, err)
		}
		if err := t.inflight.Wait(ctx); err != nil {
			return fmt.Errorf("runtime: commit global task %s: dead letters not acknowledged: %w", t.label, err)
		}
		if err := writeGlobalCheckpoint(t.file, t.next); err != nil {
			return err
		}
		t.dirty = false
	}
	return nil
}

// offsets returns the next offset to read of every global partition.
func (g *globals) offsets() map[streams.TopicPartition]streams.Offset {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[streams.TopicPartition]streams.Offset{}
	for _, t := range g.tasks {
		for tp, o := range t.next {
			out[tp] = o
		}
	}
	return out
}

// close stops the goroutine; commit says whether to commit first (a clean
// stop) or not (an abandoned instance). It closes the stores.
func (g *globals) close(commit bool) {
	g.cancel()
	if g.done != nil {
		<-g.done
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if commit {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := g.commitLocked(ctx); err != nil {
			g.a.log.Warn("commit global stores", "err", err)
		}
		cancel()
	}
	for _, t := range g.tasks {
		if err := t.exec.Close(); err != nil {
			g.a.log.Warn("close global task", "task", t.label, "err", err)
		}
		g.closeStores(t)
	}
	g.tasks = nil
	if g.cl != nil {
		g.cl.Close()
	}
}

func (g *globals) closeStores(t *globalTask) {
	for _, s := range t.stores {
		if err := s.Close(); err != nil {
			g.a.log.Warn("close global store", "store", s.Name(), "err", err)
		}
	}
}

// globalProvider opens a global task's stores: unlogged (the source topic
// is the changelog), uncached (stream tasks read every update at once).
type globalProvider struct {
	g *globals
	t *globalTask
}

func (p globalProvider) OpenStore(_ streams.TaskID, spec streams.StoreSpec) (state.Store, error) {
	sp := spec.Spec
	sp.Unlogged = true
	s, err := openUncached(p.g.ctx, p.g.a.eng, sp, -1)
	if err != nil {
		return nil, fmt.Errorf("runtime: open global store %q: %w", spec.Name, err)
	}
	p.t.stores[spec.Name] = s
	return s, nil
}

// globalSink refuses output: a global sub-topology only fills its stores.
type globalSink struct{ label string }

func (s globalSink) Send(r *streams.RawRecord) error {
	return fmt.Errorf("runtime: global task %s: a global sub-topology cannot write to topic %q", s.label, r.Topic)
}

// globalStore returns the view of global store name that stream tasks
// read.
func (a *App) globalStore(name string) (state.Store, error) {
	g := a.global
	if g != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, t := range g.tasks {
			if s, ok := t.stores[name]; ok {
				if kv, ok := s.(state.KeyValueStore); ok {
					return &globalKV{mu: &g.mu, kv: kv}, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("runtime: global store %q is not open (is its global table in the topology?)", name)
}

// closeGlobals stops the global tasks (committing unless abandoned).
func (a *App) closeGlobals() {
	if a.global == nil {
		return
	}
	a.mu.Lock()
	commit := !a.abandoned && a.fatal == nil
	a.mu.Unlock()
	a.global.close(commit)
}

// GlobalOffsets returns the next offset to read of every partition of the
// global topics (for tests: a global store has applied every record
// below); nil before the instance has started (bootstrapped).
func (a *App) GlobalOffsets() map[streams.TopicPartition]streams.Offset {
	select {
	case <-a.started:
	default:
		return nil
	}
	if a.global == nil {
		return nil
	}
	return a.global.offsets()
}

// globalKV is the read-only view of a global key-value store that stream
// tasks get. Every call takes the global lock, which the global task holds
// while it applies updates; iterators are read whole under the lock (so a
// stream task never holds it between calls) and values are copied.
type globalKV struct {
	mu *sync.Mutex
	kv state.KeyValueStore
}

var _ state.KeyValueStore = (*globalKV)(nil)

func (s *globalKV) Name() string                { return s.kv.Name() }
func (s *globalKV) Flush(context.Context) error { return nil } // the global task flushes
func (s *globalKV) Close() error                { return nil } // the global task closes

func (s *globalKV) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.kv.Get(key)
	if v != nil {
		v = append([]byte(nil), v...)
	}
	return v, err
}

func (s *globalKV) Put(key, value []byte) error {
	return fmt.Errorf("%w: put to %q", ErrGlobalReadOnly, s.kv.Name())
}

func (s *globalKV) PutIfAbsent(key, value []byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: put to %q", ErrGlobalReadOnly, s.kv.Name())
}

func (s *globalKV) Delete(key []byte) error {
	return fmt.Errorf("%w: delete from %q", ErrGlobalReadOnly, s.kv.Name())
}

func (s *globalKV) Range(from, to []byte, reverse bool) (state.Iterator, error) {
	return s.read(func() (state.Iterator, error) { return s.kv.Range(from, to, reverse) })
}

func (s *globalKV) Prefix(prefix []byte, reverse bool) (state.Iterator, error) {
	return s.read(func() (state.Iterator, error) { return s.kv.Prefix(prefix, reverse) })
}

func (s *globalKV) All(reverse bool) (state.Iterator, error) {
	return s.read(func() (state.Iterator, error) { return s.kv.All(reverse) })
}

func (s *globalKV) ApproximateCount() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kv.ApproximateCount()
}

// read runs open under the lock and copies the whole iteration.
func (s *globalKV) read(open func() (state.Iterator, error)) (state.Iterator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := open()
	if err != nil {
		return nil, err
	}
	out := &sliceIter{i: -1}
	for it.Next() {
		out.kvs = append(out.kvs, [2][]byte{append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)})
	}
	err = it.Err()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sliceIter iterates over copied key-value pairs.
type sliceIter struct {
	kvs [][2][]byte
	i   int
}

func (it *sliceIter) Next() bool {
	if it.i+1 >= len(it.kvs) {
		it.i = len(it.kvs)
		return false
	}
	it.i++
	return true
}
func (it *sliceIter) Key() []byte   { return it.kvs[it.i][0] }
func (it *sliceIter) Value() []byte { return it.kvs[it.i][1] }
func (it *sliceIter) Err() error    { return nil }
func (it *sliceIter) Close() error  { return nil }

// The checkpoint file of a global task holds the next offset to read per
// partition, as text:
//
//	weir-global-offsets 1
//	<topic> <partition> <offset>
//	...
//
// It is written to a temporary file, synced and renamed over the old one.
const globalCheckpointHeader = "weir-global-offsets 1"

// encodeGlobalCheckpoint returns the file's contents for offsets, sorted.
func encodeGlobalCheckpoint(offsets map[streams.TopicPartition]streams.Offset) []byte {
	tps := make([]streams.TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	b := []byte(globalCheckpointHeader + "\n")
	for _, tp := range tps {
		b = append(b, tp.Topic...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(tp.Partition), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(offsets[tp]), 10)
		b = append(b, '\n')
	}
	return b
}

// errBadGlobalCheckpoint is wrapped by every decode error of a global
// checkpoint file.
var errBadGlobalCheckpoint = errors.New("runtime: malformed global checkpoint")

// decodeGlobalCheckpoint parses a checkpoint file. Topics are Kafka topic
// names (no spaces); partitions and offsets are non-negative; a partition
// appears once; every line ends with a newline.
func decodeGlobalCheckpoint(b []byte) (map[streams.TopicPartition]streams.Offset, error) {
	text, ok := strings.CutSuffix(string(b), "\n")
	if !ok {
		return nil, fmt.Errorf("%w: not newline-terminated", errBadGlobalCheckpoint)
	}
	lines := strings.Split(text, "\n")
	if lines[0] != globalCheckpointHeader {
		return nil, fmt.Errorf("%w: bad header", errBadGlobalCheckpoint)
	}
	out := map[streams.TopicPartition]streams.Offset{}
	for i, l := range lines[1:] {
		f := strings.Split(l, " ")
		if len(f) != 3 || f[0] == "" {
			return nil, fmt.Errorf("%w: line %d: want topic, partition, offset", errBadGlobalCheckpoint, i+2)
		}
		p, err := strconv.ParseInt(f[1], 10, 32)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("%w: line %d: bad partition %q", errBadGlobalCheckpoint, i+2, f[1])
		}
		o, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || o < 0 {
			return nil, fmt.Errorf("%w: line %d: bad offset %q", errBadGlobalCheckpoint, i+2, f[2])
		}
		tp := streams.TopicPartition{Topic: f[0], Partition: streams.Partition(p)}
		if _, dup := out[tp]; dup {
			return nil, fmt.Errorf("%w: line %d: %s/%d twice", errBadGlobalCheckpoint, i+2, f[0], p)
		}
		out[tp] = streams.Offset(o)
	}
	return out, nil
}

// readGlobalCheckpoint reads and decodes a checkpoint file.
func readGlobalCheckpoint(file string) (map[streams.TopicPartition]streams.Offset, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return decodeGlobalCheckpoint(b)
}

// writeGlobalCheckpoint replaces file with offsets, durably.
func writeGlobalCheckpoint(file string, offsets map[streams.TopicPartition]streams.Offset) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("runtime: global checkpoint: %w", err)
	}
	if err := atomicfile.Write(file, encodeGlobalCheckpoint(offsets)); err != nil {
		return fmt.Errorf("runtime: global checkpoint %s: %w", file, err)
	}
	return nil
}
