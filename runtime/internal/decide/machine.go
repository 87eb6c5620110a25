package decide

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/weir-dev/weir/streams"
)

// MaxCommitBackoff bounds the wait between two attempts of a stalled
// commit (unless CommitInterval is longer).
const MaxCommitBackoff = 5 * time.Second

// LagProbeEvery is how often at most Tick asks for a lag probe.
const LagProbeEvery = 200 * time.Millisecond

// Machine is the state machine of an instance's active tasks. See the
// package documentation.
type Machine struct {
	opts Options

	// tasks are the running tasks; byTP maps an input partition to its
	// task. Invariant: byTP[tp] is a task whose inputs hold tp.
	tasks map[streams.TaskID]*Task
	byTP  map[streams.TopicPartition]*Task
	// paused are the partitions whose fetching Ready told to pause (per
	// partition flow control) and not to resume since.
	paused map[streams.TopicPartition]bool
	// ends is the highest end offset (high watermark) known per input
	// partition, from fetches and from probes, with the poll it was last
	// confirmed in.
	ends map[streams.TopicPartition]knownEnd
	// starts is, per input partition of a running task, the offset
	// consuming started at (committed offset, else log start), learned
	// from probes for partitions that have not yielded a record yet.
	starts map[streams.TopicPartition]int64
	// polls counts the polls (Polled); a poll's fetches carry its number.
	polls uint64

	// lastCommit is when the last commit attempt started.
	lastCommit time.Time
	// stall is the commit that could not reach the broker; zero when none.
	stall Stall
	// pending is set while a pipelined commit waits for its records'
	// acknowledgements (CommitPending to CommitSucceeded or the next
	// CommitStarted); acked once the loop told they all are.
	pending, acked bool
	// inputsPaused is set while back-pressure holds processing and
	// fetching of every input topic is paused.
	inputsPaused bool
	// lastProbe is when Tick last asked for a lag probe (or found none
	// needed).
	lastProbe time.Time

	rd Ready
}

// Task is the state the Machine keeps about one running task. Its fields
// are the Machine's; the loop keeps the pointer (Machine.Task) to call
// MayProcess without a map lookup.
type Task struct {
	m  *Machine
	id streams.TaskID
	// inputs are the task's input partitions.
	inputs []streams.TopicPartition
	// lastAdded is the offset of the last record added per input
	// partition; firstAdded of the first one ever added. With next they
	// give the buffered count per partition.
	lastAdded, firstAdded map[streams.TopicPartition]streams.Offset
	// next is the offset after the last record processed per partition, as
	// last reported (Processed, InputsAdded).
	next map[streams.TopicPartition]streams.Offset
	// buffered is how many records the task holds unprocessed: the last
	// count reported plus what was added since.
	buffered int
	// addedPoll is the number of the last poll that handed the task
	// records.
	addedPoll uint64
	// idleSince is when the task began waiting for an input partition
	// that may hold earlier records; zero when not waiting. Written by
	// MayProcess only.
	idleSince time.Time
}

// knownEnd is an input partition's end offset as last seen.
type knownEnd struct {
	offset int64
	// poll is the number of the poll that carried it (or, from a probe, of
	// the last poll before the probe was asked for).
	poll uint64
}

// Stall describes a commit that could not reach the broker.
type Stall struct {
	// Since is when the first failed attempt ended; zero when no commit is
	// stalled.
	Since time.Time
	// Attempts counts the failed attempts.
	Attempts int
	// Reason is the last failed attempt's ("timeout", "unreachable").
	Reason string
	// Backoff is the wait before the next attempt; RetryAt is when it is
	// due.
	Backoff time.Duration
	RetryAt time.Time
}

// InputsChange is a change of the fetching of every input topic.
type InputsChange int8

const (
	// InputsUnchanged: leave fetching as it is.
	InputsUnchanged InputsChange = iota
	// PauseInputs: back-pressure holds processing; pause every input topic.
	PauseInputs
	// ResumeInputs: processing goes on; resume every input topic.
	ResumeInputs
)

