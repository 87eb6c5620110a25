package runtime_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// cluster is what a test runs against: its seed brokers.
type cluster struct {
	addrs []string
}

// newKfake starts an in-memory Kafka cluster with the orders topics.
func newKfake(t *testing.T, partitions int32) *cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond),
		kfake.SeedTopics(partitions, orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &cluster{addrs: c.ListenAddrs()}
}

// quietLogger discards logs unless WEIR_TEST_LOG is set.
func quietLogger() *slog.Logger {
	if os.Getenv("WEIR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// instance is one running application instance.
type instance struct {
	app  *runtime.Application
	done chan error
}

func startInstance(t *testing.T, c *cluster, stateDir string, extra ...runtime.Option) *instance {
	t.Helper()
	topo, err := orders.Topology(false)
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]runtime.Option{
		runtime.ApplicationID("orders-app"),
		runtime.Brokers(c.addrs...),
		runtime.StateDir(stateDir),
		runtime.CommitInterval(200 * time.Millisecond),
		runtime.SessionTimeout(3 * time.Second),
		runtime.Logger(quietLogger().With("instance", filepath.Base(stateDir))),
	}, extra...)
	a, err := runtime.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{app: a, done: make(chan error, 1)}
	go func() { in.done <- a.Run(context.Background()) }()
	t.Cleanup(func() { _ = a.Close() })
	return in
}

// checkRunning fails the test if the instance's Run has returned.
func (in *instance) checkRunning(t *testing.T) {
	t.Helper()
	select {
	case err := <-in.done:
		t.Fatalf("instance stopped: %v", err)
	default:
	}
}

// stop closes the instance and checks Run returned nil.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	if err := in.app.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-in.done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// producer writes orders and remembers them.
type producer struct {
	cl *kgo.Client
	mu sync.Mutex
	// sent are the orders acknowledged, with their partition and offset.
	sent []sentOrder
}

type sentOrder struct {
	key       orders.WindowKey
	partition int32
	offset    int64
}

func newProducer(t *testing.T, c *cluster) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DefaultProduceTopic(orders.InputTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{cl: cl}
}

// send produces n orders for customers c0..c{customers-1} with timestamps
// from base, 50ms apart, synchronously.
func (p *producer) send(t *testing.T, n, customers int, base time.Time, seq *int) {
	t.Helper()
	s := orders.OrderSerde()
	var recs []*kgo.Record
	for range n {
		i := *seq
		*seq++
		cust := fmt.Sprintf("c%d", i%customers)
		ts := base.Add(time.Duration(i) * 50 * time.Millisecond)
		v, err := s.Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprintf("o%d", i), Amount: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(cust), Value: v, Timestamp: ts})
	}
	res := p.cl.ProduceSync(context.Background(), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range res {
		p.sent = append(p.sent, sentOrder{
			key:       orders.Of(string(r.Record.Key), r.Record.Timestamp),
			partition: r.Record.Partition, offset: r.Record.Offset,
		})
	}
}

// expected counts the orders sent per window.
func (p *producer) expected() map[orders.WindowKey]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[orders.WindowKey]int64{}
	for _, s := range p.sent {
		out[s.key]++
	}
	return out
}

// readCounts reads the updates topic from the start and returns the last
// count per window (a key lives in one partition, so the last record of a
// window is the latest update).
func readCounts(t *testing.T, c *cluster) map[orders.WindowKey]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumeTopics(orders.UpdatesTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := endOffsets(t, c, orders.UpdatesTopic)
	ks, vs := orders.CountKeySerde(), serde.Int64()
	out := map[orders.WindowKey]int64{}
	read := map[int32]int64{}
	done := func() bool {
		for p, e := range ends {
			if read[p] < e {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (read %v of %v)", orders.UpdatesTopic, ctx.Err(), read, ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k, err := ks.Deserialize(r.Topic, r.Key)
			if err != nil {
				t.Fatal(err)
			}
			v, err := vs.Deserialize(r.Topic, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			out[orders.WindowKey{Customer: k.Key, Start: k.Window.Start.UnixMilli()}] = v
			read[r.Partition] = r.Offset + 1
		})
	}
	return out
}

func endOffsets(t *testing.T, c *cluster, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return listEnds(t, cl, topic)
}

// waitCounts polls the output until every window's last count equals
// want, or fails after the deadline with the differences.
func waitCounts(t *testing.T, c *cluster, want map[orders.WindowKey]int64) map[orders.WindowKey]int64 {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		got := readCounts(t, c)
		diff := countDiff(want, got)
		if diff == "" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never matched the input:\n%s", diff)
		}
		<-tick.C
	}
}

func countDiff(want, got map[orders.WindowKey]int64) string {
	var s string
	for k, w := range want {
		if g := got[k]; g != w {
			s += fmt.Sprintf("  %v: got %d, want %d\n", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			s += fmt.Sprintf("  %v: got %d, want none\n", k, g)
		}
	}
	return s
}
