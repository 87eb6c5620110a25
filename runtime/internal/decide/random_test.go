package decide

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weir-dev/weir/streams"
)

// TestRandomEvents steps a Machine with random event sequences, applies
// its Ready to a model of the consumer (the set of partitions it keeps
// paused, whether every input is paused), and checks after every step
// that the model and the Machine agree and that the decisions stay within
// their bounds. The seed is logged.
func TestRandomEvents(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	for run := range 200 {
		randomRun(t, rng, run)
	}
}

func randomRun(t *testing.T, rng *rand.Rand, run int) {
	t.Helper()
	opts := Options{
		CommitInterval:          time.Duration(1+rng.IntN(20)) * 100 * time.Millisecond,
		MaxTaskIdle:             time.Duration(rng.IntN(3)-1) * time.Second,
		MaxBufferedProduce:      1 + rng.IntN(100),
		MaxBufferedPerPartition: 1 + rng.IntN(8),
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	now := epoch
	tps := []streams.TopicPartition{{Topic: "a", Partition: 0}, {Topic: "b", Partition: 0}, {Topic: "a", Partition: 1}, {Topic: "b", Partition: 1}}
	tasks := []struct {
		id     streams.TaskID
		inputs []streams.TopicPartition
	}{
		{streams.TaskID{Subtopology: 0, Partition: 0}, tps[0:2]},
		{streams.TaskID{Subtopology: 0, Partition: 1}, tps[2:4]},
	}
	// The model: what the consumer was told, and the simulated engines.
	clientPaused := map[streams.TopicPartition]bool{}
	inputsPaused := false
	type sim struct {
		next     map[streams.TopicPartition]streams.Offset
		buffered int
		last     map[streams.TopicPartition]streams.Offset
	}
	sims := map[streams.TaskID]*sim{}
	fetchPos := map[streams.TopicPartition]streams.Offset{}
	var probe *Probe
	fail := func(step int, format string, args ...any) {
		t.Helper()
		t.Fatalf("run %d step %d: "+format, append([]any{run, step}, args...)...)
	}
	for step := range 300 {
		switch rng.IntN(10) {
		case 0:
			k := tasks[rng.IntN(len(tasks))]
			if m.Task(k.id) == nil {
				m.Step(now, TaskStarted{Task: k.id, Inputs: k.inputs})
				sims[k.id] = &sim{next: map[streams.TopicPartition]streams.Offset{}, last: map[streams.TopicPartition]streams.Offset{}}
			} else {
				m.Step(now, TaskStopped{Task: k.id})
				delete(sims, k.id)
			}
		case 1, 2:
			m.Step(now, Polled{})
			for _, tp := range tps {
				if rng.IntN(2) == 0 {
					continue
				}
				n := rng.IntN(4)
				from := fetchPos[tp]
				fetchPos[tp] = from + streams.Offset(n)
				e := Fetched{Partition: tp, OK: rng.IntN(5) > 0, End: int64(fetchPos[tp]) + int64(rng.IntN(3))}
				if tk := m.byTP[tp]; tk != nil && n > 0 {
					s := sims[tk.id]
					e.Records, e.First, e.Last = n, from, from+streams.Offset(n)-1
					s.buffered += n
					s.last[tp] = e.Last
				}
				m.Step(now, e)
			}
		case 3:
			for id, s := range sims {
				tk := m.Task(id)
				for s.buffered > 0 {
					ready, _ := tk.MayProcess(now, s.buffered, s.next)
					if !ready {
						break
					}
					// Process the first partition with records left.
					for _, tp := range tk.Inputs() {
						if tk.Buffered(tp, s.next) > 0 {
							n, ok := s.next[tp]
							if !ok {
								n = tk.firstAdded[tp]
							}
							s.next[tp] = n + 1
							s.buffered--
							break
						}
					}
				}
				if ready, _ := tk.MayProcess(now, 0, nil); ready {
					fail(step, "task %s may process with nothing buffered", id)
				}
				m.Step(now, Processed{Task: id, Next: s.next, Buffered: s.buffered})
			}
		case 4:
			m.Step(now, Backlog{Produce: rng.IntN(opts.MaxBufferedProduce + 1)})
		case 5:
			m.Step(now, CommitStarted{})
			switch rng.IntN(3) {
			case 0:
				m.Step(now, CommitStalled{Reason: "timeout"})
			default:
				m.Step(now, CommitSucceeded{Tasks: len(sims)})
			}
		case 6:
			if probe != nil {
				e := Probed{Poll: probe.Poll}
				for _, tp := range probe.Partitions {
					e.Results = append(e.Results, ProbeResult{Partition: tp, End: int64(fetchPos[tp]), Committed: -1, LogStart: 0})
				}
				m.Step(now, e)
				probe = nil
			}
		default:
			now = now.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
			m.Tick(now)
		}
		rd := m.Ready()
		if rd.Probe != nil {
			probe = rd.Probe
			for i, tp := range probe.Partitions {
				if tk := m.byTP[tp]; tk == nil || len(tk.inputs) < 2 {
					fail(step, "probe of %s, no input of a task with several", tp)
				}
				if i > 0 && compareTP(probe.Partitions[i-1], tp) >= 0 {
					fail(step, "probe partitions not sorted and unique: %v", probe.Partitions)
				}
			}
		}
		for _, tp := range rd.Pause {
			for _, r := range rd.Resume {
				if r == tp {
					fail(step, "%s both paused and resumed", tp)
				}
			}
			clientPaused[tp] = true
		}
		for _, tp := range rd.Resume {
			if !clientPaused[tp] {
				fail(step, "%s resumed, not paused", tp)
			}
			delete(clientPaused, tp)
		}
		switch rd.Inputs {
		case PauseInputs:
			inputsPaused = true
		case ResumeInputs:
			inputsPaused = false
		}
		if len(clientPaused) != len(m.paused) {
			fail(step, "consumer keeps %v paused, machine %v", clientPaused, m.paused)
		}
		for tp := range clientPaused {
			if !m.paused[tp] {
				fail(step, "consumer keeps %s paused, machine does not", tp)
			}
			if m.byTP[tp] == nil {
				fail(step, "%s paused, read by no task", tp)
			}
		}
		if inputsPaused != m.Holding() {
			fail(step, "inputs paused %v, holding %v", inputsPaused, m.Holding())
		}
		if s := m.stall; !s.Since.IsZero() {
			lo, hi := max(opts.CommitInterval, 100*time.Millisecond), max(MaxCommitBackoff, opts.CommitInterval)
			if s.Backoff < lo || s.Backoff > hi {
				fail(step, "backoff %v outside [%v, %v]", s.Backoff, lo, hi)
			}
		}
		for id, s := range sims {
			if got := m.Task(id).buffered; got != s.buffered {
				fail(step, "task %s: machine counts %d buffered, engine %d", id, got, s.buffered)
			}
		}
	}
}
