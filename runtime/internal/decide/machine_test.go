package decide

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/weir-dev/weir/streams"
)

// The scenario files under testdata/ drive a Machine with events and clock
// ticks, beside a simulated task engine that buffers the records each
// fetch hands over and processes them one by one. After every command
// the harness prints what the Machine decided (Ready), if anything.
// Commands:
//
//	new [commit-interval=D] [max-task-idle=D] [max-buffered-produce=N] [max-buffered-per-partition=N]
//	start task=S_P inputs=(topic/p,...)      (TaskStarted)
//	add-inputs task=S_P inputs=(topic/p,...) (InputsAdded)
//	stop task=S_P                            (TaskStopped)
//	poll                                     (Polled)
//	fetch tp=topic/p [end=N] [records=N] [from=N] [err]
//	                                         (Fetched: records=N hands N records to the partition's task,
//	                                          from the partition's fetch position, or from=N)
//	run task=S_P                             (the loop's run of a task: MayProcess, then process one
//	                                          record, until it may not; then Processed)
//	backlog produce=N                        (Backlog)
//	commit-start                             (CommitStarted)
//	commit-pending                           (CommitPending)
//	commit-acked                             (CommitAcknowledged)
//	commit-stall reason=R                    (CommitStalled)
//	commit-ok tasks=N                        (CommitSucceeded)
//	probed [results=(topic/p:end:committed:logstart,...)]
//	                                         (Probed, for the last Probe asked; -1 is unknown)
//	tick [D]                                 (advance the clock by D, default 0, then Tick)
//	state                                    (the Machine's view)
//
// and, for the Standbys beside it:
//
//	sb-assigned [standby=(S_P,...)] [active=(S_P,...)] (StandbysAssigned)
//	sb-released tasks=(S_P,...)              (StandbysReleased)
//	sb-opened task=S_P                       (StandbyOpened)
//	sb-open-failed task=S_P                  (StandbyOpenFailed)
//	sb-tick [D]                              (advance the clock by D, then Standbys.Tick)
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{t: t}
		h.reset(Options{})
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return h.run(td)
		})
	})
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type harness struct {
	t   *testing.T
	m   *Machine
	sb  *Standbys
	now time.Time
	// eng simulates the task engines: per task, per partition, the
	// offsets of the records buffered, and the positions.
	eng map[streams.TaskID]*simTask
	// fetchPos is the next offset a fetch hands over, per partition.
	fetchPos  map[streams.TopicPartition]streams.Offset
	lastProbe *Probe
}

type simTask struct {
	queues map[streams.TopicPartition][]streams.Offset
	next   map[streams.TopicPartition]streams.Offset
	// enforced counts records processed after MayProcess gave up waiting.
	enforced int
}

func (s *simTask) buffered() int {
	n := 0
	for _, q := range s.queues {
		n += len(q)
	}
	return n
}

func (h *harness) reset(o Options) {
	h.t.Helper()
	m, err := New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.m, h.now = m, epoch
	h.sb = NewStandbys()
	h.eng = map[streams.TaskID]*simTask{}
	h.fetchPos = map[streams.TopicPartition]streams.Offset{}
	h.lastProbe = nil
}

