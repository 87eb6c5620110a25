package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// readCommittedUpdates reads topic up to its high watermark and returns,
// per window, the counts of committed transactions (and of
// non-transactional records) in the order they were written: what a
// read_committed consumer sees once the transactions open now have ended
// (records of those are left out). It reads at read_uncommitted with the
// markers and applies them itself: a read_committed reader cannot tell
// when it has passed the records of a transaction aborted after it listed
// the end offsets (it never sees them, and the marker lies beyond).
func readCommittedUpdates(t *testing.T, c *cluster, topic string) map[orders.WindowKey][]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends := listEnds(t, cl, topic)
	read := map[int32]int64{}
	done := func() bool {
		for p, e := range ends {
			if read[p] < e {
				return false
			}
		}
		return true
	}
	ks, vs := orders.CountKeySerde(), serde.Int64()
	type update struct {
		w orders.WindowKey
		n int64
	}
	// open holds, per partition and producer, the updates of its open
	// transaction.
	open := map[int32]map[int64][]update{}
	out := map[orders.WindowKey][]int64{}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (read %v of %v)", topic, ctx.Err(), read, ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			read[r.Partition] = r.Offset + 1
			if open[r.Partition] == nil {
				open[r.Partition] = map[int64][]update{}
			}
			if r.Attrs.IsControl() {
				// Key: version int16, type int16 (0 abort, 1 commit).
				if len(r.Key) >= 4 && r.Key[3] == 1 {
					for _, u := range open[r.Partition][r.ProducerID] {
						out[u.w] = append(out[u.w], u.n)
					}
				}
				delete(open[r.Partition], r.ProducerID)
				return
			}
			k, err := ks.Deserialize(r.Topic, r.Key)
			if err != nil {
				t.Fatal(err)
			}
			v, err := vs.Deserialize(r.Topic, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			u := update{orders.WindowKey{Customer: k.Key, Start: k.Window.Start.UnixMilli()}, v}
			if r.Attrs.IsTransactional() {
				open[r.Partition][r.ProducerID] = append(open[r.Partition][r.ProducerID], u)
				return
			}
			out[u.w] = append(out[u.w], u.n)
		})
	}
	return out
}

// lastCounts is the last count of each window.
func lastCounts(seqs map[orders.WindowKey][]int64) map[orders.WindowKey]int64 {
	out := map[orders.WindowKey]int64{}
	for k, s := range seqs {
		out[k] = s[len(s)-1]
	}
	return out
}

// waitMetricAtLeast polls until metric name of in sums to at least v.
func (in *instance) waitMetricAtLeast(t *testing.T, name string, v float64) {
	t.Helper()
	in.waitMetricAbove(t, name, v-0.5)
}

// TestExactlyOnceKilledMidTransaction runs the windowed count without a
// write cache, so that every input record sends a count update and a
// changelog record at once. The instance is abandoned (no commit, no
// leave, as kill -9) while a commit interval's worth of records is
// processed and not committed, and a new instance takes over the same
// state directory. Read at read_committed, every window's updates must be
// exactly 1, 2, ..., n with n the window's true count: no update of the
// killed transaction is visible, and no input record counts twice (its
// store's state held nothing of the aborted transaction, the restore read
// only committed changelog records).
//
// The at-least-once run beside it (same steps, no ExactlyOnce) shows what
// this guards against: the records processed after the last commit reach
// the changelog, the restore replays them, and processing them again
// counts them twice; it logs the overcount it saw (timing decides how much
// was in flight at the kill, so it asserts only counts at least the true
// ones). With ExactlyOnce replaced by at-least-once, the exact assertion
// fails.
func TestExactlyOnceKilledMidTransaction(t *testing.T) {
	for _, eos := range []bool{true, false} {
		name := "at-least-once"
		if eos {
			name = "exactly-once"
		}
		t.Run(name, func(t *testing.T) { testKilledMidTransaction(t, eos) })
	}
}

