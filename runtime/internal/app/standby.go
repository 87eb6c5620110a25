package app

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/runtime/internal/assign"
	"github.com/weir-dev/weir/runtime/internal/client"
	"github.com/weir-dev/weir/runtime/internal/decide"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// A standby store applies what it read every decide.StandbyApplyEvery
// (or once it holds standbyApplyBytes): each apply is one stateengine.Restore,
// which on Pebble ingests one SSTable, so applying per fetch would litter
// level 0. Nothing waits for the apply: a handover (release) applies what
// was read first, and a crash of this instance only makes the standby
// read again from its checkpoint.
const standbyApplyBytes = 2 << 20

// standbys keeps warm copies of the stores of this instance's standby
// tasks. One goroutine (run) owns the work: it opens the stores of the
// standby tasks the last assignment gave, reads their changelog partitions
// with a consumer of its own (outside the group, so the group never waits
// for it), and applies what it read through stateengine.Restore, which also
// commits the changelog offset reached as the store's checkpoint. When a
// standby task becomes active here, release hands its stores over (applied
// and closed) first, so the task's own restore replays only the tail that
// the standby had not read yet.
//
// An in-memory store (a Suppress buffer, or a store the topology asks to
// keep in memory) has no state across an open: the active task's store
// starts empty and restores its whole changelog. An in-memory key-value
// store's standby copy is therefore not a store but its changelog
// compacted by key (the latest record of each key, values copied out of
// the fetch buffers: what a full restore would leave), kept up to date
// the same way; release hands the records over (handoff), and the active
// task's restore applies them before it reads, from the broker, only the
// tail after them. The copy costs about the memory the store itself
// takes. In-memory window and session stores have no standby copy: their
// changelogs keep every window and deletion, and a copy would grow
// without the store's retention; the active task restores them from the
// broker.
type standbys struct {
	a *App
	// cl consumes the changelog partitions of the open standby stores.
	cl *kgo.Client

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // buffered(1): the wanted set changed
	done   chan struct{} // closed when run returns

	mu sync.Mutex
	// sm decides which standby tasks to keep open, which to hand over
	// and when to apply. Guarded by mu. Invariant: the tasks it holds
	// open are those of tasks.
	sm *decide.Standbys
	// tasks are the standby tasks whose stores are open. Guarded by mu.
	tasks map[streams.TaskID]*standbyTask
	// byTP maps a changelog partition to the standby store it feeds.
	// Guarded by mu.
	byTP map[streams.TopicPartition]*standbyStore
	// handoff are the compacted changelogs of in-memory stores released
	// to active tasks, by changelog partition, until the task's restore
	// takes them (or the next assignment drops them). Guarded by mu.
	handoff map[streams.TopicPartition]*memHandoff
}

type standbyTask struct {
	id     streams.TaskID
	label  string
	stores []*standbyStore
}

// standbyStore is one store of a standby task and its changelog partition.
type standbyStore struct {
	// s is the store; nil for an in-memory store, which mem stands for.
	s     state.Store
	name  string
	tp    streams.TopicPartition
	label string
	// mem is an in-memory store's changelog compacted by key: the latest
	// record of each key below next. nil for other stores.
	mem map[string]memRecord
	// next is the changelog offset the store reflects: records below it
	// are in the store (applied and checkpointed) or skipped as stale.
	next state.Offset
	// hw is the last high watermark fetched of the changelog partition.
	hw int64
	// pending are records read and not applied yet, from next on.
	pending      []state.ChangelogRecord
	pendingBytes int
}

// memRecord is one changelog record kept for an in-memory store.
type memRecord struct {
	offset state.Offset
	value  []byte
}

// memHandoff is an in-memory store's compacted changelog handed to the
// active task: records sorted by offset, every one below next.
type memHandoff struct {
	records []state.ChangelogRecord
	next    state.Offset
}

