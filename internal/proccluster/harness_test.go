package proccluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/internal/proccluster"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// faultCluster is what the three-broker fault tests start from: the
// broker processes, a context bounding the test, and an admin client.
type faultCluster struct {
	t     *testing.T
	c     *proccluster.Cluster
	ctx   context.Context
	admin *kgo.Client
	adm   *kadm.Client
}

// startFaultCluster starts three broker processes with the extra `weir
// broker` flags args, a context that ends after within or with the test,
// and an admin client, and waits until every node lists three brokers and
// a controller.
func startFaultCluster(t *testing.T, within time.Duration, args ...string) *faultCluster {
	t.Helper()
	c := proccluster.Start(t, proccluster.Options{Args: args})
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	waitBrokers(t, ctx, c, 3)
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return &faultCluster{t: t, c: c, ctx: ctx, admin: admin, adm: kadm.NewClient(admin)}
}

// createReplicated creates topics, each of parts partitions with
// replication factor 3, and waits until every partition of the first is
// led with an ISR of 3; it returns a replHarness over the first.
func (f *faultCluster) createReplicated(parts int, topics ...string) *replHarness {
	t := f.t
	t.Helper()
	r, err := f.adm.CreateTopics(f.ctx, int32(parts), 3, nil, topics...)
	if err == nil {
		err = r.Error()
	}
	if err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
	h := &replHarness{t: t, ctx: f.ctx, c: f.c, topic: topics[0], parts: parts, ackedBy: make([][]acked, parts)}
	eventually(t, 20*time.Second, fmt.Sprintf("every partition of %s led, with an ISR of 3", topics[0]), h.fullISR)
	return h
}

// leadership is a partition's leader and leader epoch.
type leadership struct{ leader, epoch int32 }