func (h *harness) run(td *datadriven.TestData) string {
	h.t.Helper()
	var out strings.Builder
	switch td.Cmd {
	case "new":
		var o Options
		o.CommitInterval = h.dur(td, "commit-interval", "0s")
		o.MaxTaskIdle = h.dur(td, "max-task-idle", "0s")
		o.MaxBufferedProduce = h.int(td, "max-buffered-produce", 0)
		o.MaxBufferedPerPartition = h.int(td, "max-buffered-per-partition", 0)
		h.reset(o)
	case "start":
		id := h.task(td)
		inputs := h.tps(td, "inputs")
		h.m.Step(h.now, TaskStarted{Task: id, Inputs: inputs})
		h.eng[id] = &simTask{queues: map[streams.TopicPartition][]streams.Offset{}, next: map[streams.TopicPartition]streams.Offset{}}
	case "add-inputs":
		id := h.task(td)
		s := h.eng[id]
		h.m.Step(h.now, InputsAdded{Task: id, Inputs: h.tps(td, "inputs"), Next: s.next, Buffered: s.buffered()})
	case "stop":
		id := h.task(td)
		h.m.Step(h.now, TaskStopped{Task: id})
		delete(h.eng, id)
	case "poll":
		h.m.Step(h.now, Polled{})
		fmt.Fprintf(&out, "poll %d\n", h.m.Polls())
	case "fetch":
		tp := h.tp(arg(td, "tp", ""))
		e := Fetched{Partition: tp, OK: !td.HasArg("err"), End: int64(h.int(td, "end", 0))}
		if td.HasArg("from") {
			h.fetchPos[tp] = streams.Offset(h.int(td, "from", 0))
		}
		if n := h.int(td, "records", 0); n > 0 {
			from := h.fetchPos[tp]
			h.fetchPos[tp] = from + streams.Offset(n)
			if t := h.m.byTP[tp]; t != nil {
				s := h.eng[t.id]
				for o := from; o < from+streams.Offset(n); o++ {
					s.queues[tp] = append(s.queues[tp], o)
				}
				e.Records, e.First, e.Last = n, from, from+streams.Offset(n)-1
			} else {
				fmt.Fprintf(&out, "no task reads %s: records dropped\n", tp)
			}
		}
		h.m.Step(h.now, e)
	case "run":
		id := h.task(td)
		t, s := h.m.Task(id), h.eng[id]
		if t == nil || s == nil {
			h.t.Fatalf("%s: task %s not running", td.Pos, id)
		}
		processed, enforcedBefore := 0, s.enforced
		for {
			ready, enforced := t.MayProcess(h.now, s.buffered(), s.next)
			if !ready {
				break
			}
			// Take the record of the first input partition that has one
			// (the engine orders by timestamp; the Machine does not care).
			for _, tp := range t.Inputs() {
				if q := s.queues[tp]; len(q) > 0 {
					s.next[tp] = q[0] + 1
					s.queues[tp] = q[1:]
					break
				}
			}
			processed++
			if enforced {
				s.enforced++
			}
		}
		fmt.Fprintf(&out, "processed %d (enforced %d), buffered %d", processed, s.enforced-enforcedBefore, s.buffered())
		if !t.idleSince.IsZero() {
			fmt.Fprintf(&out, ", waiting since +%v", t.idleSince.Sub(epoch))
		}
		out.WriteString("\n")
		h.m.Step(h.now, Processed{Task: id, Next: s.next, Buffered: s.buffered()})
	case "backlog":
		h.m.Step(h.now, Backlog{Produce: h.int(td, "produce", 0)})
		fmt.Fprintf(&out, "holding %v\n", h.m.Holding())
	case "resumes-at":
		fmt.Fprintf(&out, "%d\n", h.m.ResumesAt())
	case "commit-start":
		h.m.Step(h.now, CommitStarted{})
	case "commit-pending":
		h.m.Step(h.now, CommitPending{})
	case "commit-acked":
		h.m.Step(h.now, CommitAcknowledged{})
	case "commit-stall":
		h.m.Step(h.now, CommitStalled{Reason: arg(td, "reason", "timeout")})
	case "commit-ok":
		h.m.Step(h.now, CommitSucceeded{Tasks: h.int(td, "tasks", 1)})
	case "probed":
		if h.lastProbe == nil {
			h.t.Fatalf("%s: probed without a probe asked for", td.Pos)
		}
		e := Probed{Poll: h.lastProbe.Poll}
		vals, _ := args(td, "results")
		for _, v := range vals {
			f := strings.Split(v, ":")
			if len(f) != 4 {
				h.t.Fatalf("%s: result %q: want topic/p:end:committed:logstart", td.Pos, v)
			}
			e.Results = append(e.Results, ProbeResult{Partition: h.tp(f[0]), End: h.atoi(f[1]), Committed: h.atoi(f[2]), LogStart: h.atoi(f[3])})
		}
		h.m.Step(h.now, e)
	case "tick":
		if len(td.CmdArgs) > 0 {
			d, err := time.ParseDuration(td.CmdArgs[0].Key)
			if err != nil {
				h.t.Fatalf("%s: %v", td.Pos, err)
			}
			h.now = h.now.Add(d)
		}
		h.m.Tick(h.now)
		fmt.Fprintf(&out, "now +%v\n", h.now.Sub(epoch))
	case "state":
		h.state(&out)
		return out.String()
	case "sb-assigned":
		h.sb.Step(StandbysAssigned{Standby: h.tasks(td, "standby"), Active: h.tasks(td, "active")})
	case "sb-released":
		h.sb.Step(StandbysReleased{Tasks: h.tasks(td, "tasks")})
	case "sb-opened":
		h.sb.Step(StandbyOpened{Task: h.task(td)})
	case "sb-open-failed":
		h.sb.Step(StandbyOpenFailed{Task: h.task(td)})
	case "sb-tick":
		if len(td.CmdArgs) > 0 {
			d, err := time.ParseDuration(td.CmdArgs[0].Key)
			if err != nil {
				h.t.Fatalf("%s: %v", td.Pos, err)
			}
			h.now = h.now.Add(d)
		}
		h.sb.Tick(h.now)
		fmt.Fprintf(&out, "now +%v\n", h.now.Sub(epoch))
	default:
		h.t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	}
	h.ready(&out)
	h.standbyReady(&out)
	if out.Len() == 0 {
		return "ok\n"
	}
	return out.String()
}

