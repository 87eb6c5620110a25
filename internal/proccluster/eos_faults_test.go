package proccluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// ordersAppEnv names the broker an orders application process (this test
// binary re-run as TestFaultOrdersAppProcess) runs on.
const ordersAppEnv = "WEIR_ORDERS_APP_BROKER"

// TestFaultOrdersAppProcess is not a test of its own: it is the body of an
// orders-per-minute application process, in exactly-once mode, started by
// TestFaultOrdersExactlyOnceKilled. It runs until it is killed.
func TestFaultOrdersAppProcess(t *testing.T) {
	addr := processEnv(t, ordersAppEnv, "TestFaultOrdersExactlyOnceKilled")
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app, err := runtime.New(topo, runtime.ApplicationID("orders-eos"), runtime.Brokers(addr),
		runtime.StateDir(os.Getenv("WEIR_ORDERS_APP_STATE")), runtime.CommitInterval(time.Second),
		// Every count update reaches the changelog as it is made: at
		// least once, a kill would then count the orders since the last
		// commit twice.
		runtime.NoWriteCache(),
		runtime.SessionTimeout(6*time.Second), runtime.ExactlyOnce(), runtime.TransactionTimeout(5*time.Second),
		runtime.Logger(logger))
	if err != nil {
		t.Fatal(err)
	}
	t.Fatalf("the application stopped: %v", app.Run(context.Background()))
}

// TestFaultOrdersExactlyOnceKilled: orders-per-minute in exactly-once mode
// (an application process with its state directory kept across restarts,
// its write cache off and a 1 s commit interval) on a single weir broker
// process. While orders flow, faults strike at seeded moments: the
// application is SIGKILLed (5 times) or the broker is (twice), and
// restarted. Orders an hour later then close every window. Read at
// read_committed, every closed window's final count EQUALS the count of the
// acknowledged orders in it, no window is emitted twice, none is missing and
// none is invented. (The same run at least once fails: windows counted a
// third over, one emitted twice.)
func TestFaultOrdersExactlyOnceKilled(t *testing.T) {
	rng := faultTest(t)
	sb := startSoloBroker(t)
	addr := sb.addr
	var app *testProc
	startApp := func() {
		app = sb.startTestProcess("app", "TestFaultOrdersAppProcess", ordersAppEnv+"="+addr, "WEIR_ORDERS_APP_STATE="+filepath.Join(sb.dir, "state"))
	}
	// A broker kill during a transaction's end leaves the commit's outcome
	// unknown, and a broker restart that outlasts the transaction timeout
	// has the coordinator abort the transaction and fence the producer:
	// the runtime then replaces its transactional client and resumes from
	// what the broker committed (docs/ARCHITECTURE.md 2.7a). It must
	// never stop by itself.
	supervise := func() {
		t.Helper()
		select {
		case <-app.exited:
		default:
			return
		}
		reason := "no reason logged"
		if data, err := os.ReadFile(filepath.Join(sb.dir, "app.log")); err == nil {
			if i := strings.LastIndex(string(data), "the application stopped: "); i >= 0 {
				reason, _, _ = strings.Cut(string(data[i:]), "\n")
			}
		}
		t.Fatalf("the application stopped by itself: %s", reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(orders.InputTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sb.waitServing(ctx, cl)
	adm := kadm.NewClient(cl)
	const parts = 3
	if r, err := adm.CreateTopics(ctx, parts, 1, nil, orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic); err != nil || r.Error() != nil {
		t.Fatalf("create topics: %v %v", err, r.Error())
	}
	startApp()

	// Orders for 20 customers, 50ms apart in event time (1,200 a minute),
	// sent in batches of 20 every 20ms of real time by an idempotent
	// producer (which retries across the broker's kills) while the faults
	// strike, so that every kill lands among processed and uncommitted
	// orders.
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	s := orders.OrderSerde()
	var mu sync.Mutex
	want := map[orders.WindowKey]int64{} // guarded by mu
	seq := 0                             // guarded by mu
	produce := func(n int, at func(i int) time.Time, count bool) error {
		mu.Lock()
		recs := make([]*kgo.Record, 0, n)
		keys := make([]orders.WindowKey, 0, n)
		for range n {
			cust := fmt.Sprintf("c%d", seq%20)
			v, err := s.Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprintf("o%d", seq), Amount: int64(seq)})
			if err != nil {
				mu.Unlock()
				return err
			}
			ts := at(seq)
			recs = append(recs, &kgo.Record{Key: []byte(cust), Value: v, Timestamp: ts})
			keys = append(keys, orders.Of(cust, ts))
			seq++
		}
		mu.Unlock()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("produce (the orders' fate is unknown, so no count can be checked): %w", err)
		}
		if count {
			mu.Lock()
			for _, k := range keys {
				want[k]++
			}
			mu.Unlock()
		}
		return nil
	}
	sent := func() int {
		mu.Lock()
		defer mu.Unlock()
		return seq
	}
	stop, stopped := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				stopped <- nil
				return
			case <-tick.C:
			}
			if err := produce(20, func(i int) time.Time { return base.Add(time.Duration(i) * 50 * time.Millisecond) }, true); err != nil {
				stopped <- err
				return
			}
		}
	}()
	// committed is the sum of the application's committed input offsets
	// (moved only by its committed transactions).
	committed := func() (int64, error) {
		offs, err := adm.FetchOffsets(ctx, "orders-eos")
		if err != nil {
			return 0, err
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == orders.InputTopic && o.Err == nil {
				n += o.At
			}
		})
		return n, nil
	}
	// Five application kills and two broker kills, in a seeded order.
	faults := []string{"app", "app", "app", "app", "app", "broker", "broker"}
	rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	for i, f := range faults {
		// Strike once the application has committed more input, at a
		// seeded moment 0.5 to 1.5 s later.
		before, err := committed()
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, fmt.Sprintf("the application committing input before fault %d", i+1), func() error {
			supervise()
			n, err := committed()
			if err != nil {
				return err
			}
			if n <= before+200 {
				return fmt.Errorf("%d input records committed since, %d orders sent", n-before, sent())
			}
			return nil
		})
		time.Sleep(500*time.Millisecond + time.Duration(rng.IntN(1000))*time.Millisecond) // the fault's seeded moment, not a synchronization
		t.Logf("fault %d: SIGKILL the %s (%d orders sent so far)", i+1, f, sent())
		if f == "app" {
			app.kill()
			startApp()
			continue
		}
		sb.broker.kill()
		sb.restartBroker()
		sb.waitServing(ctx, cl)
	}
	close(stop)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	// Orders an hour later close every window so far on every partition;
	// their own windows stay open.
	if err := produce(60, func(int) time.Time { return base.Add(time.Hour) }, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders in %d windows to close", seq-60, len(want))

	eventually(t, 90*time.Second, "every closed window's final count, equal to its orders", func() error {
		supervise()
		finals, err := readFinals(ctx, []string{addr}, kgo.ReadCommitted(), true)
		if err != nil {
			return err
		}
		return exactFinals(want, finals)
	})
	t.Logf("%d windows closed, each final count emitted once and equal to its orders", len(want))
	if data, err := os.ReadFile(filepath.Join(sb.dir, "app.log")); err == nil {
		t.Logf("the application (all its incarnations, one log) replaced its transactional client %d times",
			strings.Count(string(data), "replacing the transactional client"))
	}
}