// Ready is what the Machine decided since the last call to Ready, for the
// loop to carry out.
type Ready struct {
	// Commit is set when a commit attempt is due (Tick).
	Commit bool
	// Finish is set when the pending commit's records are all
	// acknowledged (Tick after CommitAcknowledged) and no commit is
	// stalled: commit its offsets. With Commit, the loop finishes a
	// pending commit first in any case.
	Finish bool
	// Await is set with Commit when a pending commit is still not
	// acknowledged: wait for it (at most the commit timeout) and finish
	// it before the next attempt starts.
	Await bool
	// Probe, when set, asks the loop to look up end offsets (and, with
	// Starts, committed and log start offsets) and step Probed.
	Probe *Probe
	// Inputs pauses or resumes fetching of every input topic.
	Inputs InputsChange
	// Pause and Resume are partitions whose fetching to pause or resume;
	// no partition is in both.
	Pause, Resume []streams.TopicPartition
	// Lags are the lags a probe found.
	Lags []Lag
	// Stall is set when a commit attempt stalled: the stall as it is now.
	Stall *Stall
	// Recovered is set when a stalled commit succeeded: the stall as it
	// was.
	Recovered *Stall
}

// Probe asks for the end offsets of Partitions.
type Probe struct {
	// Poll is the number of the last poll when the probe was asked for;
	// Probed carries it back.
	Poll       uint64
	Partitions []streams.TopicPartition
	// Starts asks for the group's committed offsets and the partitions'
	// log start offsets too: a partition has not yielded a record and
	// where consuming started is not known.
	Starts bool
}

// Lag is an input partition's lag as a probe found it.
type Lag struct {
	Partition streams.TopicPartition
	Lag       int64
}

// New returns a Machine without tasks. opts is copied before defaults are
// filled in.
func New(opts Options) (*Machine, error) {
	o := opts
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Machine{
		opts:   o,
		tasks:  map[streams.TaskID]*Task{},
		byTP:   map[streams.TopicPartition]*Task{},
		paused: map[streams.TopicPartition]bool{},
		ends:   map[streams.TopicPartition]knownEnd{},
		starts: map[streams.TopicPartition]int64{},
	}, nil
}

// An Event is an input to Step.
type Event interface{ event() }

// TaskStarted: a task was started over its input partitions.
type TaskStarted struct {
	Task   streams.TaskID
	Inputs []streams.TopicPartition
}

// InputsAdded: a running task was given more input partitions. Next and
// Buffered are the task's positions and buffered count now.
type InputsAdded struct {
	Task     streams.TaskID
	Inputs   []streams.TopicPartition
	Next     map[streams.TopicPartition]streams.Offset
	Buffered int
}

// TaskStopped: a task was closed (revoked, lost, or the instance stops).
// Partitions of it left paused are resumed (Ready.Resume): the consumer
// keeps a partition paused across revocations, and one left paused would
// never be fetched again should the task come back.
type TaskStopped struct {
	Task streams.TaskID
}

// Polled: a poll returned; the Fetched events that follow belong to it.
type Polled struct{}

// Fetched: what one poll carried for one partition. End is the
// partition's high watermark, known when OK (the fetch did not fail).
// Records is how many records were handed to the partition's task (zero
// when none, or when no task of this instance reads the partition any
// more), First and Last their offsets.
type Fetched struct {
	Partition   streams.TopicPartition
	OK          bool
	End         int64
	Records     int
	First, Last streams.Offset
}

// Backlog: the producer buffers Produce records now. Back-pressure is
// decided on it (Ready.Inputs, Holding).
type Backlog struct {
	Produce int
}

// Processed: a task processed; Next are its positions and Buffered its
// buffered count now. Flow control of its partitions is decided on it
// (Ready.Pause, Ready.Resume). The loop need step it only for tasks with
// several inputs: nothing is decided on the positions of a task with one
// (InputsAdded reports them when it gains another).
type Processed struct {
	Task     streams.TaskID
	Next     map[streams.TopicPartition]streams.Offset
	Buffered int
}

