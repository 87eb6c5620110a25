package runtime_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// Topics of the join tests.
const (
	joinLeft  = "join-left"
	joinRight = "join-right"
	joinOut   = "join-out"
)

// joinTopology joins joinLeft with joinRight by key within window, with
// grace, writing "left+right" to joinOut.
func joinTopology(t *testing.T, window, grace time.Duration) *streams.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	l := dsl.Stream(b, joinLeft, serde.String(), serde.String())
	r := dsl.Stream(b, joinRight, serde.String(), serde.String())
	dsl.Join(l, r, func(a, b string) string { return a + "+" + b },
		dsl.JoinWindowsOf(window).Grace(grace), dsl.Named("join")).
		To(joinOut)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// metricWhere sums the samples of metric name whose label has value.
func metricWhere(t *testing.T, a *runtime.Application, name, label, value string) (sum float64, found bool) {
	t.Helper()
	fams, err := a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
					found = true
				}
			}
		}
	}
	return sum, found
}

// newJoinCluster starts a two-broker kfake cluster with the join topics
// (parts partitions each), the right topic's partitions on broker 1 and
// the others on broker 0. Broker 1 holds every fetch back until release is
// closed.
func newJoinCluster(t *testing.T, parts int32) (addrs []string, release chan struct{}) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.GroupMinSessionTimeout(100*time.Millisecond),
		kfake.SeedTopics(parts, joinLeft, joinRight, joinOut))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for p := range parts {
		for topic, node := range map[string]int32{joinLeft: 0, joinRight: 1, joinOut: 0} {
			if err := c.MoveTopicPartition(topic, p, node); err != nil {
				t.Fatal(err)
			}
		}
	}
	release = make(chan struct{})
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() == 1 {
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false // the cluster answers the fetch as usual
	})
	return c.ListenAddrs(), release
}

// produceJoinInput produces n left records, one second apart in event
// time, and, with right, each one's right partner half a second later; it
// returns the join output they must give.
func produceJoinInput(t *testing.T, addrs []string, n int, right bool) map[string]string {
	t.Helper()
	return produceJoinRange(t, addrs, 0, n, right)
}

// produceJoinInputFrom produces the pairs from up to n, as produceJoinInput.
func produceJoinInputFrom(t *testing.T, addrs []string, from, n int) map[string]string {
	t.Helper()
	return produceJoinRange(t, addrs, from, n, true)
}

func produceJoinRange(t *testing.T, addrs []string, from, n int, right bool) map[string]string {
	t.Helper()
	pcl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	want := map[string]string{}
	for i := from; i < n; i++ {
		k := fmt.Sprintf("k%03d", i)
		at := base.Add(time.Duration(i) * time.Second)
		recs = append(recs, &kgo.Record{Topic: joinLeft, Key: []byte(k), Value: []byte("l" + k), Timestamp: at})
		if right {
			recs = append(recs, &kgo.Record{Topic: joinRight, Key: []byte(k), Value: []byte("r" + k), Timestamp: at.Add(500 * time.Millisecond)})
			want[k] = "l" + k + "+r" + k
		}
	}
	if err := pcl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return want
}

// startJoinApp runs the join (window 2s, grace 1s: a right record is late
// once the stream time is 3s past it) with the given MaxTaskIdle.
func startJoinApp(t *testing.T, addrs []string, idle time.Duration) (*runtime.Application, chan error) {
	t.Helper()
	a, err := runtime.New(joinTopology(t, 2*time.Second, time.Second),
		runtime.ApplicationID("join-app"), runtime.Brokers(addrs...), runtime.StateDir(t.TempDir()),
		runtime.CommitInterval(100*time.Millisecond), runtime.MaxTaskIdle(idle),
		runtime.Logger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	t.Cleanup(func() { _ = a.Close() })
	return a, done
}

// waitMetric polls until metric name sums to at least v.
func waitMetric(t *testing.T, a *runtime.Application, name string, v float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for metricSum(t, a, name) < v {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, never reached %v", name, metricSum(t, a, name), v)
		}
		time.Sleep(10 * time.Millisecond) // polling interval with a deadline
	}
}

func stopApp(t *testing.T, a *runtime.Application, done chan error) {
	t.Helper()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestJoinWaitsForUnfetchedInput: a join task must not run ahead on one
// input while the other input's records are on the broker but not fetched.
// The right topic's partitions live on a second broker whose fetches the
// cluster holds back; every record is produced before the application
// starts, with left and right timestamps interleaved, so every left record
// has its right partner within the window. The right side is released once
// the application either shows it knows the right partitions are behind
// (their lag gauge is above zero) or has processed every left record
// without them; in the second case the right records come after the stream
// time passed them and are dropped as late. Every pair must be joined.
func TestJoinWaitsForUnfetchedInput(t *testing.T) {
	const (
		parts = 2
		n     = 200
	)
	addrs, release := newJoinCluster(t, parts)
	want := produceJoinInput(t, addrs, n, true)
	a, done := startJoinApp(t, addrs, time.Minute)

	deadline := time.Now().Add(30 * time.Second)
	for {
		processed := metricSum(t, a, "weir_records_processed_total")
		lag, known := metricWhere(t, a, "weir_consumer_lag_records", "topic", joinRight)
		if known && lag > 0 || processed >= n {
			t.Logf("released the right side: %v records processed, right side's lag %v", processed, lag)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the application neither knew the right side behind nor processed the left side")
		}
		time.Sleep(10 * time.Millisecond) // polling interval with a deadline
	}
	close(release)

	// Once every input record is processed and a commit has completed
	// since (a commit waits for the output's acknowledgements), the output
	// topic is complete.
	waitMetric(t, a, "weir_records_processed_total", 2*n)
	waitMetric(t, a, "weir_commits_total", metricSum(t, a, "weir_commits_total")+1)
	got := readJoined(t, addrs)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("join output (-want +got):\n%s", diff)
	}
	if d := metricSum(t, a, "weir_dropped_records_total"); d != 0 {
		t.Errorf("weir_dropped_records_total = %v, want 0", d)
	}
	if e := metricSum(t, a, "weir_enforced_processing_total"); e != 0 {
		t.Errorf("weir_enforced_processing_total = %v, want 0", e)
	}
	stopApp(t, a, done)
}