// ready prints and clears what the Machine decided.
func (h *harness) ready(out *strings.Builder) {
	rd := h.m.Ready()
	if rd.Finish {
		out.WriteString("ready: finish commit\n")
	}
	if rd.Commit {
		out.WriteString("ready: commit\n")
	}
	if rd.Await {
		out.WriteString("ready: await pending commit\n")
	}
	if rd.Probe != nil {
		h.lastProbe = rd.Probe
		fmt.Fprintf(out, "ready: probe %s starts=%v (poll %d)\n", tpList(rd.Probe.Partitions), rd.Probe.Starts, rd.Probe.Poll)
	}
	switch rd.Inputs {
	case PauseInputs:
		out.WriteString("ready: pause inputs\n")
	case ResumeInputs:
		out.WriteString("ready: resume inputs\n")
	}
	if len(rd.Pause) > 0 {
		fmt.Fprintf(out, "ready: pause %s\n", tpList(rd.Pause))
	}
	if len(rd.Resume) > 0 {
		fmt.Fprintf(out, "ready: resume %s\n", tpList(rd.Resume))
	}
	for _, l := range rd.Lags {
		fmt.Fprintf(out, "ready: lag %s=%d\n", l.Partition, l.Lag)
	}
	if s := rd.Stall; s != nil {
		fmt.Fprintf(out, "ready: commit stalled (%s) since +%v, attempt %d, retry in %v at +%v\n",
			s.Reason, s.Since.Sub(epoch), s.Attempts, s.Backoff, s.RetryAt.Sub(epoch))
	}
	if s := rd.Recovered; s != nil {
		fmt.Fprintf(out, "ready: commit recovered after %v, %d failed attempts\n", h.now.Sub(s.Since), s.Attempts)
	}
}

// standbyReady prints and clears what the Standbys decided.
func (h *harness) standbyReady(out *strings.Builder) {
	rd := h.sb.Ready()
	if rd.Apply {
		out.WriteString("standby: apply\n")
	}
	for _, c := range rd.Close {
		fmt.Fprintf(out, "standby: close %s", c.Task)
		if c.Handover {
			out.WriteString(" (hand over)")
		}
		out.WriteString("\n")
	}
	if len(rd.Open) > 0 {
		s := make([]string, len(rd.Open))
		for i, id := range rd.Open {
			s[i] = id.String()
		}
		fmt.Fprintf(out, "standby: open %s\n", strings.Join(s, ","))
	}
	if h.sb.Idle() != (len(h.sb.open) == 0) {
		h.t.Fatalf("Idle %v with %d open", h.sb.Idle(), len(h.sb.open))
	}
}