// CommitStarted: a commit attempt starts; the next is due CommitInterval
// later. It ends a pending commit the loop has not finished (the attempt
// supersedes it).
type CommitStarted struct{}

// CommitPending: under Options.Pipelined, the attempt that started has
// written its stores and handed its records to the producer; its input
// offsets wait for their acknowledgements while processing goes on.
type CommitPending struct{}

// CommitAcknowledged: every record of the pending commit is acknowledged
// (or failed); the loop checks at each step and steps this once.
type CommitAcknowledged struct{}

// CommitStalled: a commit attempt could not reach the broker, for Reason.
type CommitStalled struct {
	Reason string
}

// CommitSucceeded: a commit attempt of Tasks tasks succeeded. With no
// tasks nothing was tried: a stall whose tasks were lost stays until an
// attempt with tasks (after a rejoin, which needs the broker) succeeds.
type CommitSucceeded struct {
	Tasks int
}

// Probed: the answer to Ready.Probe. Results has one entry per partition
// whose end offset the lookup found.
type Probed struct {
	Poll    uint64
	Results []ProbeResult
}

// ProbeResult is one partition's offsets as a probe found them; -1 stands
// for unknown.
type ProbeResult struct {
	Partition streams.TopicPartition
	End       int64
	// Committed is the group's committed offset, LogStart the partition's
	// log start offset (asked for with Probe.Starts).
	Committed, LogStart int64
}

func (TaskStarted) event()        {}
func (InputsAdded) event()        {}
func (TaskStopped) event()        {}
func (Polled) event()             {}
func (Fetched) event()            {}
func (Backlog) event()            {}
func (Processed) event()          {}
func (CommitStarted) event()      {}
func (CommitPending) event()      {}
func (CommitAcknowledged) event() {}
func (CommitStalled) event()      {}
func (CommitSucceeded) event()    {}
func (Probed) event()             {}

// Step feeds one event to the Machine at now.
func (m *Machine) Step(now time.Time, e Event) {
	switch e := e.(type) {
	case TaskStarted:
		m.startTask(e)
	case InputsAdded:
		m.addInputs(e)
	case TaskStopped:
		m.stopTask(e.Task)
	case Polled:
		m.polls++
	case Fetched:
		m.fetched(e)
	case Backlog:
		m.backlog(e.Produce)
	case Processed:
		m.processed(e)
	case CommitStarted:
		m.lastCommit = now
		m.pending, m.acked = false, false
	case CommitPending:
		m.pending, m.acked = true, false
	case CommitAcknowledged:
		m.acked = m.pending
	case CommitStalled:
		m.commitStalled(now, e.Reason)
	case CommitSucceeded:
		m.pending, m.acked = false, false
		if !m.stall.Since.IsZero() && e.Tasks > 0 {
			s := m.stall
			m.rd.Recovered = &s
			m.stall = Stall{}
		}
	case Probed:
		m.probed(e)
	default:
		// NB: e is not formatted: that would make every event escape
		// to the heap.
		panic("decide: Step given an unknown event")
	}
}

// Tick tells the Machine that time is now: a commit may be due, a pending
// one may be finished, and a lag probe may be due.
func (m *Machine) Tick(now time.Time) {
	if m.pending && m.acked && !m.Stalled() {
		// NB: a stalled one is retried at its retry time, as Commit.
		m.rd.Finish = true
	}
	if m.commitDue(now) {
		m.rd.Commit = true
		m.rd.Await = m.pending && !m.acked
	}
	if now.Sub(m.lastProbe) >= LagProbeEvery {
		m.lastProbe = now
		m.rd.Probe = m.probe()
	}
}

// Ready returns and clears what the Machine decided since the last call.
func (m *Machine) Ready() Ready {
	rd := m.rd
	m.rd = Ready{}
	return rd
}

