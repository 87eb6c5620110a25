package proccluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
)

// TestFaultStreamsBrokerKilled: the orders-per-minute application (its
// topology with final counts, the runtime in this process) on three
// weir broker processes (--broker-session-timeout 3s), its input and output
// topics and, by the runtime's defaults, its changelogs with replication
// factor 3. While an idempotent producer sends orders (synthetic
// timestamps 50ms apart, so windows close as they flow), a broker is
// SIGKILLed and restarted twice: first the application group's
// coordinator, then the leader of the most input partitions.
//
// At-least-once bound: a record counted and not yet committed when a
// fault strikes may be counted again after it (the task resumes from its
// committed offset, with a changelog that may already hold the count). So
// each window's final count lies between the orders of the window
// acknowledged to the producer and that plus, for each fault (each kill and
// each restart), the window's orders at or past the input offset the group
// had committed just before it. Every window closed (by orders an hour
// later) has its final count within the bound; none is missing, and none
// is emitted for a window never seen.
func TestFaultStreamsBrokerKilled(t *testing.T) {
	rng := faultTest(t)
	const appID = "orders-app"
	o := startOrdersRun(t, appID)
	ctx, c, adm, h := o.ctx, o.c, o.adm, o.h
	const parts = 3
	o.startOrders()
	o.processed("the application counting")

	// committedBefore: the group's committed input offsets just before each
	// fault.
	var committedBefore []map[int32]int64
	snapshotCommitted := func() {
		t.Helper()
		var offs kadm.OffsetResponses
		eventually(t, 20*time.Second, "the application's committed offsets", func() (err error) {
			offs, err = adm.FetchOffsets(ctx, appID)
			return err
		})
		m := map[int32]int64{}
		for p := range int32(parts) {
			if o, ok := offs.Lookup(orders.InputTopic, p); ok && o.Err == nil {
				m[p] = o.At
			}
		}
		committedBefore = append(committedBefore, m)
	}
	coordinator := func() int32 {
		var id int32
		eventually(t, 20*time.Second, "the application group's coordinator", func() error {
			d := adm.FindGroupCoordinators(ctx, appID)[appID]
			if d.Err != nil {
				return d.Err
			}
			id = d.NodeID
			return nil
		})
		return id
	}
	busiest := func() int32 {
		count := map[int32]int{}
		for p := range int32(parts) {
			l, _, err := h.leaderOf(p)
			if err == nil {
				count[l]++
			}
		}
		best := int32(1 + rng.IntN(3))
		for id, n := range count {
			if n > count[best] || (n == count[best] && id < best) {
				best = id
			}
		}
		return best
	}
	for i, pick := range []func() int32{coordinator, busiest} {
		eventually(t, 30*time.Second, "every input partition led, with an ISR of 3", h.fullISR)
		victim := pick()
		snapshotCommitted()
		t.Logf("fault %d: killing node %d (%d orders acknowledged so far)", i+1, victim, o.acked())
		c.Node(victim).Kill()
		o.processed(fmt.Sprintf("the application counting after node %d's kill", victim))
		snapshotCommitted()
		c.Node(victim).Restart()
		o.processed(fmt.Sprintf("the application counting after node %d's restart", victim))
	}
	closing := o.closeWindows()
	o.mu.Lock()
	want, slack := map[orders.WindowKey]int64{}, map[orders.WindowKey]int64{}
	for _, s := range o.sent {
		if s.key.Start == closing {
			continue // the closing orders' own windows stay open
		}
		want[s.key]++
		for _, cm := range committedBefore {
			if at, ok := cm[s.partition]; !ok || s.offset >= at {
				slack[s.key]++
			}
		}
	}
	t.Logf("%d orders acknowledged (%d failed) in %d windows", len(o.sent), o.failed, len(want))
	o.mu.Unlock()

	got := map[orders.WindowKey]int64{} // the last final count of each window
	eventually(t, 40*time.Second, "every closed window's final count within the at-least-once bound", func() error {
		o.appRunning()
		finals, err := readFinals(ctx, c.Addrs(), kgo.ReadUncommitted(), false)
		if err != nil {
			return err
		}
		clear(got)
		var bad []string
		for k, w := range want {
			g, ok := finals[k]
			if ok {
				got[k] = g[len(g)-1]
			}
			if !ok || got[k] < w || got[k] > w+slack[k] {
				bad = append(bad, fmt.Sprintf("%v: final %d (emitted %v), want %d..%d", k, got[k], ok, w, w+slack[k]))
			}
		}
		return badWindows(bad, want, finals)
	})
	over, extra := 0, int64(0)
	for k, w := range want {
		if got[k] > w {
			over++
			extra += got[k] - w
		}
	}
	t.Logf("%d windows closed, every final count within the bound; %d counted over (%d orders in all counted twice)", len(want), over, extra)
}
