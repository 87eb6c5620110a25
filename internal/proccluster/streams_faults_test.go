package proccluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/internal/proccluster"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// sentOrder is one order the test's producer saw acknowledged.
type sentOrder struct {
	key       orders.WindowKey
	partition int32
	offset    int64
}

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
	c := proccluster.Start(t, proccluster.Options{Args: []string{"--broker-session-timeout", sessionTimeout.String()}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitBrokers(t, ctx, c, 3)
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	const parts = 3
	if r, err := adm.CreateTopics(ctx, parts, 3, nil, orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic); err != nil || r.Error() != nil {
		t.Fatalf("create topics: %v %v", err, r.Error())
	}
	h := &replHarness{t: t, ctx: ctx, c: c, topic: orders.InputTopic, parts: parts}
	eventually(t, 20*time.Second, "every input partition led, with an ISR of 3", h.fullISR)

	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	const appID = "orders-app"
	app, err := runtime.New(topo, runtime.ApplicationID(appID), runtime.Brokers(c.Addrs()...),
		runtime.StateDir(t.TempDir()), runtime.CommitInterval(200*time.Millisecond),
		runtime.SessionTimeout(6*time.Second), runtime.Logger(logger))
	if err != nil {
		t.Fatal(err)
	}
	appDone := make(chan error, 1)
	go func() { appDone <- app.Run(ctx) }()
	defer func() {
		_ = app.Close()
		<-appDone
	}()
	appRunning := func() {
		t.Helper()
		select {
		case err := <-appDone:
			appDone <- err
			t.Fatalf("the application stopped: %v", err)
		default:
		}
	}

	// The producer: orders for 20 customers, one every 5ms of real time,
	// 50ms apart in event time. NB: franz-go's defaults; with
	// RecordDeliveryTimeout and MetadataMinAge set as in the clients' test
	// this keyed producer rewound its batches without ever sending one
	// (seen with franz-go 1.19 here; not looked into further).
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic(orders.InputTopic),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, func() string { return "producer " })))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var mu sync.Mutex
	var sent []sentOrder
	failed := 0
	s := orders.OrderSerde()
	send := func(i int, ts time.Time) {
		cust := fmt.Sprintf("c%d", i%20)
		v, err := s.Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprintf("o%d", i), Amount: int64(i)})
		if err != nil {
			t.Error(err)
			return
		}
		prod.Produce(ctx, &kgo.Record{Key: []byte(cust), Value: v, Timestamp: ts}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			sent = append(sent, sentOrder{orders.Of(cust, r.Timestamp), r.Partition, r.Offset})
		})
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	seq := 0
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			send(seq, base.Add(time.Duration(seq)*50*time.Millisecond))
			seq++
		}
	}()
	acked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(sent)
	}
	// processed waits until the application has written count updates
	// for orders sent after now (its output topic grows past its end now).
	processed := func(what string) {
		t.Helper()
		updates := func() (int64, error) {
			ends, err := adm.ListEndOffsets(ctx, orders.UpdatesTopic)
			if err == nil {
				err = ends.Error()
			}
			return sumEnds(ends), err
		}
		var before int64
		eventually(t, 20*time.Second, "the count updates' end offsets", func() (err error) {
			before, err = updates()
			return err
		})
		eventually(t, 30*time.Second, what, func() error {
			appRunning()
			n, err := updates()
			if err != nil {
				return err
			}
			if n < before+200 {
				return fmt.Errorf("%d count updates since (%d orders acknowledged)", n-before, acked())
			}
			return nil
		})
	}
	processed("the application counting")

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
		t.Logf("fault %d: killing node %d (%d orders acknowledged so far)", i+1, victim, acked())
		c.Node(victim).Kill()
		processed(fmt.Sprintf("the application counting after node %d's kill", victim))
		snapshotCommitted()
		c.Node(victim).Restart()
		processed(fmt.Sprintf("the application counting after node %d's restart", victim))
	}
	close(stop)
	<-stopped
	// Orders an hour later close every window so far on every partition.
	closingFrom := seq
	for i := range 60 {
		send(closingFrom+i, base.Add(time.Hour))
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want, slack := map[orders.WindowKey]int64{}, map[orders.WindowKey]int64{}
	closing := orders.Of("c0", base.Add(time.Hour)).Start
	for _, o := range sent {
		if o.key.Start == closing {
			continue // the closing orders' own windows stay open
		}
		want[o.key]++
		for _, cm := range committedBefore {
			if at, ok := cm[o.partition]; !ok || o.offset >= at {
				slack[o.key]++
			}
		}
	}
	t.Logf("%d orders acknowledged (%d failed) in %d windows", len(sent), failed, len(want))
	mu.Unlock()

	var got map[orders.WindowKey]int64
	eventually(t, 40*time.Second, "every closed window's final count within the at-least-once bound", func() error {
		appRunning()
		got, err = readFinals(ctx, c.Addrs())
		if err != nil {
			return err
		}
		var bad []string
		for k, w := range want {
			if g, ok := got[k]; !ok || g < w || g > w+slack[k] {
				bad = append(bad, fmt.Sprintf("%v: final %d (emitted %v), want %d..%d", k, g, ok, w, w+slack[k]))
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				bad = append(bad, fmt.Sprintf("%v: a final count for a window still open or never seen", k))
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return fmt.Errorf("%d windows:\n  %s", len(bad), strings.Join(bad[:min(len(bad), 10)], "\n  "))
		}
		return nil
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

// readFinals reads the final counts topic from the start to its end and
// returns the last count per window.
func readFinals(ctx context.Context, addrs []string) (map[orders.WindowKey]int64, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, orders.FinalTopic)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(orders.FinalTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ks, vs := orders.CountKeySerde(), serde.Int64()
	out := map[orders.WindowKey]int64{}
	read := map[int32]int64{}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			if read[e.Partition] < e.Offset {
				done = false
			}
		})
		if done {
			return out, nil
		}
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: %w", orders.FinalTopic, rctx.Err())
		}
		var derr error
		fs.EachRecord(func(r *kgo.Record) {
			k, err := ks.Deserialize(r.Topic, r.Key)
			if err != nil {
				derr = err
				return
			}
			v, err := vs.Deserialize(r.Topic, r.Value)
			if err != nil {
				derr = err
				return
			}
			out[orders.WindowKey{Customer: k.Key, Start: k.Window.Start.UnixMilli()}] = v
			read[r.Partition] = r.Offset + 1
		})
		if derr != nil {
			return nil, derr
		}
	}
}

func sumEnds(ends kadm.ListedOffsets) int64 {
	var n int64
	ends.Each(func(e kadm.ListedOffset) { n += e.Offset })
	return n
}
