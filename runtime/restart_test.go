package runtime_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/broker"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/streams"
)

// restartableBroker is an in-process Weir broker that can be stopped and
// started again on the same address and data directory.
type restartableBroker struct {
	t   *testing.T
	dir string
	b   *broker.Broker
}

func newRestartableBroker(t *testing.T) *restartableBroker {
	t.Helper()
	r := &restartableBroker{t: t, dir: t.TempDir()}
	r.start("127.0.0.1:0")
	t.Cleanup(func() {
		if r.b != nil {
			_ = r.b.Close()
		}
	})
	return r
}

func (r *restartableBroker) start(listen string) {
	r.t.Helper()
	b, err := broker.Open(broker.Options{
		Listen: listen, DataDir: r.dir, Fsync: broker.FsyncNever,
		GroupInitialRebalanceDelay: -1, Logger: quietLogger().With("component", "broker"),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.b = b
}

func (r *restartableBroker) stop() {
	r.t.Helper()
	if err := r.b.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.b = nil
}

// waitMetricAbove polls until metric name of in sums to more than v.
func (in *instance) waitMetricAbove(t *testing.T, name string, v float64) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for metricSum(t, in.app, name) <= v {
		in.checkRunning(t)
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed at %v (want above %v)", name, metricSum(t, in.app, name), v)
		}
		time.Sleep(20 * time.Millisecond) // polling interval with a deadline
	}
}

// waitMetricBelow polls until metric name of in sums to less than v.
func (in *instance) waitMetricBelow(t *testing.T, name string, v float64) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for metricSum(t, in.app, name) >= v {
		in.checkRunning(t)
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed at %v (want below %v)", name, metricSum(t, in.app, name), v)
		}
		time.Sleep(20 * time.Millisecond) // polling interval with a deadline
	}
}

// waitCountsRunning is waitCounts that also fails as soon as the
// instance's Run returns.
func (in *instance) waitCountsRunning(t *testing.T, c *cluster, want map[orders.WindowKey]int64) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		in.checkRunning(t)
		diff := countDiff(want, readCounts(t, c))
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never matched the input:\n%s", diff)
		}
		time.Sleep(100 * time.Millisecond) // polling interval with a deadline
	}
}

// TestBrokerRestart: the Weir broker stops and starts again on the same
// address and data directory under a running instance; the instance keeps
// running, goes on processing, and its counts match the input within the
// bound.
//
// idle: the broker restarts between two batches of orders. flowing: orders
// flow while the broker is away for a second and after it is back, and the
// instance's metrics must show it felt the outage (a failed or stalled
// commit, or a rejoin). The idle variant asserts no such sign: with
// nothing to commit, whether a heartbeat or commit happens to hit the short
// outage (and is refused or retried) is a matter of timing, so it only
// logs the metrics; what it shows is that the instance carries on.
//
// The bound asserted: every window's count is at least the input's, and
// exceeds it by at most the window's records at or after the offsets the
// group had committed just before the broker stopped. When the instance
// learns that it lost its membership (during the outage, or after the
// restart when the broker answers its heartbeat or commit with an unknown
// member), its tasks close without committing and resume from the
// committed offsets: records processed after that commit are processed
// again on top of their changelog writes (at-least-once).
//
// long: as flowing, but the instance's commit timeout (250ms) is far
// shorter than the outage (2s), as a default 60s timeout is shorter than
// a long outage. The instance must stall its commit rather than stop:
// weir_commit_stalled turns 1 and timed-out or unreachable attempts are
// counted, no record is processed while it is stalled (processing is held
// back, not buffered), and once the broker is back a retry succeeds
// (weir_commit_stalled 0) and processing resumes (the flow stops when the
// broker is back; a last batch must be processed).
//
// lost: as long, but the broker stays away 3 s beyond the group session:
// the instance loses its tasks while its commit is stalled (asserted), the
// stall still shows when the outage ends, and after the restart the
// instance rejoins, restores its tasks and resumes as in long.
func TestBrokerRestart(t *testing.T) {
	for _, mode := range []string{"idle", "flowing", "long", "lost"} {
		t.Run(mode, func(t *testing.T) { testBrokerRestart(t, mode) })
	}
}

