package decide

import (
	"cmp"
	"slices"
	"time"

	"github.com/weir-dev/weir/streams"
)

// StandbyApplyEvery is how often an open standby task's stores apply
// what they read (each apply is one restore, which on Pebble ingests one
// SSTable: applying per fetch would litter level 0).
const StandbyApplyEvery = 5 * time.Second

// Standbys is the state machine of an instance's standby tasks: which to
// keep open (the standbys of the last assignment, never a task active
// here), which to hand over to an active task, and when their stores
// apply what they read. Like Machine it owns no goroutine, does no I/O
// and reads no clock; its owner serialises calls.
type Standbys struct {
	// want is the standby set of the last assignment without the tasks
	// active here, less those that failed to open or were released.
	want map[streams.TaskID]bool
	// open are the standby tasks whose stores are open (StandbyOpened).
	// Invariant: a task is in Ready.Open only while not open.
	open map[streams.TaskID]bool
	// lastApply is when Ready last asked to apply.
	lastApply time.Time

	rd StandbyReady
}

// StandbyReady is what Standbys decided since the last call to Ready.
type StandbyReady struct {
	// Close are open standby tasks to close, in this order, before Open.
	Close []StandbyClose
	// Open are standby tasks to open; each is answered with StandbyOpened
	// or StandbyOpenFailed.
	Open []streams.TaskID
	// Apply asks every open standby store to apply what it read.
	Apply bool
}

// StandbyClose is a standby task to close. Its stores apply what they
// read first; with Handover set the task becomes active here, and stores
// whose copy is not a store (in-memory ones) hand their records to the
// active task's restore.
type StandbyClose struct {
	Task     streams.TaskID
	Handover bool
}

// NewStandbys returns a Standbys without tasks.
func NewStandbys() *Standbys {
	return &Standbys{want: map[streams.TaskID]bool{}, open: map[streams.TaskID]bool{}}
}

// A StandbyEvent is an input to Standbys.Step.
type StandbyEvent interface{ standbyEvent() }

// StandbysAssigned: an assignment gave these standby tasks; Active are
// the instance's active tasks, which never run as standbys here. The
// tasks are opened and closed at the next Tick.
type StandbysAssigned struct {
	Standby, Active []streams.TaskID
}

// StandbysReleased: these tasks are about to run here as active tasks.
// Their open standbys are handed over at once (Ready.Close with Handover),
// and they are not opened again until an assignment asks.
type StandbysReleased struct {
	Tasks []streams.TaskID
}

// StandbyOpened: a standby task's stores are open.
type StandbyOpened struct{ Task streams.TaskID }

// StandbyOpenFailed: a standby task could not be opened; it is not tried
// again until the next assignment.
type StandbyOpenFailed struct{ Task streams.TaskID }

func (StandbysAssigned) standbyEvent()  {}
func (StandbysReleased) standbyEvent()  {}
func (StandbyOpened) standbyEvent()     {}
func (StandbyOpenFailed) standbyEvent() {}

// Step feeds one event to s.
func (s *Standbys) Step(e StandbyEvent) {
	switch e := e.(type) {
	case StandbysAssigned:
		active := map[streams.TaskID]bool{}
		for _, id := range e.Active {
			active[id] = true
		}
		clear(s.want)
		for _, id := range e.Standby {
			if !active[id] {
				s.want[id] = true
			}
		}
	case StandbysReleased:
		for _, id := range e.Tasks {
			delete(s.want, id)
			if s.open[id] {
				delete(s.open, id)
				s.rd.Close = append(s.rd.Close, StandbyClose{Task: id, Handover: true})
			}
		}
	case StandbyOpened:
		s.open[e.Task] = true
	case StandbyOpenFailed:
		delete(s.want, e.Task)
	default:
		panic("decide: Standbys.Step given an unknown event")
	}
}

// Tick tells s that time is now: open standbys apply what they read every
// StandbyApplyEvery, and the open set follows the wanted one.
func (s *Standbys) Tick(now time.Time) {
	if len(s.open) > 0 && now.Sub(s.lastApply) >= StandbyApplyEvery {
		s.rd.Apply = true
		s.lastApply = now
	}
	var closing []streams.TaskID
	for id := range s.open {
		if !s.want[id] {
			closing = append(closing, id)
		}
	}
	slices.SortFunc(closing, compareTask)
	for _, id := range closing {
		delete(s.open, id)
		s.rd.Close = append(s.rd.Close, StandbyClose{Task: id})
	}
	var opening []streams.TaskID
	for id := range s.want {
		if !s.open[id] {
			opening = append(opening, id)
		}
	}
	slices.SortFunc(opening, compareTask)
	s.rd.Open = append(s.rd.Open, opening...)
}

// Ready returns and clears what s decided since the last call.
func (s *Standbys) Ready() StandbyReady {
	rd := s.rd
	s.rd = StandbyReady{}
	return rd
}

// Idle reports whether no standby task is open.
func (s *Standbys) Idle() bool { return len(s.open) == 0 }

func compareTask(a, b streams.TaskID) int {
	return cmp.Or(cmp.Compare(a.Subtopology, b.Subtopology), cmp.Compare(a.Partition, b.Partition))
}