// TestJoinEnforcesProcessingAfterMaxTaskIdle: with the right side's
// records on the broker but never fetched, the task waits MaxTaskIdle and
// then processes the left side anyway, counting it as enforced.
func TestJoinEnforcesProcessingAfterMaxTaskIdle(t *testing.T) {
	const n = 50
	addrs, release := newJoinCluster(t, 1)
	t.Cleanup(func() { close(release) })
	produceJoinInput(t, addrs, n, true)
	a, done := startJoinApp(t, addrs, 100*time.Millisecond)
	waitMetric(t, a, "weir_records_processed_total", n)
	if p, e := metricSum(t, a, "weir_records_processed_total"), metricSum(t, a, "weir_enforced_processing_total"); p != n || e != n {
		t.Errorf("processed %v, enforced %v; want both %d (the left side only)", p, e, n)
	}
	stopApp(t, a, done)
}

// TestJoinDoesNotWaitForInputAtItsEnd: a task does not wait for an input
// partition the consumer knows is at its end (here: empty), however long
// MaxTaskIdle is.
func TestJoinDoesNotWaitForInputAtItsEnd(t *testing.T) {
	const n = 50
	addrs, release := newJoinCluster(t, 2)
	close(release)
	produceJoinInput(t, addrs, n, false)
	a, done := startJoinApp(t, addrs, time.Hour)
	waitMetric(t, a, "weir_records_processed_total", n)
	if e := metricSum(t, a, "weir_enforced_processing_total"); e != 0 {
		t.Errorf("weir_enforced_processing_total = %v, want 0", e)
	}
	stopApp(t, a, done)
}

// readJoined reads joinOut up to its end offsets and returns the value per
// key.
func readJoined(t *testing.T, addrs []string) map[string]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(joinOut),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := listEnds(t, cl, joinOut)
	read := map[int32]int64{}
	out := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		done := true
		for p, e := range ends {
			done = done && read[p] >= e
		}
		if done {
			return out
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: read %v of %v", joinOut, read, ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if prev, ok := out[string(r.Key)]; ok {
				t.Errorf("key %s joined twice: %q and %q", r.Key, prev, r.Value)
			}
			out[string(r.Key)] = string(r.Value)
			read[r.Partition] = r.Offset + 1
		})
	}
}

// TestJoinTaskMovedBackFetchesAgain: a task whose input partition was
// paused (its buffer full while the task waited for the other input) moves
// to another instance and back; the instance must fetch that partition
// again, or the join loses every later pair of it.
func TestJoinTaskMovedBackFetchesAgain(t *testing.T) {
	const n = 50
	addrs, release := newJoinCluster(t, 2)
	want := produceJoinInput(t, addrs, n, true)
	// Left buffers of 5: each task's left partition is paused at once, as
	// the task waits for the held-back right side.
	start := func() (*runtime.Application, chan error) {
		t.Helper()
		a, err := runtime.New(joinTopology(t, 2*time.Second, time.Second),
			runtime.ApplicationID("join-app"), runtime.Brokers(addrs...), runtime.StateDir(t.TempDir()),
			runtime.CommitInterval(100*time.Millisecond), runtime.MaxTaskIdle(time.Minute),
			runtime.MaxBufferedPerPartition(5), runtime.SessionTimeout(3*time.Second),
			runtime.Logger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.Run(context.Background()) }()
		t.Cleanup(func() { _ = a.Close() })
		return a, done
	}
	waitTaskCount := func(a *runtime.Application, n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(a.Tasks()) != n {
			if time.Now().After(deadline) {
				t.Fatalf("instance has tasks %v, want %d", a.Tasks(), n)
			}
			time.Sleep(10 * time.Millisecond) // polling interval with a deadline
		}
	}
	a, aDone := start()
	waitTaskCount(a, 2)
	// Left records reached the tasks (the lag gauge is set in the step that
	// hands them over and pauses the full partitions).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := metricWhere(t, a, "weir_consumer_lag_records", "topic", joinLeft); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no left records fetched")
		}
		time.Sleep(10 * time.Millisecond) // polling interval with a deadline
	}
	b, bDone := start()
	waitTaskCount(a, 1)
	waitTaskCount(b, 1)
	close(release)
	waitMetric(t, b, "weir_records_processed_total", 1)
	stopApp(t, b, bDone)
	waitTaskCount(a, 2)

	// A second batch: the task that came back must fetch its left
	// partition again.
	for k, v := range produceJoinInputFrom(t, addrs, n, 2*n) {
		want[k] = v
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		got := readJoined(t, addrs)
		if len(got) == len(want) {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("join output (-want +got):\n%s", diff)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("joined %d of %d pairs", len(got), len(want))
		}
		time.Sleep(50 * time.Millisecond) // polling interval with a deadline
	}
	stopApp(t, a, aDone)
}