// Task returns the state of running task id, nil if none.
func (m *Machine) Task(id streams.TaskID) *Task { return m.tasks[id] }

// Holding reports whether back-pressure holds processing, as decided by
// the last Backlog.
func (m *Machine) Holding() bool { return m.inputsPaused }

// ResumesAt returns, while back-pressure holds processing for the
// producer's backlog, the backlog at or below which the next Backlog ends
// the hold (a quarter of MaxBufferedProduce), so that the loop can wait
// for the acknowledgements that bring it there rather than for a poll's
// timeout; -1 when nothing holds, or while a stalled commit holds (only a
// successful attempt ends that).
func (m *Machine) ResumesAt() int {
	if !m.inputsPaused || m.Stalled() {
		return -1
	}
	return m.opts.MaxBufferedProduce / 4
}

// Pending reports whether a pipelined commit waits for its records'
// acknowledgements.
func (m *Machine) Pending() bool { return m.pending }

// Stalled reports whether a commit is stalled.
func (m *Machine) Stalled() bool { return !m.stall.Since.IsZero() }

// LastCommit returns when the last commit attempt started, zero before
// the first.
func (m *Machine) LastCommit() time.Time { return m.lastCommit }

// Polls returns the number of polls stepped.
func (m *Machine) Polls() uint64 { return m.polls }

func (m *Machine) startTask(e TaskStarted) {
	if t := m.tasks[e.Task]; t != nil {
		panic(fmt.Sprintf("decide: task %s started twice", e.Task))
	}
	t := &Task{
		m:          m,
		id:         e.Task,
		inputs:     slices.Clone(e.Inputs),
		lastAdded:  map[streams.TopicPartition]streams.Offset{},
		firstAdded: map[streams.TopicPartition]streams.Offset{},
		next:       map[streams.TopicPartition]streams.Offset{},
	}
	m.tasks[e.Task] = t
	for _, tp := range e.Inputs {
		m.byTP[tp] = t
	}
}

func (m *Machine) addInputs(e InputsAdded) {
	t := m.tasks[e.Task]
	if t == nil {
		panic(fmt.Sprintf("decide: inputs added to task %s, not running", e.Task))
	}
	for _, tp := range e.Inputs {
		t.inputs = append(t.inputs, tp)
		m.byTP[tp] = t
	}
	t.report(e.Next, e.Buffered)
}

func (m *Machine) stopTask(id streams.TaskID) {
	t := m.tasks[id]
	if t == nil {
		return
	}
	delete(m.tasks, id)
	for _, tp := range t.inputs {
		if m.byTP[tp] == t {
			delete(m.byTP, tp)
		}
		if m.paused[tp] {
			m.resume(tp)
		}
		delete(m.starts, tp)
	}
}

func (m *Machine) fetched(e Fetched) {
	tp := e.Partition
	if e.OK {
		m.ends[tp] = knownEnd{offset: max(m.ends[tp].offset, e.End), poll: m.polls}
	}
	t := m.byTP[tp]
	if t == nil || e.Records == 0 {
		return
	}
	if _, ok := t.firstAdded[tp]; !ok {
		t.firstAdded[tp] = e.First
	}
	t.lastAdded[tp] = e.Last
	t.addedPoll = m.polls
	t.buffered += e.Records
}

// backlog decides back-pressure: processing holds off while a commit is
// stalled (the broker is unreachable: processing on would only pile up
// output and replay), or the producer buffers half of its capacity or
// more (and stays held until below a quarter). While it holds, fetching
// of every input topic is paused, so that what is buffered stays bounded.
func (m *Machine) backlog(n int) {
	hold := m.Stalled()
	if !hold {
		limit := m.opts.MaxBufferedProduce
		// NB: ResumesAt states the second bound.
		hold = n >= limit/2 || m.inputsPaused && n > limit/4
	}
	if hold == m.inputsPaused {
		return
	}
	m.inputsPaused = hold
	if hold {
		m.rd.Inputs = PauseInputs
	} else {
		m.rd.Inputs = ResumeInputs
	}
}