// leadersOn returns the leadership of each of topic's parts partitions
// as node n's metadata has it.
func leadersOn(ctx context.Context, n *proccluster.Node, topic string, parts int) (map[int32]leadership, error) {
	m, err := n.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	for _, tp := range m.Topics {
		if tp.Topic != nil && *tp.Topic == topic && len(tp.Partitions) == parts {
			out := map[int32]leadership{}
			for _, p := range tp.Partitions {
				out[p.Partition] = leadership{p.Leader, p.LeaderEpoch}
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("node %d: no topic %s with %d partitions yet", n.ID, topic, parts)
}

// agreedLeaders waits until every node shows the same leaderships of
// topic's parts partitions and returns them.
func (f *faultCluster) agreedLeaders(topic string, parts int) map[int32]leadership {
	f.t.Helper()
	var agreed map[int32]leadership
	eventually(f.t, 10*time.Second, "every node shows the same leaders of "+topic, func() error {
		agreed = nil
		for _, n := range f.c.Nodes() {
			l, err := leadersOn(f.ctx, n, topic, parts)
			if err != nil {
				return err
			}
			if agreed != nil && !maps.Equal(agreed, l) {
				return fmt.Errorf("node %d: %v, another node %v", n.ID, l, agreed)
			}
			agreed = l
		}
		return nil
	})
	return agreed
}

// leaderVictim creates topic (parts partitions, replication factor 3),
// waits until every node shows the same leaders of it, and picks with rng
// a node that leads one of them and is not the raft leader; the test fails
// if there is none. It returns the node, the leaderships and the raft
// leader's view.
func (f *faultCluster) leaderVictim(rng *rand.Rand, topic string, parts int) (*proccluster.Node, map[int32]leadership, proccluster.QuorumView) {
	t := f.t
	t.Helper()
	if r, err := f.adm.CreateTopic(f.ctx, int32(parts), 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	before := f.agreedLeaders(topic, parts)
	q := raftLeader(t, f.ctx, f.c)
	var victims []*proccluster.Node
	for _, n := range f.c.Nodes() {
		if n.ID != q.Leader && slices.ContainsFunc(slices.Collect(maps.Values(before)), func(l leadership) bool { return l.leader == n.ID }) {
			victims = append(victims, n)
		}
	}
	if len(victims) == 0 {
		t.Fatalf("no broker but the controller %d leads a partition: %v", q.Leader, before)
	}
	return victims[rng.IntN(len(victims))], before, q
}

// holdsFor checks check on every node but skip (none if nil) every
// interval until d has passed, failing the test at the first error (a
// stopped node is continued by the cluster's cleanup).
func (f *faultCluster) holdsFor(d, every time.Duration, skip *proccluster.Node, when string, check func(*proccluster.Node) error) {
	f.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		for _, n := range f.c.Nodes() {
			if n == skip {
				continue
			}
			if err := check(n); err != nil {
				f.t.Fatalf("%s: %v", when, err)
			}
		}
		time.Sleep(every) // sampling interval: the check must hold throughout d
	}
}

// processEnv returns the value of env, set for a process that a test
// started by running this test binary again as one of its
// TestFault*Process bodies; without it (the binary run as usual) it skips
// the test: such a body is no test of its own.
func processEnv(t *testing.T, env, startedBy string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Skip("the body of a process started by " + startedBy)
	}
	return v
}

// soloBroker is a single `weir broker` process on a fixed address and data
// directory, and the other processes a test starts beside it (this test
// binary run again as one of its TestFault*Process bodies). Each process
// logs to NAME.log in the test's directory and is killed when the test
// ends.
type soloBroker struct {
	t      *testing.T
	bin    string
	dir    string
	addr   string
	broker *testProc
	logs   map[string]bool // the names started, whose logs a failed test shows
}

// testProc is a process a soloBroker started.
type testProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *testProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// startSoloBroker starts the broker process on a free loopback address.
func startSoloBroker(t *testing.T) *soloBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &soloBroker{t: t, bin: proccluster.Binary(t), dir: t.TempDir(), addr: ln.Addr().String(), logs: map[string]bool{}}
	ln.Close()
	s.restartBroker()
	return s
}

// start starts a process logging to name.log, with env added to this
// process's environment.
func (s *soloBroker) start(name string, env []string, args ...string) *testProc {
	t := s.t
	t.Helper()
	path := filepath.Join(s.dir, name+".log")
	logf, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if !s.logs[name] {
		s.logs[name] = true
		t.Cleanup(func() {
			if t.Failed() {
				data, _ := os.ReadFile(path)
				t.Logf("%s (last 3000 bytes):\n%s", path, tailString(string(data), 3000))
			}
		})
	}
	p := &testProc{cmd: exec.Command(args[0], args[1:]...), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}

// restartBroker starts the broker process (again, after a kill) on the
// same address and data directory.
func (s *soloBroker) restartBroker() {
	s.broker = s.start("broker", nil, s.bin, "broker", "--listen", s.addr, "--data-dir", filepath.Join(s.dir, "data"))
}

// startTestProcess runs this test binary again as the test named test,
// logging to name.log, with env added.
func (s *soloBroker) startTestProcess(name, test string, env ...string) *testProc {
	s.t.Helper()
	return s.start(name, env, os.Args[0], "-test.run=^"+test+"$", "-test.v")
}

// waitServing waits until the broker answers an ApiVersions request on
// cl.
func (s *soloBroker) waitServing(ctx context.Context, cl *kgo.Client) {
	s.t.Helper()
	eventually(s.t, 30*time.Second, "broker serving", func() error {
		pctx, c := context.WithTimeout(ctx, time.Second)
		defer c()
		_, err := cl.Request(pctx, kmsg.NewPtrApiVersionsRequest())
		return err
	})
}

// readTopic reads topic from the start to its ends at isolation level iso
// and returns its data records. The ends are the last stable offsets when
// stable, else the high watermarks; control records are read as
// positions, so that a read_committed reader reaches an end a marker
// ends. The read is bounded by 15 s.
func readTopic(ctx context.Context, addrs []string, topic string, iso kgo.IsolationLevel, stable bool) ([]*kgo.Record, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	var ends kadm.ListedOffsets
	if stable {
		ends, err = kadm.NewClient(admin).ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	}
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
	next := map[int32]int64{}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			if next[e.Partition] < e.Offset {
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
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
}

// readFinals reads orders-per-minute's final counts topic as readTopic
// does and returns every count emitted per window, in order.
func readFinals(ctx context.Context, addrs []string, iso kgo.IsolationLevel, stable bool) (map[orders.WindowKey][]int64, error) {
	recs, err := readTopic(ctx, addrs, orders.FinalTopic, iso, stable)
	if err != nil {
		return nil, err
	}
	ks, vs := orders.CountKeySerde(), serde.Int64()
	out := map[orders.WindowKey][]int64{}
	for _, r := range recs {
		k, err := ks.Deserialize(r.Topic, r.Key)
		if err != nil {
			return nil, err
		}
		v, err := vs.Deserialize(r.Topic, r.Value)
		if err != nil {
			return nil, err
		}
		w := orders.WindowKey{Customer: k.Key, Start: k.Window.Start.UnixMilli()}
		out[w] = append(out[w], v)
	}
	return out, nil
}

// exactFinals is nil if every window of want has one final count, equal
// to want's, and no other window has one.
func exactFinals(want map[orders.WindowKey]int64, finals map[orders.WindowKey][]int64) error {
	var bad []string
	for k, w := range want {
		if g := finals[k]; len(g) != 1 || g[0] != w {
			bad = append(bad, fmt.Sprintf("%v: finals %v, want [%d]", k, g, w))
		}
	}
	return badWindows(bad, want, finals)
}

// badWindows adds to bad a line for each window of finals that want does
// not hold, and returns an error listing (the first ten of) them, nil if
// there are none.
func badWindows[V any](bad []string, want map[orders.WindowKey]int64, finals map[orders.WindowKey]V) error {
	for k, g := range finals {
		if _, ok := want[k]; !ok {
			bad = append(bad, fmt.Sprintf("%v: finals %v for a window still open or never seen", k, g))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("%d windows:\n  %s", len(bad), strings.Join(bad[:min(len(bad), 10)], "\n  "))
}

// sentOrder is one order the test's producer saw acknowledged.
type sentOrder struct {
	key       orders.WindowKey
	partition int32
	offset    int64
}

// ordersRun is the orders-per-minute application (its topology with final
// counts, the runtime in this test's process) on a faultCluster, its
// topics replicated 3 ways with 3 partitions each, and a producer sending
// it orders.
type ordersRun struct {
	*faultCluster
	h       *replHarness // over the input topic
	appDone chan error
	prod    *kgo.Client
	// base is the first order's event time; orders are 50ms apart from it.
	base time.Time

	mu     sync.Mutex
	sent   []sentOrder // acknowledged, in the order of their answers
	failed int
	seq    int // the next order's number; the producer's goroutine's

	stop, stopped chan struct{}
}

// startOrdersRun starts the cluster (--broker-session-timeout
// sessionTimeout, the test bounded by 3 minutes), the topics and the
// application appID with a 200ms commit interval, a 6 s session timeout
// and opts; the application is closed when the test ends.
func startOrdersRun(t *testing.T, appID string, opts ...runtime.Option) *ordersRun {
	t.Helper()
	f := startFaultCluster(t, 3*time.Minute, "--broker-session-timeout", sessionTimeout.String())
	o := &ordersRun{faultCluster: f, h: f.createReplicated(3, orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic),
		appDone: make(chan error, 1), base: time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)}
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app, err := runtime.New(topo, append([]runtime.Option{runtime.ApplicationID(appID), runtime.Brokers(f.c.Addrs()...),
		runtime.StateDir(t.TempDir()), runtime.CommitInterval(200 * time.Millisecond),
		runtime.SessionTimeout(6 * time.Second), runtime.Logger(logger)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	go func() { o.appDone <- app.Run(f.ctx) }()
	t.Cleanup(func() {
		_ = app.Close()
		<-o.appDone
	})
	// NB: franz-go's defaults; with RecordDeliveryTimeout and
	// MetadataMinAge set as in the clients' test this keyed producer
	// rewound its batches without ever sending one (seen with franz-go
	// 1.19 here; not looked into further).
	o.prod, err = kgo.NewClient(kgo.SeedBrokers(f.c.Addrs()...), kgo.DefaultProduceTopic(orders.InputTopic),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, func() string { return "producer " })))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.prod.Close)
	return o
}

// appRunning fails the test if the application has stopped.
func (o *ordersRun) appRunning() {
	o.t.Helper()
	select {
	case err := <-o.appDone:
		o.appDone <- err
		o.t.Fatalf("the application stopped: %v", err)
	default:
	}
}

// send produces order i, for customer c(i mod 20), at event time ts.
func (o *ordersRun) send(i int, ts time.Time) {
	cust := fmt.Sprintf("c%d", i%20)
	v, err := orders.OrderSerde().Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprintf("o%d", i), Amount: int64(i)})
	if err != nil {
		o.t.Error(err)
		return
	}
	o.prod.Produce(o.ctx, &kgo.Record{Key: []byte(cust), Value: v, Timestamp: ts}, func(r *kgo.Record, err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if err != nil {
			o.failed++
			return
		}
		o.sent = append(o.sent, sentOrder{orders.Of(cust, r.Timestamp), r.Partition, r.Offset})
	})
}

// startOrders sends orders for 20 customers, one every 5ms of real time,
// 50ms apart in event time (so that windows close as they flow), until
// closeWindows.
func (o *ordersRun) startOrders() {
	o.stop, o.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(o.stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-o.stop:
				return
			case <-tick.C:
			}
			o.send(o.seq, o.base.Add(time.Duration(o.seq)*50*time.Millisecond))
			o.seq++
		}
	}()
}

