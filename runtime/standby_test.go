package runtime_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
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

// TestStandbyTakeoverInMemory is TestStandbyTakeover for an in-memory
// store: the orders topology with its Suppress step, whose buffer is kept
// in memory and logged. The survivor's standby copy of the buffer (the
// changelog compacted by key) is handed to the task when it takes over, so
// the takeover reads from the broker only the buffer changelog's tail the
// standby had not read; the same run with the copy not handed over (as
// before standbys kept in-memory stores) reads the whole changelog.
//
// The instance is killed once it has committed every order, so nothing is
// replayed: the windows still open at the kill are pending in the buffer
// only, and no later order of theirs would put them back. Orders an hour
// later then close every window, and each window's final count must come
// out exactly: a buffer that lost a pending window would never emit it.
func TestStandbyTakeoverInMemory(t *testing.T) {
	c := newKfake(t, 6) // its shorter session timeout makes the takeover quicker
	p := newProducer(t, c)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	seq := 0
	opts := []runtime.Option{runtime.StandbyReplicas(1), runtime.NoWriteCache()}
	a := startInstanceOf(t, c, t.TempDir(), true, opts...)
	b := startInstanceOf(t, c, t.TempDir(), true, opts...)
	waitTasks(t, 6, a, b)
	for range 10 {
		p.send(t, 300, 30, base, &seq)
	}
	waitCounts(t, c, p.expected())
	waitAllCommitted(t, c)
	killed := a.app.Tasks()
	before := metricByTaskStore(t, b.app, "weir_restored_records_total")
	a.app.Abandon()
	ends := changelogEndsByStore(t, c)
	waitTasks(t, 6, b)
	slack := map[orders.WindowKey]int64{}
	waitCountsWithin(t, c, p.expected(), slack)

	after := metricByTaskStore(t, b.app, "weir_restored_records_total")
	var buffer string
	for store := range ends {
		if store != "orders-per-minute-store" {
			buffer = store
		}
	}
	if len(ends) != 2 || buffer == "" {
		t.Fatalf("changelogs %v: want the count store's and the Suppress buffer's", ends)
	}
	var atTakeover, standbyApplied, changelog float64
	for _, id := range killed {
		atTakeover += after[[2]string{id.String(), buffer}] - before[[2]string{id.String(), buffer}]
		standbyApplied += after[[2]string{id.String() + "-standby", buffer}]
		changelog += float64(ends[buffer][int32(id.Partition)])
	}
	t.Logf("Suppress buffer %q of tasks %v: changelog records %v, read by the standbys %v, read at takeover %v",
		buffer, killed, changelog, standbyApplied, atTakeover)
	if changelog < 1000 {
		t.Fatalf("the killed tasks' buffer changelogs hold %v records; the test needs a long changelog", changelog)
	}
	if standbyApplied < changelog/2 {
		t.Errorf("standbys read %v of %v buffer changelog records: they were not kept warm", standbyApplied, changelog)
	}
	if atTakeover > changelog/10 {
		t.Errorf("takeover read %v of %v buffer changelog records: more than the tail", atTakeover, changelog)
	}

	// Orders an hour later close every window so far on every partition;
	// each window's final count must then be out.
	want := p.expected()
	closing := base.Add(time.Hour)
	p.send(t, 30, 30, closing, &seq)
	deadline := time.Now().Add(40 * time.Second)
	for {
		b.checkRunning(t)
		got := readCountsOf(t, c, orders.FinalTopic)
		var bad string
		for k, w := range want {
			if g, ok := got[k]; !ok || g < w || g > w+slack[k] {
				bad += fmt.Sprintf("  %v: final %d (emitted %v), want %d..%d\n", k, g, ok, w, w+slack[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				bad += fmt.Sprintf("  %v: a final count for a window still open or never seen\n", k)
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final counts outside the at-least-once bound:\n%s", bad)
		}
		time.Sleep(250 * time.Millisecond) // polling interval with a deadline
	}
	b.stop(t)
}

// waitAllCommitted waits until the group has committed every input
// partition's end offset.
func waitAllCommitted(t *testing.T, c *cluster) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends := endOffsets(t, c, orders.InputTopic)
		committed := committedOffsets(t, c)
		done := true
		for p, e := range ends {
			done = done && committed[streams.TopicPartition{Topic: orders.InputTopic, Partition: streams.Partition(p)}] == streams.Offset(e)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %v, input ends %v", committed, ends)
		}
		time.Sleep(20 * time.Millisecond) // polling interval with a deadline
	}
}

// metricByTaskStore returns metric name by task and store label.
func metricByTaskStore(t *testing.T, a *runtime.Application, name string) map[[2]string]float64 {
	t.Helper()
	fams, err := a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var key [2]string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "task":
					key[0] = l.GetValue()
				case "store":
					key[1] = l.GetValue()
				}
			}
			out[key] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// changelogEndsByStore returns, per store of the application, the end
// offset of each partition of its changelog topic.
func changelogEndsByStore(t *testing.T, c *cluster) map[string]map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tds, err := kadm.NewClient(cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int32]int64{}
	for _, name := range tds.Names() {
		if store, ok := strings.CutPrefix(name, "orders-app-"); ok && strings.HasSuffix(store, "-changelog") {
			out[strings.TrimSuffix(store, "-changelog")] = listEnds(t, cl, name)
		}
	}
	return out
}
