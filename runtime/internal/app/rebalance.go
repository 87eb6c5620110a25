package app

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/internal/exec"
	"github.com/weir-dev/weir/runtime/internal/client"
	"github.com/weir-dev/weir/runtime/internal/decide"
	"github.com/weir-dev/weir/streams"
)

// tasksOf groups partitions into the tasks they belong to.
func (a *App) tasksOf(parts map[string][]int32) map[streams.TaskID][]streams.TopicPartition {
	out := map[streams.TaskID][]streams.TopicPartition{}
	for topic, ps := range parts {
		st, ok := a.plan.Sources[topic]
		if !ok {
			continue
		}
		for _, p := range ps {
			id := streams.TaskID{Subtopology: st, Partition: streams.Partition(p)}
			out[id] = append(out[id], streams.TopicPartition{Topic: topic, Partition: streams.Partition(p)})
		}
	}
	return out
}

// onAssigned creates and restores the new tasks. It runs on franz-go's
// group goroutine; fetching of the new partitions starts when it returns.
func (a *App) onAssigned(ctx context.Context, assigned map[string][]int32) {
	start := time.Now()
	defer func() { a.m.rebalanceDur.WithLabelValues("assigned").Observe(time.Since(start).Seconds()) }()
	defer a.updateStandbys()
	byTask := a.tasksOf(assigned)
	ids := make([]streams.TaskID, 0, len(byTask))
	for id := range byTask {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].Subtopology != ids[j].Subtopology {
			return ids[i].Subtopology < ids[j].Subtopology
		}
		return ids[i].Partition < ids[j].Partition
	})
	a.releaseStandbys(ids)
	for _, id := range ids {
		tps := byTask[id]
		a.mu.Lock()
		t, exists := a.tasks[id]
		if exists {
			for _, tp := range tps {
				a.byTP[tp] = t
			}
			a.sm.Step(time.Now(), decide.InputsAdded{Task: id, Inputs: tps, Next: t.exec.Offsets(), Buffered: t.exec.Buffered()})
			a.mu.Unlock()
			continue
		}
		a.mu.Unlock()
		t, err := a.openTask(ctx, id, tps)
		if err != nil {
			a.mu.Lock()
			a.failLocked(err)
			a.mu.Unlock()
			a.log.Error("task failed to start", "task", id.String(), "err", err)
			return
		}
		a.mu.Lock()
		a.addTaskLocked(t, tps)
		a.mu.Unlock()
		if a.persistentTask(id) {
			a.local.add(id)
		}
		a.log.Info("task started", "task", id.String(), "inputs", fmt.Sprint(tps))
	}
}

// addTaskLocked makes t, opened by openTask, a running task reading tps.
func (a *App) addTaskLocked(t *task, tps []streams.TopicPartition) {
	a.tasks[t.id] = t
	a.sm.Step(time.Now(), decide.TaskStarted{Task: t.id, Inputs: tps})
	t.sm = a.sm.Task(t.id)
	for _, tp := range tps {
		a.byTP[tp] = t
	}
	a.m.tasks.Set(float64(len(a.tasks)))
}

// openTask creates a task, restores its stores and initializes it.
func (a *App) openTask(ctx context.Context, id streams.TaskID, tps []streams.TopicPartition) (*task, error) {
	t := &task{
		id:    id,
		label: id.String(),
		// NB: every output record's promise releases its room in the
		// gate and hands the record back.
		inflight: client.NewInflightAck(func(r *kgo.Record, err error) { a.gate.Release(err); client.FreeRecord(r) }),
		dropped:  map[streams.Drop]int64{},
	}
	et, err := exec.NewTask(a.topo, id, stores{a: a, t: t, ctx: ctx}, sink{a: a, t: t}, exec.Options{ApplicationID: a.opts.ApplicationID})
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	t.exec = et
	if err := et.Init(); err != nil {
		for _, s := range t.stores {
			_ = s.Close()
		}
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return t, nil
}

// onRevoked commits and closes the tasks that move away.
func (a *App) onRevoked(ctx context.Context, revoked map[string][]int32) {
	start := time.Now()
	defer func() { a.m.rebalanceDur.WithLabelValues("revoked").Observe(time.Since(start).Seconds()) }()
	a.mu.Lock()
	defer a.mu.Unlock()
	var ts []*task
	for id := range a.tasksOf(revoked) {
		if t, ok := a.tasks[id]; ok {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return
	}
	// NB: under ExactlyOnce the open transaction cannot commit now (the
	// transactional session aborts it once partitions were revoked during
	// it): the revoked tasks close without committing, the transaction's
	// end rolls the others back (commitTxnLocked), and the partitions'
	// next owners read what the last committed transaction left.
	if a.fatal == nil && a.sess == nil {
		if err := a.commitLocked(ctx, ts); err != nil {
			a.failLocked(err)
			a.log.Error("commit of revoked tasks failed", "err", err)
		}
	}
	for _, t := range ts {
		a.closeTaskLocked(t)
	}
}

// onLost closes tasks whose partitions this instance lost (session
// expired): nothing can be committed, another instance owns them now.
func (a *App) onLost(ctx context.Context, lost map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range a.tasksOf(lost) {
		if t, ok := a.tasks[id]; ok {
			a.log.Warn("task lost", "task", t.label)
			a.closeTaskLocked(t)
		}
	}
}

func (a *App) closeTaskLocked(t *task) {
	if err := t.exec.Close(); err != nil {
		a.log.Warn("close task", "task", t.label, "err", err)
	}
	for _, s := range t.stores {
		if err := s.Close(); err != nil {
			a.log.Warn("close store", "task", t.label, "store", s.Name(), "err", err)
		}
	}
	delete(a.tasks, t.id)
	for _, tp := range t.sm.Inputs() {
		if a.byTP[tp] == t {
			delete(a.byTP, tp)
		}
	}
	// NB: franz-go keeps a partition paused until it is resumed, across
	// revocations: sm resumes those the task left paused, one of which
	// would never be fetched again should the task come back here.
	a.sm.Step(time.Now(), decide.TaskStopped{Task: t.id})
	a.applyLocked(a.sm.Ready(), nil)
	a.m.tasks.Set(float64(len(a.tasks)))
	a.log.Info("task stopped", "task", t.label)
}

// commitError returns the first error of an OffsetCommit.
func commitError(resp *kmsg.OffsetCommitResponse, err error) error {
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}
