package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/runtime/internal/assign"
	"github.com/weir-dev/weir/runtime/internal/client"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// A standby store applies what it read every standbyApplyEvery (or once
// it holds standbyApplyBytes): each apply is one state.Restore, which on
// Pebble ingests one SSTable, so applying per fetch would litter level 0.
// Nothing waits for the apply: a handover (release) applies what was read
// first, and a crash of this instance only makes the standby read again
// from its checkpoint.
const (
	standbyApplyEvery = 5 * time.Second
	standbyApplyBytes = 2 << 20
)

// standbys keeps warm copies of the stores of this instance's standby
// tasks. One goroutine (run) owns the work: it opens the stores of the
// standby tasks the last assignment gave, reads their changelog partitions
// with a consumer of its own (outside the group, so the group never waits
// for it), and applies what it read through state.Restore, which also
// commits the changelog offset reached as the store's checkpoint. When a
// standby task becomes active here, release hands its stores over (applied
// and closed) first, so the task's own restore replays only the tail that
// the standby had not read yet.
type standbys struct {
	a *App
	// cl consumes the changelog partitions of the open standby stores.
	cl *kgo.Client

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{} // buffered(1): the wanted set changed
	done   chan struct{} // closed when run returns

	mu sync.Mutex
	// want is the standby set of the last assignment, without this
	// instance's active tasks. Guarded by mu.
	want map[streams.TaskID]bool
	// tasks are the standby tasks whose stores are open. Guarded by mu.
	tasks map[streams.TaskID]*standbyTask
	// byTP maps a changelog partition to the standby store it feeds.
	// Guarded by mu.
	byTP map[streams.TopicPartition]*standbyStore
	// local is the tasks this instance holds state for, as last reported
	// (active and standby). Guarded by mu.
	local []assign.TaskID
	// lastApply is when pending records were last applied. Guarded by mu.
	lastApply time.Time
}

type standbyTask struct {
	id     streams.TaskID
	label  string
	stores []*standbyStore
}

// standbyStore is one store of a standby task and its changelog partition.
type standbyStore struct {
	s     state.Store
	tp    streams.TopicPartition
	label string
	// next is the changelog offset the store reflects: records below it
	// are in the store (applied and checkpointed) or skipped as stale.
	next state.Offset
	// hw is the last high watermark fetched of the changelog partition.
	hw int64
	// pending are records read and not applied yet, from next on.
	pending      []state.ChangelogRecord
	pendingBytes int
}

// newStandbys starts the standby goroutine; stop with close.
func newStandbys(a *App) (*standbys, error) {
	cl, err := kgo.NewClient(append(a.clientOpts(),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("runtime: standby consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &standbys{
		a: a, cl: cl, ctx: ctx, cancel: cancel,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		want:  map[streams.TaskID]bool{},
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
		s.closeTaskLocked(t, false)
	}
	s.cl.Close()
}

// localTasks reports the tasks this instance holds state for, for the
// assignor (called by franz-go on every join).
func (s *standbys) localTasks() []assign.TaskID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.local)
}

// assigned records the standby tasks of a new assignment; active are the
// instance's active tasks, which never run as standbys here.
func (s *standbys) assigned(standby []assign.TaskID, active []streams.TaskID) {
	s.mu.Lock()
	s.want = map[streams.TaskID]bool{}
	isActive := map[streams.TaskID]bool{}
	local := make([]assign.TaskID, 0, len(standby)+len(active))
	for _, id := range active {
		isActive[id] = true
		local = append(local, assign.TaskID{Subtopology: int(id.Subtopology), Partition: int32(id.Partition)})
	}
	for _, t := range standby {
		id := streams.TaskID{Subtopology: streams.SubtopologyID(t.Subtopology), Partition: streams.Partition(t.Partition)}
		if !isActive[id] {
			s.want[id] = true
			local = append(local, t)
		}
	}
	s.local = local
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// release hands the stores of ids over to active tasks: whatever was read
// is applied and checkpointed, and the stores are closed. It returns once
// none of them is open here.
func (s *standbys) release(ids []streams.TaskID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.want, id)
		if t, ok := s.tasks[id]; ok {
			s.closeTaskLocked(t, true)
		}
	}
}