func testBrokerRestart(t *testing.T, mode string) {
	flowing := mode != "idle"
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	rb := newRestartableBroker(t)
	c := &cluster{addrs: []string{rb.b.Addr()}, session: 6 * time.Second}
	createTopics(t, c, 6)
	p := newProducer(t, c)
	var extra []runtime.Option
	outage := time.Second
	stalls := mode == "long" || mode == "lost"
	if stalls {
		extra = append(extra, runtime.CommitTimeout(250*time.Millisecond))
		outage = 2 * time.Second
	}
	if mode == "lost" {
		outage = c.session + 3*time.Second
	}
	in := startInstance(t, c, t.TempDir(), extra...)
	seq := 0
	p.send(t, 300, 30, base, &seq)
	in.waitCountsRunning(t, c, p.expected())

	var f *flow
	if flowing {
		f = startFlow(t, p, base, &seq)
		in.waitMetricAbove(t, "weir_records_processed_total", 600)
	}
	committed := committedOffsets(t, c)
	signs := readOutageSigns(t, in.app)
	rb.stop()
	stopped := time.Now()
	if stalls {
		in.waitMetricAbove(t, "weir_commit_stalled", 0)
		held := metricSum(t, in.app, "weir_records_processed_total")
		// The outage lasts this long; nothing waits on it.
		<-time.After(time.Until(stopped.Add(outage)))
		if got := metricSum(t, in.app, "weir_commit_stalled"); got != 1 {
			t.Fatalf("weir_commit_stalled is %v with the broker still away, want 1", got)
		}
		if mode == "lost" {
			// The scenario itself: the session ended and the tasks
			// closed while the commit was stalled.
			if got := metricSum(t, in.app, "weir_active_tasks"); got != 0 {
				t.Fatalf("weir_active_tasks is %v %v into the outage, want 0 (the session is %v)", got, outage, c.session)
			}
		}
		if got := metricSum(t, in.app, "weir_records_processed_total"); got != held {
			t.Fatalf("records processed while the commit was stalled: %v, then %v", held, got)
		}
		t.Logf("stalled %v into the outage: %v failed commit attempts", outage, metricSum(t, in.app, "weir_commit_failures_total")-signs.failures)
	} else if flowing {
		// The outage lasts this long; nothing waits on it.
		<-time.After(time.Until(stopped.Add(outage)))
	}
	rb.start(c.addrs[0])
	if stalls {
		// The flow's orders held up by the outage go out, the flow stops,
		// and one more batch must be processed: the instance resumed.
		f.halt(t)
		processed := metricSum(t, in.app, "weir_records_processed_total")
		p.send(t, 300, 30, base, &seq)
		// At least these 300 more (the flow's last orders may all have
		// been processed already: exactly 300 is a pass).
		in.waitMetricAbove(t, "weir_records_processed_total", processed+299)
	} else if flowing {
		processed := metricSum(t, in.app, "weir_records_processed_total")
		in.waitMetricAbove(t, "weir_records_processed_total", processed+600)
		f.halt(t)
	} else {
		p.send(t, 300, 30, base, &seq)
	}

	slack := map[orders.WindowKey]int64{}
	p.mu.Lock()
	for _, s := range p.sent {
		tp := streams.TopicPartition{Topic: orders.InputTopic, Partition: streams.Partition(s.partition)}
		if streams.Offset(s.offset) >= committed[tp] {
			slack[s.key]++
		}
	}
	p.mu.Unlock()
	t.Logf("%d of %d records at or after the offsets committed before the restart", sum(slack), len(p.sent))
	if flowing {
		in.waitOutageFelt(t, signs)
		if stalls {
			in.waitMetricBelow(t, "weir_commit_stalled", 1)
		}
	} else {
		t.Logf("idle: metrics before the restart %+v, after %+v", signs, readOutageSigns(t, in.app))
	}
	waitCountsWithin(t, c, p.expected(), slack)
	in.checkRunning(t)
	in.stop(t)
}

// outageSigns is what an instance's metrics show of a broker outage.
type outageSigns struct {
	failures    float64 // weir_commit_failures_total
	assigned    uint64  // "assigned" rebalance callbacks (a rejoin)
	slowCommits uint64  // commits that took longer than half a second
}

func readOutageSigns(t *testing.T, a *runtime.Application) outageSigns {
	t.Helper()
	return outageSigns{
		failures:    metricSum(t, a, "weir_commit_failures_total"),
		assigned:    rebalanceCallbacks(t, a, "assigned"),
		slowCommits: commitsSlowerThan(t, a, 0.5),
	}
}

