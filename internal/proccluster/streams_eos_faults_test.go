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
	const appID = "orders-eos"
	app, err := runtime.New(topo, runtime.ApplicationID(appID), runtime.Brokers(c.Addrs()...),
		runtime.StateDir(t.TempDir()), runtime.CommitInterval(200*time.Millisecond),
		runtime.SessionTimeout(6*time.Second), runtime.ExactlyOnce(), runtime.Logger(logger))
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

	// Orders for 20 customers, one every 5ms of real time, 50ms apart in
	// event time, so that windows close as they flow.
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic(orders.InputTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var mu sync.Mutex
	acked := 0
	s := orders.OrderSerde()
	send := func(i int, ts time.Time) {
		cust := fmt.Sprintf("c%d", i%20)
		v, err := s.Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprintf("o%d", i), Amount: int64(i)})
		if err != nil {
			t.Error(err)
			return
		}
		prod.Produce(ctx, &kgo.Record{Key: []byte(cust), Value: v, Timestamp: ts}, func(_ *kgo.Record, err error) {
			if err == nil {
				mu.Lock()
				acked++
				mu.Unlock()
			}
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
	// processed waits until the application has written 200 more count
	// updates than now.
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
				return fmt.Errorf("%d count updates since", n-before)
			}
			return nil
		})
	}
	processed("the application counting")

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
	eventually(t, 30*time.Second, "every input partition led, with an ISR of 3", h.fullISR)
	mu.Lock()
	t.Logf("killing node %d, transaction coordinator of %s (%d orders acknowledged so far)", victim, txnID, acked)
	mu.Unlock()
	c.Node(victim).Kill()
	processed(fmt.Sprintf("the application counting after node %d's kill", victim))
	c.Node(victim).Restart()
	processed(fmt.Sprintf("the application counting after node %d's restart", victim))
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

	// What the input holds (acknowledged or not: a produce that failed
	// may still have been written), by window.
	closing := orders.Of("c0", base.Add(time.Hour)).Start
	want := map[orders.WindowKey]int64{}
	in, err := readTopic(ctx, c.Addrs(), orders.InputTopic, kgo.ReadUncommitted())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range in {
		if k := orders.Of(string(r.Key), r.Timestamp); k.Start != closing {
			want[k]++
		}
	}
	mu.Lock()
	t.Logf("%d orders in the input (%d acknowledged) in %d windows", len(in), acked, len(want))
	mu.Unlock()

	ks, vs := orders.CountKeySerde(), serde.Int64()
	var finals map[orders.WindowKey][]int64
	eventually(t, 40*time.Second, "every closed window's one final count equal to its orders", func() error {
		appRunning()
		recs, err := readTopic(ctx, c.Addrs(), orders.FinalTopic, kgo.ReadCommitted())
		if err != nil {
			return err
		}
		finals = map[orders.WindowKey][]int64{}
		for _, r := range recs {
			k, err := ks.Deserialize(r.Topic, r.Key)
			if err != nil {
				return err
			}
			v, err := vs.Deserialize(r.Topic, r.Value)
			if err != nil {
				return err
			}
			wk := orders.WindowKey{Customer: k.Key, Start: k.Window.Start.UnixMilli()}
			finals[wk] = append(finals[wk], v)
		}
		var bad []string
		for k, w := range want {
			if g := finals[k]; len(g) != 1 || g[0] != w {
				bad = append(bad, fmt.Sprintf("%v: finals %v, want one of %d", k, g, w))
			}
		}
		for k, g := range finals {
			if _, ok := want[k]; !ok {
				bad = append(bad, fmt.Sprintf("%v: finals %v for a window still open or never seen", k, g))
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return fmt.Errorf("%d windows:\n  %s", len(bad), strings.Join(bad[:min(len(bad), 10)], "\n  "))
		}
		return nil
	})
	t.Logf("%d windows closed, each with one final count equal to its orders", len(want))
}

// readTopic reads topic from the start to its end at isolation level iso
// (control records kept, so that a read_committed reader reaches an end
// that a marker ends) and returns its data records.
func readTopic(ctx context.Context, addrs []string, topic string, iso kgo.IsolationLevel) ([]*kgo.Record, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
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
			return nil, fmt.Errorf("reading %s: %w", topic, rctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			read[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
}
