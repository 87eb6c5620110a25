package app

import (
	"slices"
	"sync"

	"github.com/weir-dev/weir/runtime/internal/assign"
	"github.com/weir-dev/weir/streams"
)

// localState is the set of tasks this instance holds local state for: the
// balancer advertises it on every join (in the group subscription's user
// data), and the assignor prefers a member holding a task's state when it
// places the task, so that the task restores only a changelog tail. It
// starts with the tasks whose stores the state directory holds with a
// checkpoint (scanLocalState, before the group client starts: the first
// join after a restart already tells), and grows with every task opened
// here, active or standby, that has a persistent store. Tasks whose
// stores are all in memory are never added: they hold nothing once the
// task moves away. Tasks are not removed when they move away: their
// stores stay in the state directory (the runtime never deletes them),
// and their checkpoints still spare most of a restore.
type localState struct {
	mu sync.Mutex
	// tasks is the set. Guarded by mu.
	tasks map[assign.TaskID]bool
}

// add records that this instance holds state for id.
func (l *localState) add(id streams.TaskID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tasks == nil {
		l.tasks = map[assign.TaskID]bool{}
	}
	l.tasks[assign.TaskID{Subtopology: int(id.Subtopology), Partition: int32(id.Partition)}] = true
}

// list returns the set, sorted.
func (l *localState) list() []assign.TaskID {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]assign.TaskID, 0, len(l.tasks))
	for t := range l.tasks {
		out = append(out, t)
	}
	slices.SortFunc(out, assign.TaskID.Compare)
	return out
}

// scanLocalState adds the tasks whose stores the state engine holds with a
// checkpoint past 0 (something was restored or committed) to a.local.
// Global stores belong to no task; in-memory stores hold nothing across a
// restart.
func (a *App) scanLocalState() error {
	persisted, err := a.eng.Persisted()
	if err != nil {
		return err
	}
	subOf := map[string][]streams.SubtopologyID{}
	for _, sub := range a.topo.Subtopologies() {
		for _, name := range sub.Stores {
			if spec, ok := a.topo.Store(name); ok && !spec.Global {
				subOf[name] = append(subOf[name], sub.ID)
			}
		}
	}
	n := 0
	for _, ps := range persisted {
		if ps.Checkpoint <= 0 {
			continue
		}
		for _, sub := range subOf[ps.Name] {
			a.local.add(streams.TaskID{Subtopology: sub, Partition: streams.Partition(ps.Partition)})
			n++
		}
	}
	if n > 0 {
		a.log.Info("found local state", "tasks", len(a.local.list()))
	}
	return nil
}

// persistentTask reports whether task id has a store kept in the state
// directory (not global, not in memory): only such a task is worth
// advertising as local state.
func (a *App) persistentTask(id streams.TaskID) bool {
	for _, sub := range a.topo.Subtopologies() {
		if sub.ID != id.Subtopology {
			continue
		}
		for _, name := range sub.Stores {
			if spec, ok := a.topo.Store(name); ok && !spec.Global && !spec.InMemory {
				return true
			}
		}
	}
	return false
}

// localTasks reports the tasks this instance holds state for, for the
// balancer (called by franz-go on every join).
func (a *App) localTasks() []assign.TaskID { return a.local.list() }
