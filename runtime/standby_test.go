package runtime_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/streams"
)

// TestStandbyTakeover runs the windowed count on two instances with one
// standby replica per task, kills the instance running half the tasks
// (no commit, no leave) and checks that the survivor, which kept standby
// copies of those tasks' stores, replays only a small tail of their
// changelogs when it takes them over, and that every window's count stays
// within the at-least-once bound of TestMultiInstance. The same run
// without standbys is the control: there the takeover replays the whole
// changelog, which shows that the counter measures the takeover's replay.
func TestStandbyTakeover(t *testing.T) {
	for _, cl := range clusters {
		t.Run(cl.name, func(t *testing.T) { testStandbyTakeover(t, cl.new(t, 6), 1) })
	}
	t.Run("weir/no-standbys", func(t *testing.T) { testStandbyTakeover(t, newWeir(t, 6), 0) })
}

func testStandbyTakeover(t *testing.T, c *cluster, standbys int) {
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0
	// No write cache: every count update reaches the changelog, so the
	// changelogs are long and a full restore would be plain to see.
	opts := []runtime.Option{runtime.StandbyReplicas(standbys), runtime.NoWriteCache()}
	a := startInstance(t, c, t.TempDir(), opts...)
	b := startInstance(t, c, t.TempDir(), opts...)
	waitTasks(t, 6, a, b)
	for range 10 {
		p.send(t, 300, 30, base, &seq)
	}
	waitCounts(t, c, p.expected())

	killed := a.app.Tasks()
	before := restoredPerTask(t, b.app)
	if standbys > 0 {
		// The survivor's standby copies have read the changelogs: wait
		// until they report nothing left, so that the kill finds them warm
		// (their position is what the test is about, not how fast they got
		// there).
		waitStandbysCaughtUp(t, b.app, killed)
	}

	// More orders, then kill: the standby copies are behind by what they
	// had not read yet when the instance died.
	f := startFlow(t, p, base, &seq)
	waitSent(t, p, 3000+400)
	processed := a.app.Abandon()
	// What the killed instance wrote to the changelogs; the survivor
	// writes more once it runs the tasks.
	ends := changelogEnds(t, c)
	committed := committedOffsets(t, c)
	f.halt(t)
	slack := replayed(p, processed, committed)
	waitTasks(t, 6, b)
	waitCountsWithin(t, c, p.expected(), slack)

	after := restoredPerTask(t, b.app)
	var atTakeover, standbyApplied, changelog float64
	for _, id := range killed {
		label := id.String()
		atTakeover += after[label] - before[label]
		standbyApplied += after[label+"-standby"]
		changelog += float64(ends[int32(id.Partition)])
	}
	t.Logf("tasks %v: changelog records %v, applied by the standbys %v, replayed at takeover %v", killed, changelog, standbyApplied, atTakeover)
	if changelog < 1000 {
		t.Fatalf("the killed tasks' changelogs hold %v records; the test needs a long changelog", changelog)
	}
	if standbys == 0 {
		if atTakeover < changelog {
			t.Errorf("without standbys the takeover replayed %v of %v changelog records, want all", atTakeover, changelog)
		}
		b.stop(t)
		return
	}
	if standbyApplied < changelog/2 {
		t.Errorf("standbys applied %v of %v changelog records: they were not kept warm", standbyApplied, changelog)
	}
	if atTakeover > changelog/10 {
		t.Errorf("takeover replayed %v of %v changelog records: more than the tail", atTakeover, changelog)
	}
	b.stop(t)
}

// restoredPerTask returns weir_restored_records_total by task label.
func restoredPerTask(t *testing.T, a *runtime.Application) map[string]float64 {
	t.Helper()
	return metricByTask(t, a, "weir_restored_records_total")
}

func metricByTask(t *testing.T, a *runtime.Application, name string) map[string]float64 {
	t.Helper()
	fams, err := a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "task" {
					out[l.GetValue()] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// waitStandbysCaughtUp waits until a reports standby copies of every task
// of ids with no changelog records left to read.
func waitStandbysCaughtUp(t *testing.T, a *runtime.Application, ids []streams.TaskID) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := metricByTask(t, a, "weir_restore_remaining_records")
		ok := true
		for _, id := range ids {
			v, seen := left[id.String()+"-standby"]
			ok = ok && seen && v == 0
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("standbys of %v never caught up: remaining %v", ids, left)
		}
		time.Sleep(20 * time.Millisecond) // polling interval with a deadline
	}
}

// changelogEnds returns the end offset of each partition of the
// application's changelog topic.
func changelogEnds(t *testing.T, c *cluster) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var topic string
	for _, name := range tds.Names() {
		if strings.HasPrefix(name, "orders-app-") && strings.HasSuffix(name, "-changelog") {
			if topic != "" {
				t.Fatalf("two changelog topics: %s, %s", topic, name)
			}
			topic = name
		}
	}
	if topic == "" {
		t.Fatal("no changelog topic")
	}
	return listEnds(t, cl, topic)
}

// waitSent waits until the producer has had n orders acknowledged.
func waitSent(t *testing.T, p *producer, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.sent)
		p.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d orders sent, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond) // polling interval with a deadline
	}
}