// closeWindows stops the orders, then sends 60 orders an hour later,
// which close every window so far on every partition (their own windows
// stay open: closingStart is their start), and waits for every answer.
func (o *ordersRun) closeWindows() (closingStart int64) {
	o.t.Helper()
	close(o.stop)
	<-o.stopped
	for i := range 60 {
		o.send(o.seq+i, o.base.Add(time.Hour))
	}
	if err := o.prod.Flush(o.ctx); err != nil {
		o.t.Fatal(err)
	}
	return orders.Of("c0", o.base.Add(time.Hour)).Start
}

// acked returns how many orders were acknowledged.
func (o *ordersRun) acked() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.sent)
}

// processed waits until the application has written 200 more count
// updates than now, for orders sent after now.
func (o *ordersRun) processed(what string) {
	o.t.Helper()
	updates := func() (int64, error) {
		ends, err := o.adm.ListEndOffsets(o.ctx, orders.UpdatesTopic)
		if err == nil {
			err = ends.Error()
		}
		return sumEnds(ends), err
	}
	var before int64
	eventually(o.t, 20*time.Second, "the count updates' end offsets", func() (err error) {
		before, err = updates()
		return err
	})
	eventually(o.t, 30*time.Second, what, func() error {
		o.appRunning()
		n, err := updates()
		if err != nil {
			return err
		}
		if n < before+200 {
			return fmt.Errorf("%d count updates since (%d orders acknowledged)", n-before, o.acked())
		}
		return nil
	})
}

func sumEnds(ends kadm.ListedOffsets) int64 {
	var n int64
	ends.Each(func(e kadm.ListedOffset) { n += e.Offset })
	return n
}