// waitOutageFelt polls until the instance's metrics show it felt a broker
// outage that lasted a second while records flowed: an offset commit
// failed, or it rejoined the group, or a commit waited out the outage
// (took over half a second; commits run every 200ms and take milliseconds
// otherwise, and one due while the broker is away blocks until it is back).
func (in *instance) waitOutageFelt(t *testing.T, before outageSigns) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		in.checkRunning(t)
		now := readOutageSigns(t, in.app)
		if now.failures > before.failures || now.assigned > before.assigned || now.slowCommits > before.slowCommits {
			t.Logf("outage felt: %+v -> %+v", before, now)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker outage went unnoticed: %+v -> %+v", before, now)
		}
		time.Sleep(20 * time.Millisecond) // polling interval with a deadline
	}
}

// commitsSlowerThan returns how many commits took longer than secs (a
// bucket bound of weir_commit_latency_seconds).
func commitsSlowerThan(t *testing.T, a *runtime.Application, secs float64) uint64 {
	t.Helper()
	fams, err := a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "weir_commit_latency_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() >= secs {
					return h.GetSampleCount() - b.GetCumulativeCount()
				}
			}
		}
	}
	return 0
}

// rebalanceCallbacks returns how many rebalance callbacks of kind
// ("assigned" or "revoked") the instance has run, from the sample count of
// weir_rebalance_callback_seconds.
func rebalanceCallbacks(t *testing.T, a *runtime.Application, kind string) uint64 {
	t.Helper()
	fams, err := a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fams {
		if f.GetName() != "weir_rebalance_callback_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == kind {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// TestCloseDuringOutage: Close on an instance whose commit is stalled by
// an unreachable broker returns promptly and cleanly (one short last
// commit attempt, no wait for the broker), rather than waiting for the
// broker to come back.
func TestCloseDuringOutage(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	rb := newRestartableBroker(t)
	c := &cluster{addrs: []string{rb.b.Addr()}, session: 6 * time.Second}
	createTopics(t, c, 6)
	p := newProducer(t, c)
	in := startInstance(t, c, t.TempDir(), runtime.CommitTimeout(250*time.Millisecond))
	seq := 0
	p.send(t, 300, 30, base, &seq)
	in.waitCountsRunning(t, c, p.expected())
	rb.stop()
	in.waitMetricAbove(t, "weir_commit_stalled", 0)
	closed := make(chan error, 1)
	go func() {
		_ = in.app.Close()
		closed <- <-in.done
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return within 30s with the broker away")
	}
}

// TestCloseWithProducerFull: the broker goes away while a commit's flush
// hands the producer more records than it buffers (a write cache holding
// many windows, a producer limit of 4 records). The Produce that finds the
// producer full must not wedge the instance: Close returns promptly, Run
// reports the dropped output as an error, and the group's committed
// offsets stay where they were before the broker left (no offset past an
// output record that was never produced).
func TestCloseWithProducerFull(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	rb := newRestartableBroker(t)
	c := &cluster{addrs: []string{rb.b.Addr()}, session: 6 * time.Second}
	createTopics(t, c, 2)
	p := newProducer(t, c)
	// NB: a commit interval longer than the test: the only commit after
	// the first is Close's, with the broker away.
	in := startInstance(t, c, t.TempDir(), runtime.CommitInterval(time.Hour),
		runtime.CommitTimeout(300*time.Millisecond), runtime.MaxBufferedProduce(4))
	seq := 0
	in.waitMetricAbove(t, "weir_active_tasks", 0)
	p.send(t, 200, 50, base, &seq)
	in.waitMetricAbove(t, "weir_records_processed_total", 199)
	before := committedOffsets(t, c)
	rb.stop()
	closed := make(chan error, 1)
	go func() {
		_ = in.app.Close()
		closed <- <-in.done
	}()
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "output dropped while the producer was full") {
			t.Fatalf("run returned %v, want the dropped output reported", err)
		}
		t.Logf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return within 30s with the producer full and the broker away")
	}
	rb.start(c.addrs[0])
	if diff := cmp.Diff(before, committedOffsets(t, c)); diff != "" {
		t.Fatalf("committed offsets moved with output dropped (-before +after):\n%s", diff)
	}
}