// newStandbys starts the standby goroutine; stop with close.
func newStandbys(a *App) (*standbys, error) {
	opts := append(a.clientOpts(),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if a.opts.ExactlyOnce {
		// A standby copy holds only what committed transactions wrote.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("runtime: standby consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &standbys{
		a: a, cl: cl, ctx: ctx, cancel: cancel,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		sm:    decide.NewStandbys(),
		tasks: map[streams.TaskID]*standbyTask{},
		byTP:  map[streams.TopicPartition]*standbyStore{},
	}
	go s.run()
	return s, nil
}

// close stops the goroutine, applies what was read and closes the stores
// and the consumer.
func (s *standbys) close() {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tasks {
		s.closeTaskLocked(t, false, false)
	}
	s.cl.Close()
}

// assigned records the standby tasks of a new assignment; active are the
// instance's active tasks, which never run as standbys here.
func (s *standbys) assigned(standby []assign.TaskID, active []streams.TaskID) {
	ids := make([]streams.TaskID, len(standby))
	for i, t := range standby {
		ids[i] = streams.TaskID{Subtopology: streams.SubtopologyID(t.Subtopology), Partition: streams.Partition(t.Partition)}
	}
	s.mu.Lock()
	s.handoff = nil // the tasks that were to take them have opened
	s.sm.Step(decide.StandbysAssigned{Standby: ids, Active: active})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// release hands the stores of ids over to active tasks: whatever was read
// is applied and checkpointed, and the stores are closed; in-memory
// stores' records wait in handoff for the tasks' restores. It returns once
// none of them is open here.
func (s *standbys) release(ids []streams.TaskID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sm.Step(decide.StandbysReleased{Tasks: ids})
	s.applyReadyLocked(s.sm.Ready())
}

// takeHandoff returns (and forgets) the records a released standby left
// for the in-memory store of changelog partition tp.
func (s *standbys) takeHandoff(tp streams.TopicPartition) *memHandoff {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.handoff[tp]
	delete(s.handoff, tp)
	return h
}

// run is the standby goroutine: open and close stores as sm decides,
// read the changelogs, apply.
func (s *standbys) run() {
	defer close(s.done)
	p := pollLoop{
		kind:  "standby ",
		cl:    s.cl,
		every: min(s.a.opts.CommitInterval, time.Second),
		log:   s.a.log,
		mu:    &s.mu,
		prepareLocked: func() (idle bool) {
			s.sm.Tick(time.Now())
			s.applyReadyLocked(s.sm.Ready())
			return len(s.byTP) == 0
		},
		wake:       s.wake,
		stepLocked: func(fs kgo.Fetches, _ time.Duration) error { s.addLocked(fs); return nil },
	}
	_ = p.run(s.ctx) // its steps never fail
}

// applyReadyLocked carries out what sm decided: apply what the open
// stores read, close the tasks no longer wanted or handed over, open the
// new ones.
func (s *standbys) applyReadyLocked(rd decide.StandbyReady) {
	if rd.Apply {
		s.applyAllLocked()
	}
	for _, c := range rd.Close {
		if t, ok := s.tasks[c.Task]; ok {
			s.closeTaskLocked(t, true, c.Handover)
		}
	}
	for _, id := range rd.Open {
		t, err := s.openTaskLocked(id)
		if err != nil {
			if s.ctx.Err() == nil {
				s.a.log.Warn("standby task not kept", "task", id.String(), "err", err)
			}
			s.sm.Step(decide.StandbyOpenFailed{Task: id})
			continue
		}
		s.tasks[id] = t
		s.sm.Step(decide.StandbyOpened{Task: id})
		if s.a.persistentTask(id) {
			s.a.local.add(id)
		}
	}
}

// openTaskLocked opens the stores of a standby task and starts reading
// their changelogs from their checkpoints.
func (s *standbys) openTaskLocked(id streams.TaskID) (*standbyTask, error) {
	a := s.a
	t := &standbyTask{id: id, label: id.String() + "-standby"}
	var st *streams.Subtopology
	for _, sub := range a.topo.Subtopologies() {
		if sub.ID == id.Subtopology {
			st = &sub
			break
		}
	}
	if st == nil {
		return nil, fmt.Errorf("runtime: standby task %s: no such sub-topology", id)
	}
	add := map[string]map[int32]kgo.Offset{}
	for _, name := range st.Stores {
		spec, _ := a.topo.Store(name)
		topic := a.plan.Changelogs[name]
		if spec.Global || topic == "" {
			continue // nothing to keep warm
		}
		if spec.InMemory {
			if spec.Kind != state.KindKeyValue {
				// NB: a window or session changelog keeps every key
				// (each window is one) and its deletions: a copy of
				// it would grow without the store's retention. The
				// active task restores such a store from the broker.
				continue
			}
			ss := &standbyStore{name: name, label: t.label, hw: -1, mem: map[string]memRecord{},
				tp: streams.TopicPartition{Topic: topic, Partition: id.Partition}}
			t.stores = append(t.stores, ss)
			if add[topic] == nil {
				add[topic] = map[int32]kgo.Offset{}
			}
			add[topic][int32(id.Partition)] = kgo.NewOffset().AtStart()
			continue
		}
		ss, err := s.openStore(spec.Spec, topic, int32(id.Partition))
		if err != nil {
			for _, o := range t.stores {
				if o.s != nil {
					_ = o.s.Close()
				}
			}
			return nil, err
		}
		ss.label = t.label
		t.stores = append(t.stores, ss)
		if add[topic] == nil {
			add[topic] = map[int32]kgo.Offset{}
		}
		add[topic][int32(id.Partition)] = kgo.NewOffset().At(int64(ss.next))
	}
	for _, ss := range t.stores {
		s.byTP[ss.tp] = ss
	}
	s.cl.AddConsumePartitions(add)
	a.log.Info("standby task started", "task", id.String(), "stores", len(t.stores))
	return t, nil
}

// openStore opens one store read-only (no changelog writer: a standby
// never writes) and finds its checkpoint. A store whose checkpoint lies
// beyond the changelog's end (the topic was recreated) is dropped and
// rebuilt from the start.
func (s *standbys) openStore(spec state.Spec, topic string, part int32) (*standbyStore, error) {
	a := s.a
	spec.Unlogged = true
	end, err := client.EndOffset(s.ctx, a.adm, topic, part)
	if err != nil {
		return nil, err
	}
	for range 2 {
		st, err := openUncached(s.ctx, a.eng, spec, part)
		if err != nil {
			return nil, fmt.Errorf("runtime: open standby store %q partition %d: %w", spec.Name, part, err)
		}
		cp, err := stateengine.Checkpoint(st)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		if cp <= end {
			return &standbyStore{s: st, name: spec.Name, tp: streams.TopicPartition{Topic: topic, Partition: streams.Partition(part)}, next: cp, hw: -1}, nil
		}
		a.log.Warn("standby store claims a changelog offset beyond the changelog end; dropping it", "store", spec.Name,
			"partition", part, "checkpoint", cp, "end", end)
		_ = st.Close()
		if err := a.eng.Drop(spec.Name, part); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("runtime: standby store %q partition %d: checkpoint still beyond the changelog end after a drop", spec.Name, part)
}

// openUncached opens a store of the engine without cache or changelog
// writer (spec must be unlogged).
func openUncached(ctx context.Context, eng *stateengine.Engine, spec state.Spec, part int32) (state.Store, error) {
	switch spec.Kind {
	case state.KindKeyValue:
		return eng.OpenKeyValue(ctx, spec, part, nil)
	case state.KindWindow:
		return eng.OpenWindow(ctx, spec, part, nil)
	case state.KindSession:
		return eng.OpenSession(ctx, spec, part, nil)
	}
	return nil, fmt.Errorf("runtime: store %q: unknown kind %v", spec.Name, spec.Kind)
}

// closeTaskLocked stops reading the task's changelogs and closes its
// stores, after applying what was read if apply is set. With handover set
// (the task becomes active here), in-memory stores' records are left in
// handoff.
func (s *standbys) closeTaskLocked(t *standbyTask, apply, handover bool) {
	rm := map[string][]int32{}
	for _, ss := range t.stores {
		s.a.m.restoreLeft.DeleteLabelValues(ss.label, ss.name)
		if ss.mem != nil {
			if handover && len(ss.mem) > 0 {
				if s.handoff == nil {
					s.handoff = map[streams.TopicPartition]*memHandoff{}
				}
				s.handoff[ss.tp] = ss.handoffRecords()
			}
		} else {
			if apply {
				s.applyLocked(ss)
			}
			if err := ss.s.Close(); err != nil {
				s.a.log.Warn("close standby store", "task", t.label, "store", ss.name, "err", err)
			}
		}
		if s.byTP[ss.tp] == ss {
			delete(s.byTP, ss.tp)
		}
		rm[ss.tp.Topic] = append(rm[ss.tp.Topic], int32(ss.tp.Partition))
	}
	if len(rm) > 0 {
		s.cl.RemoveConsumePartitions(rm)
	}
	delete(s.tasks, t.id)
	s.a.log.Info("standby task stopped", "task", t.id.String())
}

// addLocked queues fetched records on their stores. Records below a
// store's position are stale (fetched before the store was reopened at a
// later checkpoint) and skipped: the log's record at an offset never
// changes, so those from the position on continue the store exactly.
func (s *standbys) addLocked(fs kgo.Fetches) {
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		ss := s.byTP[streams.TopicPartition{Topic: p.Topic, Partition: streams.Partition(p.Partition)}]
		if ss == nil {
			return
		}
		if p.Err != nil {
			return // the poll loop logged it
		}
		ss.hw = p.HighWatermark
		if ss.mem != nil {
			s.addMemLocked(ss, p.Records)
			return
		}
		from := ss.next
		if n := len(ss.pending); n > 0 {
			from = ss.pending[n-1].Offset + 1
		}
		for _, r := range p.Records {
			if state.Offset(r.Offset) < from {
				continue
			}
			ss.pending = append(ss.pending, state.ChangelogRecord{Offset: state.Offset(r.Offset), Key: r.Key, Value: r.Value})
			ss.pendingBytes += len(r.Key) + len(r.Value)
		}
		if ss.pendingBytes >= standbyApplyBytes {
			s.applyLocked(ss)
		}
		s.reportLocked(ss)
	})
}

// addMemLocked folds fetched records into an in-memory store's compacted
// changelog. Records below next were read already (a refetch) and are
// skipped.
func (s *standbys) addMemLocked(ss *standbyStore, recs []*kgo.Record) {
	n := 0
	for _, r := range recs {
		off := state.Offset(r.Offset)
		if off < ss.next {
			continue
		}
		if r.Value == nil {
			delete(ss.mem, string(r.Key))
		} else {
			// NB: a copy: r.Value points into the fetch buffer, which
			// the copy would keep alive as long as the key lives.
			ss.mem[string(r.Key)] = memRecord{offset: off, value: bytes.Clone(r.Value)}
		}
		ss.next = off + 1
		n++
	}
	if n > 0 {
		s.a.m.restored.WithLabelValues(ss.label, ss.name).Add(float64(n))
	}
	s.reportLocked(ss)
}

// handoffRecords returns an in-memory store's compacted changelog sorted
// by offset, for the active task's restore.
func (ss *standbyStore) handoffRecords() *memHandoff {
	recs := make([]state.ChangelogRecord, 0, len(ss.mem))
	for k, r := range ss.mem {
		recs = append(recs, state.ChangelogRecord{Offset: r.offset, Key: []byte(k), Value: r.value})
	}
	slices.SortFunc(recs, func(a, b state.ChangelogRecord) int { return cmp.Compare(a.Offset, b.Offset) })
	return &memHandoff{records: recs, next: ss.next}
}

func (s *standbys) applyAllLocked() {
	for _, ss := range s.byTP {
		if ss.mem == nil {
			s.applyLocked(ss)
		}
	}
}

// applyLocked applies a store's pending records through stateengine.Restore,
// which commits them with the offset after the last as the checkpoint.
func (s *standbys) applyLocked(ss *standbyStore) {
	if len(ss.pending) == 0 {
		return
	}
	last := ss.pending[len(ss.pending)-1].Offset
	res, err := stateengine.Restore(s.ctx, ss.s, &pendingReader{ss: ss, end: last + 1})
	if err != nil {
		// The store keeps its last checkpoint; reading resumes there when
		// the task is opened again (here or as an active task).
		s.a.log.Warn("standby apply failed; the task restores from its checkpoint when it runs", "store", ss.name, "changelog", ss.tp.Topic,
			"partition", ss.tp.Partition, "err", err)
		if cp, cerr := stateengine.Checkpoint(ss.s); cerr == nil && cp > ss.next {
			ss.next = cp
		}
	} else {
		ss.next = res.To
		s.a.m.restored.WithLabelValues(ss.label, ss.name).Add(float64(res.Records))
	}
	ss.pending = ss.pending[:0]
	ss.pendingBytes = 0
	s.reportLocked(ss)
}

// reportLocked sets the store's remaining-records gauge: how far the
// standby's reading is behind its changelog (records read and not yet
// applied count as read: a handover applies them first).
func (s *standbys) reportLocked(ss *standbyStore) {
	if ss.hw < 0 {
		return
	}
	read := ss.next
	if n := len(ss.pending); n > 0 {
		read = ss.pending[n-1].Offset + 1
	}
	s.a.m.restoreLeft.WithLabelValues(ss.label, ss.name).Set(float64(max(ss.hw-int64(read), 0)))
}

// pendingReader is the state.ChangelogReader through which a standby
// store's pending records are applied: its end is the offset after the
// last pending record.
type pendingReader struct {
	ss  *standbyStore
	end state.Offset
}

func (r *pendingReader) Topic() string    { return r.ss.tp.Topic }
func (r *pendingReader) Partition() int32 { return int32(r.ss.tp.Partition) }

func (r *pendingReader) EndOffset(context.Context) (state.Offset, error) { return r.end, nil }

func (r *pendingReader) Read(_ context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	recs := r.ss.pending
	byOffset := func(c state.ChangelogRecord, o state.Offset) int { return cmp.Compare(c.Offset, o) }
	i, _ := slices.BinarySearchFunc(recs, from, byOffset)
	j, _ := slices.BinarySearchFunc(recs, to, byOffset)
	if i >= j {
		return nil
	}
	return fn(recs[i:j])
}

// handoffReader restores an in-memory store from the records its standby
// copy handed over, then reads the rest (from the offset after them) from
// the changelog through inner.
type handoffReader struct {
	state.ChangelogReader
	h *memHandoff
}

// handoffBatch is how many handed-over records one callback gets.
const handoffBatch = 4096

func (r handoffReader) Read(ctx context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	if to < r.h.next {
		// The changelog ends below what the standby read: it was
		// recreated meanwhile, and the records handed over are of the old
		// one. Read it all.
		return r.ChangelogReader.Read(ctx, from, to, fn)
	}
	recs := r.h.records
	byOffset := func(c state.ChangelogRecord, o state.Offset) int { return cmp.Compare(c.Offset, o) }
	i, _ := slices.BinarySearchFunc(recs, from, byOffset)
	j, _ := slices.BinarySearchFunc(recs, r.h.next, byOffset)
	for i < j {
		k := min(i+handoffBatch, j)
		if err := fn(recs[i:k]); err != nil {
			return err
		}
		i = k
	}
	if to == r.h.next {
		return nil
	}
	return r.ChangelogReader.Read(ctx, max(from, r.h.next), to, fn)
}

// standbyHandoff returns the reader a task's restore of the store whose
// changelog partition is topic/part reads: r, or, when a standby copy of an
// in-memory store handed records over, a reader that applies those first
// and reads only the rest through r. handed is how many records were
// handed over.
func (a *App) standbyHandoff(r state.ChangelogReader, topic string, part int32) (_ state.ChangelogReader, handed int) {
	if a.standby == nil {
		return r, 0
	}
	h := a.standby.takeHandoff(streams.TopicPartition{Topic: topic, Partition: streams.Partition(part)})
	if h == nil {
		return r, 0
	}
	return handoffReader{ChangelogReader: r, h: h}, len(h.records)
}

// startStandbys starts keeping standby tasks warm when the application
// asks for standby replicas.
func (a *App) startStandbys() error {
	if a.opts.Standbys == 0 {
		return nil
	}
	s, err := newStandbys(a)
	if err != nil {
		return err
	}
	a.standby = s
	return nil
}

// releaseStandbys closes the standby copies of tasks about to run here as
// active tasks (onAssigned calls it before it opens them).
func (a *App) releaseStandbys(ids []streams.TaskID) {
	if a.standby != nil {
		a.standby.release(ids)
	}
}

// updateStandbys passes the standby tasks of the assignment just received
// to the standby goroutine (onAssigned calls it last).
func (a *App) updateStandbys() {
	if a.standby == nil {
		return
	}
	a.mu.Lock()
	active := make([]streams.TaskID, 0, len(a.tasks))
	for id := range a.tasks {
		active = append(active, id)
	}
	a.mu.Unlock()
	a.standby.assigned(a.balancer.Standbys(), active)
}

// closeStandbys stops the standby goroutine and closes its stores.
func (a *App) closeStandbys() {
	if a.standby != nil {
		a.standby.close()
	}
}