// processed records a task's positions and decides the flow control of
// its partitions (tasks with several inputs only: a single input's
// records are all processed at once).
func (m *Machine) processed(e Processed) {
	t := m.tasks[e.Task]
	if t == nil {
		return
	}
	t.report(e.Next, e.Buffered)
	if len(t.inputs) < 2 {
		return
	}
	limit := m.opts.MaxBufferedPerPartition
	for _, tp := range t.inputs {
		n := t.bufferedOf(tp)
		switch {
		case n >= limit && !m.paused[tp]:
			m.pause(tp)
		case n < limit/2 && m.paused[tp]:
			m.resume(tp)
		}
	}
}

func (m *Machine) pause(tp streams.TopicPartition) {
	m.paused[tp] = true
	m.rd.Resume = slices.DeleteFunc(m.rd.Resume, func(x streams.TopicPartition) bool { return x == tp })
	m.rd.Pause = append(m.rd.Pause, tp)
}

func (m *Machine) resume(tp streams.TopicPartition) {
	delete(m.paused, tp)
	m.rd.Pause = slices.DeleteFunc(m.rd.Pause, func(x streams.TopicPartition) bool { return x == tp })
	m.rd.Resume = append(m.rd.Resume, tp)
}

// commitDue reports whether a commit is due at now: a commit interval
// after the last, or, while a commit is stalled, at its retry time.
func (m *Machine) commitDue(now time.Time) bool {
	if m.Stalled() {
		return !now.Before(m.stall.RetryAt)
	}
	return now.Sub(m.lastCommit) >= m.opts.CommitInterval
}

// commitStalled records a commit attempt that could not reach the broker:
// processing and fetching pause (at the next Backlog), and the next
// attempt is due after a backoff that starts at the commit interval (at
// least 100ms) and doubles up to max(MaxCommitBackoff, CommitInterval).
func (m *Machine) commitStalled(now time.Time, reason string) {
	s := &m.stall
	if s.Since.IsZero() {
		s.Since = now
		s.Backoff = max(m.opts.CommitInterval, 100*time.Millisecond)
	} else {
		s.Backoff = min(2*s.Backoff, max(MaxCommitBackoff, m.opts.CommitInterval))
	}
	s.Attempts++
	s.Reason = reason
	s.RetryAt = now.Add(s.Backoff)
	cp := *s
	m.rd.Stall = &cp
}

// probe returns what the readiness decision needs and no fetch has told,
// for the empty input partitions of tasks with several inputs that have
// records buffered: their end offsets, and where consuming started for
// those that have not yielded a record. A fetch response without records
// is never handed to the loop, so an idle partition's end offset is
// otherwise not known, or only from before the task's latest records.
func (m *Machine) probe() *Probe {
	var p *Probe
	for _, t := range m.tasks {
		if len(t.inputs) < 2 || t.buffered == 0 {
			continue
		}
		for _, tp := range t.inputs {
			if t.bufferedOf(tp) > 0 {
				continue
			}
			end, endKnown := m.ends[tp]
			_, added := t.lastAdded[tp]
			_, startKnown := m.starts[tp]
			if !endKnown || end.poll < t.addedPoll || !added && !startKnown {
				if p == nil {
					p = &Probe{Poll: m.polls}
				}
				p.Partitions = append(p.Partitions, tp)
				p.Starts = p.Starts || !added && !startKnown
			}
		}
	}
	if p != nil {
		slices.SortFunc(p.Partitions, compareTP)
	}
	return p
}