// run is the standby goroutine: open and close stores as the wanted set
// changes, read the changelogs, apply.
func (s *standbys) run() {
	defer close(s.done)
	interval := min(s.a.opts.CommitInterval, time.Second)
	for {
		s.mu.Lock()
		s.syncLocked()
		idle := len(s.byTP) == 0
		s.mu.Unlock()
		if idle {
			select {
			case <-s.ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		pctx, cancel := context.WithTimeout(s.ctx, interval)
		fs := s.cl.PollFetches(pctx)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.addLocked(fs)
		if time.Since(s.lastApply) >= standbyApplyEvery {
			s.applyAllLocked()
		}
		s.mu.Unlock()
	}
}

// syncLocked closes the standby tasks no longer wanted and opens the new
// ones.
func (s *standbys) syncLocked() {
	for id, t := range s.tasks {
		if !s.want[id] {
			s.closeTaskLocked(t, true)
		}
	}
	for id := range s.want {
		if _, ok := s.tasks[id]; ok {
			continue
		}
		t, err := s.openTaskLocked(id)
		if err != nil {
			if s.ctx.Err() == nil {
				s.a.log.Warn("standby task not kept", "task", id.String(), "err", err)
			}
			delete(s.want, id) // until the next assignment
			continue
		}
		s.tasks[id] = t
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
		if spec.Global || spec.InMemory || topic == "" {
			continue // nothing to keep warm on disk
		}
		ss, err := s.openStore(spec.Spec, topic, int32(id.Partition))
		if err != nil {
			for _, o := range t.stores {
				_ = o.s.Close()
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
		cp, err := state.Checkpoint(st)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		if cp <= end {
			return &standbyStore{s: st, tp: streams.TopicPartition{Topic: topic, Partition: streams.Partition(part)}, next: cp, hw: -1}, nil
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
func openUncached(ctx context.Context, eng *state.Engine, spec state.Spec, part int32) (state.Store, error) {
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
// stores, after applying what was read if apply is set.
func (s *standbys) closeTaskLocked(t *standbyTask, apply bool) {
	rm := map[string][]int32{}
	for _, ss := range t.stores {
		if apply {
			s.applyLocked(ss)
		}
		s.a.m.restoreLeft.DeleteLabelValues(ss.label, ss.s.Name())
		if err := ss.s.Close(); err != nil {
			s.a.log.Warn("close standby store", "task", t.label, "store", ss.s.Name(), "err", err)
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
			if !errors.Is(p.Err, context.Canceled) && !errors.Is(p.Err, context.DeadlineExceeded) {
				s.a.log.Warn("standby fetch error", "topic", p.Topic, "partition", p.Partition, "err", p.Err)
			}
			return
		}
		ss.hw = p.HighWatermark
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

func (s *standbys) applyAllLocked() {
	for _, ss := range s.byTP {
		s.applyLocked(ss)
	}
	s.lastApply = time.Now()
}

// applyLocked applies a store's pending records through state.Restore,
// which commits them with the offset after the last as the checkpoint.
func (s *standbys) applyLocked(ss *standbyStore) {
	if len(ss.pending) == 0 {
		return
	}
	last := ss.pending[len(ss.pending)-1].Offset
	res, err := state.Restore(s.ctx, ss.s, &pendingReader{ss: ss, end: last + 1})
	if err != nil {
		// The store keeps its last checkpoint; reading resumes there when
		// the task is opened again (here or as an active task).
		s.a.log.Warn("standby apply failed; the task restores from its checkpoint when it runs", "store", ss.s.Name(), "changelog", ss.tp.Topic,
			"partition", ss.tp.Partition, "err", err)
		if cp, cerr := state.Checkpoint(ss.s); cerr == nil && cp > ss.next {
			ss.next = cp
		}
	} else {
		ss.next = res.To
		s.a.m.restored.WithLabelValues(ss.label, ss.s.Name()).Add(float64(res.Records))
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
	s.a.m.restoreLeft.WithLabelValues(ss.label, ss.s.Name()).Set(float64(max(ss.hw-int64(read), 0)))
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

// localTasks reports the tasks this instance holds state for (nil without
// standbys), for the balancer.
func (a *App) localTasks() []assign.TaskID {
	if a.standby == nil {
		return nil
	}
	return a.standby.localTasks()
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
