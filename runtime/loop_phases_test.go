package runtime_test

import (
	"testing"
	"time"
)

// loopPhases returns weir_loop_seconds_total per phase.
func loopPhases(t *testing.T, in *instance) map[string]float64 {
	t.Helper()
	fams, err := in.app.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "weir_loop_seconds_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "phase" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestLoopPhasesCounted: weir_loop_seconds_total tells where the group
// consumer's loop spent its time. Every phase is exported from the start;
// once orders were counted and committed, polling, handing records off,
// processing and committing have taken time; and the phases, which follow
// one another in the loop, add up to no more than the time the instance has
// run.
func TestLoopPhasesCounted(t *testing.T) {
	c := newWeir(t, 3)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	p := newProducer(t, c)
	started := time.Now()
	in := startInstance(t, c, t.TempDir())
	phases := loopPhases(t, in)
	for _, name := range []string{"poll", "held", "handoff", "process", "commit", "commit_wait"} {
		if _, ok := phases[name]; !ok {
			t.Fatalf("phase %q not exported: %v", name, phases)
		}
	}
	seq := 0
	p.send(t, 300, 20, base, &seq)
	in.waitCountsRunning(t, c, p.expected())
	waitMetric(t, in.app, "weir_commits_total", metricSum(t, in.app, "weir_commits_total")+1)
	phases = loopPhases(t, in)
	elapsed := time.Since(started).Seconds()
	var sum float64
	for name, s := range phases {
		sum += s
		if s < 0 {
			t.Errorf("phase %q: %v s", name, s)
		}
	}
	for _, name := range []string{"poll", "handoff", "process", "commit"} {
		if phases[name] <= 0 {
			t.Errorf("phase %q took no time after 300 orders and a commit: %v", name, phases)
		}
	}
	if sum > elapsed {
		t.Errorf("phases add up to %.3f s, more than the %.3f s the instance has run: %v", sum, elapsed, phases)
	}
	in.stop(t)
}
