package runtime_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// TestExactlyOnceCommitOutcomeUnknown makes the outcomes of the second and
// fourth transactions that commit input offsets unknown to an exactly-once
// instance while orders flow: in
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
	// NB: only transactions that commit input offsets count (the first
	// commit after a restart often holds no task yet); after the end,
	// only committed ones are called.
	fault := func(commit, ended bool, partitions int) error {
		if !commit || ended != afterEnd || partitions == 0 {
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
	checkExactUpdates(t, got)
	if n := metricSum(t, in.app, "weir_client_restarts_total"); n != 2 {
		t.Errorf("weir_client_restarts_total = %v, want 2 (one per unknown outcome)", n)
	}
	t.Logf("%d records; transactions %v", seq, metricSum(t, in.app, "weir_transactions_total"))
	in.stop(t)
}

// TestExactlyOnceCloseWhileProducerIDPending closes an exactly-once
// instance while its producer id cannot be initialized (the broker answers
// every InitProducerId with CONCURRENT_TRANSACTIONS, as it does while an
// earlier transaction of the id is being settled) and the group has already
// assigned it partitions, whose callback waits for the client: Run must
// return promptly, and cleanly. (Closing that client before canceling its
// context waited forever: the group's leave waits for the callback.)
func TestExactlyOnceCloseWhileProducerIDPending(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(2, orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	synced := make(chan struct{})
	var once sync.Once
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode = kerr.ConcurrentTransactions.Code
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.SyncGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		once.Do(func() { close(synced) })
		return nil, nil, false
	})
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	a, err := runtime.New(topo, runtime.ApplicationID("pending-pid"), runtime.Brokers(c.ListenAddrs()...),
		runtime.StateDir(t.TempDir()), runtime.ExactlyOnce(), runtime.Logger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	select {
	case <-synced:
	case err := <-done:
		t.Fatalf("Run returned before the group synced: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the group never synced within 30s")
	}
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run closed during startup = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of Close")
	}
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
}
