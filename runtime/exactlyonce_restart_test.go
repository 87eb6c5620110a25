package runtime_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// TestExactlyOnceCommitOutcomeUnknown makes the second and fourth commits'
// outcomes unknown to an exactly-once instance while orders flow: in
// "answer lost" the broker committed the transaction and the answer was
// lost; in "end not sent" the transaction was never ended and stays open
// on the broker. Either way the instance must not stop and must not
// guess: it replaces its transactional client (weir_client_restarts_total),
// whose new producer id settles the transaction on the broker, and its
// tasks resume from what the broker committed. Read at read_committed,
// every window's updates are exactly 1, 2, ..., n with n the window's
// true count: no input record counted twice or lost.
func TestExactlyOnceCommitOutcomeUnknown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ended bool
	}{{"answer lost", true}, {"end not sent", false}} {
		t.Run(tc.name, func(t *testing.T) { testCommitOutcomeUnknown(t, tc.ended) })
	}
}

func testCommitOutcomeUnknown(t *testing.T, afterEnd bool) {
	c := newWeir(t, 2)
	var commits, faults atomic.Int32
	fault := func(commit, ended bool) error {
		if !commit || ended != afterEnd {
			return nil
		}
		if n := commits.Add(1); n == 2 || n == 4 {
			faults.Add(1)
			return errors.New("injected: the transaction's end was not answered")
		}
		return nil
	}
	opts := []runtime.Option{runtime.NoWriteCache(), runtime.CommitInterval(300 * time.Millisecond),
		runtime.ExactlyOnce(), runtime.TransactionTimeout(5 * time.Second), runtime.EndTxnFault(fault)}
	p := newProducer(t, c)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	seq := 0
	in := startInstance(t, c, t.TempDir(), opts...)

	deadline := time.Now().Add(60 * time.Second)
	for faults.Load() < 2 || metricSum(t, in.app, "weir_client_restarts_total") < 2 {
		in.checkRunning(t)
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %d faults injected, %v client restarts", faults.Load(),
				metricSum(t, in.app, "weir_client_restarts_total"))
		}
		p.send(t, 40, 5, base, &seq)
		time.Sleep(50 * time.Millisecond) // pacing the input, not synchronization
	}
	p.send(t, 100, 5, base, &seq)
	want := p.expected()

	deadline = time.Now().Add(60 * time.Second)
	var got map[orders.WindowKey][]int64
	for {
		in.checkRunning(t)
		got = readCommittedUpdates(t, c, orders.UpdatesTopic)
		if countDiff(want, lastCounts(got)) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never matched the input (%d records):\n%s", seq, countDiff(want, lastCounts(got)))
		}
		time.Sleep(200 * time.Millisecond) // polling interval with a deadline
	}
	for k, s := range got {
		for i, v := range s {
			if v != int64(i+1) {
				t.Errorf("window %v: updates %v: update %d is %d, want %d (an input record counted twice, or an aborted update visible)", k, s, i, v, i+1)
				break
			}
		}
	}
	if n := metricSum(t, in.app, "weir_client_restarts_total"); n != 2 {
		t.Errorf("weir_client_restarts_total = %v, want 2 (one per unknown outcome)", n)
	}
	t.Logf("%d records; transactions %v", seq, metricSum(t, in.app, "weir_transactions_total"))
	in.stop(t)
}