func testKilledMidTransaction(t *testing.T, eos bool) {
	c := newWeir(t, 2)
	dir := t.TempDir()
	opts := []runtime.Option{runtime.NoWriteCache(), runtime.CommitInterval(2 * time.Second)}
	if eos {
		opts = append(opts, runtime.ExactlyOnce(), runtime.TransactionTimeout(5*time.Second))
	}
	p := newProducer(t, c)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	seq := 0

	in := startInstance(t, c, dir, opts...)
	p.send(t, 300, 5, base, &seq)
	in.waitMetricAtLeast(t, "weir_records_processed_total", 300)
	commits := metricSum(t, in.app, "weir_commits_total")
	in.waitMetricAbove(t, "weir_commits_total", commits)

	// A second batch, processed but (the commit interval being 2s) not
	// committed when the instance dies.
	p.send(t, 300, 5, base, &seq)
	in.waitMetricAtLeast(t, "weir_records_processed_total", 600)
	processed := in.app.Abandon()
	t.Logf("abandoned after processing to %v", processed)

	in2 := startInstance(t, c, dir, opts...)
	p.send(t, 100, 5, base, &seq)
	want := p.expected()

	deadline := time.Now().Add(60 * time.Second)
	var got map[orders.WindowKey][]int64
	for {
		in2.checkRunning(t)
		got = readCommittedUpdates(t, c, orders.UpdatesTopic)
		last := lastCounts(got)
		reached := len(last) == len(want)
		for k, w := range want {
			if last[k] < w {
				reached = false
			}
		}
		if reached {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never reached the input's:\n%s", countDiff(want, last))
		}
		time.Sleep(200 * time.Millisecond) // polling interval with a deadline
	}
	if !eos {
		over := int64(0)
		for k, w := range want {
			over += lastCounts(got)[k] - w
		}
		t.Logf("at-least-once: windows overcounted by %d in all (%d input records)", over, seq)
		in2.stop(t)
		return
	}
	if d := countDiff(want, lastCounts(got)); d != "" {
		t.Errorf("final counts at read_committed differ from the input:\n%s", d)
	}
	checkExactUpdates(t, got)
	if n := metricSum(t, in2.app, "weir_transactions_total"); n == 0 {
		t.Errorf("no transaction counted by the new instance")
	}
	in2.stop(t)
}

// TestExactlyOnceRebalance scales an exactly-once instance out to two while
// orders flow: the rebalance takes partitions from the first instance in
// the middle of its transaction, which aborts, and every task it keeps
// rolls back to the last committed transaction (weir_transactions_total
// {result="aborted"}). The updates read at read_committed stay exact:
// 1, 2, ..., n per window.
func TestExactlyOnceRebalance(t *testing.T) {
	c := newWeir(t, 4)
	opts := []runtime.Option{runtime.NoWriteCache(), runtime.CommitInterval(time.Second), runtime.ExactlyOnce()}
	p := newProducer(t, c)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	seq := 0
	a := startInstance(t, c, t.TempDir(), opts...)
	p.send(t, 400, 8, base, &seq)
	a.waitMetricAtLeast(t, "weir_records_processed_total", 400)
	p.send(t, 200, 8, base, &seq)
	b := startInstance(t, c, t.TempDir(), opts...)
	deadline := time.Now().Add(60 * time.Second)
	for len(b.app.Tasks()) == 0 {
		b.checkRunning(t)
		if time.Now().After(deadline) {
			t.Fatal("the second instance never got a task")
		}
		time.Sleep(50 * time.Millisecond) // polling interval with a deadline
	}
	for range 5 {
		p.send(t, 100, 8, base, &seq)
		time.Sleep(100 * time.Millisecond) // pacing the input, not synchronization
	}
	want := p.expected()
	deadline = time.Now().Add(60 * time.Second)
	var got map[orders.WindowKey][]int64
	for {
		a.checkRunning(t)
		b.checkRunning(t)
		got = readCommittedUpdates(t, c, orders.UpdatesTopic)
		if countDiff(want, lastCounts(got)) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never matched the input:\n%s", countDiff(want, lastCounts(got)))
		}
		time.Sleep(200 * time.Millisecond) // polling interval with a deadline
	}
	checkExactUpdates(t, got)
	t.Logf("transactions: first instance %v, second %v",
		metricSum(t, a.app, "weir_transactions_total"), metricSum(t, b.app, "weir_transactions_total"))
	a.stop(t)
	b.stop(t)
}

// checkExactUpdates fails t unless every window's updates, read at
// read_committed, are 1, 2, ..., n.
func checkExactUpdates(t *testing.T, got map[orders.WindowKey][]int64) {
	t.Helper()
	for k, s := range got {
		for i, v := range s {
			if v != int64(i+1) {
				t.Errorf("window %v: updates %v: update %d is %d, want %d (an input record counted twice, or an aborted update visible)", k, s, i, v, i+1)
				break
			}
		}
	}
}