func (h *harness) state(out *strings.Builder) {
	m := h.m
	ids := make([]streams.TaskID, 0, len(m.tasks))
	for id := range m.tasks {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b streams.TaskID) int {
		if a.Subtopology != b.Subtopology {
			return int(a.Subtopology) - int(b.Subtopology)
		}
		return int(a.Partition) - int(b.Partition)
	})
	for _, id := range ids {
		t := m.tasks[id]
		fmt.Fprintf(out, "task %s: buffered %d, added in poll %d", id, t.buffered, t.addedPoll)
		if !t.idleSince.IsZero() {
			fmt.Fprintf(out, ", waiting since +%v", t.idleSince.Sub(epoch))
		}
		out.WriteString("\n")
		for _, tp := range t.inputs {
			fmt.Fprintf(out, "  %s: buffered %d", tp, t.bufferedOf(tp))
			if e, ok := m.ends[tp]; ok {
				fmt.Fprintf(out, ", end %d (poll %d)", e.offset, e.poll)
			}
			if s, ok := m.starts[tp]; ok {
				fmt.Fprintf(out, ", start %d", s)
			}
			if m.paused[tp] {
				out.WriteString(", paused")
			}
			fmt.Fprintf(out, ", caught up %v\n", t.caughtUp(tp))
		}
	}
	fmt.Fprintf(out, "holding %v\n", m.inputsPaused)
	if m.pending {
		fmt.Fprintf(out, "commit pending, acknowledged %v\n", m.acked)
	}
	if m.Stalled() {
		fmt.Fprintf(out, "commit stalled (%s) since +%v, attempt %d, retry at +%v\n",
			m.stall.Reason, m.stall.Since.Sub(epoch), m.stall.Attempts, m.stall.RetryAt.Sub(epoch))
	}
	if m.lastCommit.IsZero() {
		out.WriteString("last commit never\n")
	} else {
		fmt.Fprintf(out, "last commit +%v\n", m.lastCommit.Sub(epoch))
	}
}

func tpList(tps []streams.TopicPartition) string {
	s := make([]string, len(tps))
	for i, tp := range tps {
		s[i] = tp.String()
	}
	return strings.Join(s, ",")
}

func arg(td *datadriven.TestData, key, def string) string {
	if a, ok := td.Arg(key); ok && len(a.Vals) > 0 {
		return a.Vals[0]
	}
	return def
}

func args(td *datadriven.TestData, key string) ([]string, bool) {
	a, ok := td.Arg(key)
	if !ok {
		return nil, false
	}
	return a.Vals, true
}

func (h *harness) dur(td *datadriven.TestData, key, def string) time.Duration {
	h.t.Helper()
	d, err := time.ParseDuration(arg(td, key, def))
	if err != nil {
		h.t.Fatalf("%s: %s: %v", td.Pos, key, err)
	}
	return d
}

func (h *harness) int(td *datadriven.TestData, key string, def int) int {
	h.t.Helper()
	return int(h.atoi(arg(td, key, strconv.Itoa(def))))
}

func (h *harness) atoi(s string) int64 {
	h.t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		h.t.Fatalf("%q: %v", s, err)
	}
	return n
}

func (h *harness) task(td *datadriven.TestData) streams.TaskID {
	h.t.Helper()
	return h.taskID(arg(td, "task", ""))
}

func (h *harness) tasks(td *datadriven.TestData, key string) []streams.TaskID {
	h.t.Helper()
	vals, _ := args(td, key)
	out := make([]streams.TaskID, len(vals))
	for i, v := range vals {
		out[i] = h.taskID(v)
	}
	return out
}

func (h *harness) taskID(s string) streams.TaskID {
	h.t.Helper()
	st, p, ok := strings.Cut(s, "_")
	if !ok {
		h.t.Fatalf("task %q: want S_P", s)
	}
	return streams.TaskID{Subtopology: streams.SubtopologyID(h.atoi(st)), Partition: streams.Partition(h.atoi(p))}
}

func (h *harness) tp(s string) streams.TopicPartition {
	h.t.Helper()
	topic, p, ok := strings.Cut(s, "/")
	if !ok {
		h.t.Fatalf("partition %q: want topic/p", s)
	}
	return streams.TopicPartition{Topic: topic, Partition: streams.Partition(h.atoi(p))}
}

func (h *harness) tps(td *datadriven.TestData, key string) []streams.TopicPartition {
	h.t.Helper()
	vals, _ := args(td, key)
	out := make([]streams.TopicPartition, len(vals))
	for i, v := range vals {
		out[i] = h.tp(v)
	}
	return out
}
