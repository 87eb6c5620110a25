package proccluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// TestFaultStreamsExactlyOnceCoordinatorKilled: the orders-per-minute
// application in exactly-once mode (runtime.ExactlyOnce: one transaction
// per commit holding output, changelog and input offsets) on three weir
// broker processes, its topics replicated 3 ways. While an idempotent
// producer sends orders, the broker leading the application's
// __transaction_state partition (its transaction coordinator) is
// SIGKILLed, then restarted.
//
// Exactly-once: every window closed (by orders an hour later) has, read
// at read_committed, one final count, and it equals the number of the
// window's orders in the input topic, no more, no less; no final is
// emitted for a window the input does not hold.
func TestFaultStreamsExactlyOnceCoordinatorKilled(t *testing.T) {
	faultTest(t)
	const appID = "orders-eos"
	o := startOrdersRun(t, appID, runtime.ExactlyOnce())
	ctx, c, adm := o.ctx, o.c, o.adm
	o.startOrders()
	o.processed("the application counting")

	// The coordinator of the application's transactional id.
	var txnID string
	var victim int32
	eventually(t, 20*time.Second, "the application's transactional id and its coordinator", func() error {
		lt, err := adm.ListTransactions(ctx, nil, nil)
		if err != nil {
			return err
		}
		for _, id := range lt.TransactionalIDs() {
			if strings.HasPrefix(id, appID) {
				txnID = id
			}
		}
		if txnID == "" {
			return fmt.Errorf("no transactional id of %s among %v", appID, lt.TransactionalIDs())
		}
		co := adm.FindTxnCoordinators(ctx, txnID)[txnID]
		if co.Err != nil {
			return co.Err
		}
		victim = co.NodeID
		return nil
	})
	eventually(t, 30*time.Second, "every input partition led, with an ISR of 3", o.h.fullISR)
	t.Logf("killing node %d, transaction coordinator of %s (%d orders acknowledged so far)", victim, txnID, o.acked())
	c.Node(victim).Kill()
	o.processed(fmt.Sprintf("the application counting after node %d's kill", victim))
	c.Node(victim).Restart()
	o.processed(fmt.Sprintf("the application counting after node %d's restart", victim))
	closing := o.closeWindows()

	// What the input holds (acknowledged or not: a produce that failed
	// may still have been written), by window.
	want := map[orders.WindowKey]int64{}
	in, err := readTopic(ctx, c.Addrs(), orders.InputTopic, kgo.ReadUncommitted(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range in {
		if k := orders.Of(string(r.Key), r.Timestamp); k.Start != closing {
			want[k]++
		}
	}
	t.Logf("%d orders in the input (%d acknowledged) in %d windows", len(in), o.acked(), len(want))

	eventually(t, 40*time.Second, "every closed window's one final count equal to its orders", func() error {
		o.appRunning()
		finals, err := readFinals(ctx, c.Addrs(), kgo.ReadCommitted(), false)
		if err != nil {
			return err
		}
		return exactFinals(want, finals)
	})
	t.Logf("%d windows closed, each with one final count equal to its orders", len(want))
}