func (m *Machine) probed(e Probed) {
	for _, r := range e.Results {
		tp := r.Partition
		t := m.byTP[tp]
		if t == nil {
			continue // revoked meanwhile
		}
		end := max(m.ends[tp].offset, r.End)
		m.ends[tp] = knownEnd{offset: end, poll: e.Poll}
		pos := int64(-1)
		if last, ok := t.lastAdded[tp]; ok {
			pos = int64(last) + 1
		} else if _, ok := m.starts[tp]; !ok {
			start := r.LogStart
			if r.Committed >= 0 {
				start = r.Committed
			}
			if start >= 0 {
				m.starts[tp] = start
				pos = start
			}
		}
		if pos >= 0 {
			m.rd.Lags = append(m.rd.Lags, Lag{Partition: tp, Lag: max(end-pos, 0)})
		}
	}
}

// report records a task's positions and buffered count as its engine
// gives them.
func (t *Task) report(next map[streams.TopicPartition]streams.Offset, buffered int) {
	clear(t.next)
	for tp, o := range next {
		t.next[tp] = o
	}
	t.buffered = buffered
}

// bufferedOf returns how many records of tp the task holds unprocessed,
// from the offsets last reported (exact when the partition's offsets have
// no gaps).
func (t *Task) bufferedOf(tp streams.TopicPartition) int {
	return bufferedOf(t, tp, t.next)
}

func bufferedOf(t *Task, tp streams.TopicPartition, next map[streams.TopicPartition]streams.Offset) int {
	last, ok := t.lastAdded[tp]
	if !ok {
		return 0
	}
	n, ok := next[tp]
	if !ok {
		n = t.firstAdded[tp]
	}
	if d := last + 1 - n; d > 0 {
		return int(d)
	}
	return 0
}

// Inputs returns the task's input partitions. The slice is the Machine's.
func (t *Task) Inputs() []streams.TopicPartition { return t.inputs }

// Buffered returns how many records of tp the task holds unprocessed, by
// next, the task's positions now (exact when the partition's offsets have
// no gaps).
func (t *Task) Buffered(tp streams.TopicPartition, next map[streams.TopicPartition]streams.Offset) int {
	return bufferedOf(t, tp, next)
}

// MayProcess reports whether the task may process its next record at
// now, given buffered, the count of records it holds, and next, its
// positions. It has records buffered, and each input partition has a
// record buffered or is caught up (the consumer knows it holds no more).
// Otherwise a record of the missing partition could come with an earlier
// timestamp, so the task waits for it, up to MaxTaskIdle, and then
// processes anyway (enforced). A task with one input always may. See the
// package documentation for when it may run concurrently.
func (t *Task) MayProcess(now time.Time, buffered int, next map[streams.TopicPartition]streams.Offset) (ready, enforced bool) {
	if buffered == 0 {
		t.idleSince = time.Time{} // nothing waits: a later wait starts afresh
		return false, false
	}
	if len(t.inputs) < 2 {
		return true, false
	}
	for _, tp := range t.inputs {
		if bufferedOf(t, tp, next) > 0 || t.caughtUp(tp) {
			continue
		}
		if t.m.opts.MaxTaskIdle < 0 {
			return true, false
		}
		if t.idleSince.IsZero() {
			t.idleSince = now
		}
		if now.Sub(t.idleSince) < t.m.opts.MaxTaskIdle {
			return false, false
		}
		return true, true
	}
	t.idleSince = time.Time{}
	return true, false
}

// caughtUp reports whether the consumer knows the task has been handed
// every record of tp: its position (after the last record handed over
// or, before any, the offset consuming started at) has reached the
// partition's end offset, as seen no earlier than the records last handed
// to the task. With the end unknown or older, or the start unknown, the
// lag is unknown, and the answer is no until a fetch or a probe tells.
func (t *Task) caughtUp(tp streams.TopicPartition) bool {
	m := t.m
	end, ok := m.ends[tp]
	if !ok || end.poll < t.addedPoll {
		return false
	}
	if last, ok := t.lastAdded[tp]; ok {
		return int64(last)+1 >= end.offset
	}
	start, ok := m.starts[tp]
	return end.offset <= 0 || ok && start >= end.offset
}

func compareTP(a, b streams.TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}
