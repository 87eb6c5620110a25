package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// cluster is what a test runs against: its seed brokers.
type cluster struct {
	addrs []string
	// session is the group session timeout to use: the smallest the
	// cluster allows, so that failover tests are quick.
	session time.Duration
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
	return &cluster{addrs: c.ListenAddrs(), session: 3 * time.Second}
}

// quietLogger discards logs unless WEIR_TEST_LOG is set.
// newWeir starts an in-process Weir broker with the orders topics.
func newWeir(t *testing.T, partitions int32) *cluster {
	t.Helper()
	b, err := broker.Open(broker.Options{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), Fsync: broker.FsyncNever,
		GroupInitialRebalanceDelay: -1, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	c := &cluster{addrs: []string{b.Addr()}, session: 6 * time.Second}
	createTopics(t, c, partitions)
	return c
}

// newWeirProcess builds cmd/weir and runs `weir broker` as a separate
// process, with the orders topics.
func newWeirProcess(t *testing.T, partitions int32) *cluster {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "weir")
	build := exec.Command("go", "build", "-o", bin, "github.com/weir-dev/weir/cmd/weir")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build weir: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "broker", "--listen", addr, "--data-dir", filepath.Join(dir, "data"),
		"--fsync", "never", "--group-initial-rebalance-delay", "-1ns", "--log-level", "warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Logf("weir broker exited: %v\n%s", err, logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("weir broker exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("weir broker never listened on %s", addr)
		}
		time.Sleep(20 * time.Millisecond) // polling interval with a deadline
	}
	c := &cluster{addrs: []string{addr}, session: 6 * time.Second}
	createTopics(t, c, partitions)
	return c
}

func createTopics(t *testing.T, c *cluster, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(context.Background(), partitions, -1, nil,
		orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatal(err)
	}
}

// clusters are the kinds of cluster the runtime's tests run against.
var clusters = []struct {
	name string
	new  func(*testing.T, int32) *cluster
}{
	{"kfake", newKfake},
	{"weir", newWeir},
}

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
	return startInstanceOf(t, c, stateDir, false, extra...)
}

// startInstanceOf starts an instance of the orders topology, with its
// Suppress step writing each window's final count if finals is set.
func startInstanceOf(t *testing.T, c *cluster, stateDir string, finals bool, extra ...runtime.Option) *instance {
	t.Helper()
	topo, err := orders.Topology(finals)
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]runtime.Option{
		runtime.ApplicationID("orders-app"),
		runtime.Brokers(c.addrs...),
		runtime.StateDir(stateDir),
		runtime.CommitInterval(200 * time.Millisecond),
		runtime.SessionTimeout(c.session),
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
	if err := p.trySend(n, customers, base, seq); err != nil {
		t.Fatal(err)
	}
}

// trySend is send returning its error, for goroutines other than the
// test's.
func (p *producer) trySend(n, customers int, base time.Time, seq *int) error {
	s := orders.OrderSerde()
	var recs []*kgo.Record
	for range n {
		i := *seq
		*seq++
		cust := fmt.Sprintf("c%d", i%customers)
		ts := base.Add(time.Duration(i) * 50 * time.Millisecond)
		v, err := s.Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprintf("o%d", i), Amount: int64(i)})
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Key: []byte(cust), Value: v, Timestamp: ts})
	}
	res := p.cl.ProduceSync(context.Background(), recs...)
	if err := res.FirstErr(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range res {
		p.sent = append(p.sent, sentOrder{
			key:       orders.Of(string(r.Record.Key), r.Record.Timestamp),
			partition: r.Record.Partition, offset: r.Record.Offset,
		})
	}
	return nil
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
	return readCountsOf(t, c, orders.UpdatesTopic)
}

// readCountsOf is readCounts of topic (the updates or the final counts).
func readCountsOf(t *testing.T, c *cluster, topic string) map[orders.WindowKey]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := endOffsets(t, c, topic)
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
			t.Fatalf("reading %s: %v (read %v of %v)", topic, ctx.Err(), read, ends)
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
