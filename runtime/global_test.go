package runtime_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// The global join: orders keyed by order id, whose value is a customer id,
// joined with a global table of customers keyed by customer id. The key
// mapper takes the customer id from the order; the topics have different
// partition counts (nothing is co-partitioned).
const (
	gtOrders    = "gt-orders"
	gtCustomers = "gt-customers"
	gtOut       = "gt-out"
	gtCustomerN = 20
)

func globalJoinTopology(t *testing.T) *streams.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	orders := dsl.Stream(b, gtOrders, serde.String(), serde.String())
	customers := dsl.GlobalTable(b, gtCustomers, serde.String(), serde.String())
	dsl.JoinGlobal(orders, customers, func(_, customer string) string { return customer },
		func(customer, name string) string { return customer + "=" + name }).To(gtOut)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func createGlobalTopics(t *testing.T, c *cluster) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for topic, n := range map[string]int32{gtOrders: 4, gtCustomers: 3, gtOut: 1} {
		resp, err := adm.CreateTopics(context.Background(), n, -1, nil, topic)
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Error(); err != nil {
			t.Fatal(err)
		}
	}
}

func startGlobalInstance(t *testing.T, c *cluster, dir string, extra ...runtime.Option) *instance {
	t.Helper()
	a, err := runtime.New(globalJoinTopology(t), append([]runtime.Option{
		runtime.ApplicationID("gt-app"),
		runtime.Brokers(c.addrs...),
		runtime.StateDir(dir),
		runtime.CommitInterval(200 * time.Millisecond),
		runtime.SessionTimeout(c.session),
		runtime.Logger(quietLogger().With("instance", filepath.Base(dir))),
	}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{app: a, done: make(chan error, 1)}
	go func() { in.done <- a.Run(context.Background()) }()
	t.Cleanup(func() { _ = a.Close() })
	return in
}

// kv is one record to produce; a nil value is a tombstone.
type kv struct {
	key   string
	value *string
}

func val(s string) *string { return &s }

// produceKV writes records to topic synchronously and returns the
// partition of each key (results come in completion order, not input
// order: they are matched by key).
func produceKV(t *testing.T, cl *kgo.Client, topic string, recs []kv) map[string]int32 {
	t.Helper()
	res := cl.ProduceSync(context.Background(), toRecords(topic, recs)...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := map[string]int32{}
	for _, r := range res {
		out[string(r.Record.Key)] = r.Record.Partition
	}
	return out
}

func toRecords(topic string, recs []kv) []*kgo.Record {
	var rs []*kgo.Record
	for _, r := range recs {
		kr := &kgo.Record{Topic: topic, Key: []byte(r.key)}
		if r.value != nil {
			kr.Value = []byte(*r.value)
		}
		rs = append(rs, kr)
	}
	return rs
}

// readOut reads every record of a one-partition topic, in order.
func readOut(t *testing.T, c *cluster, topic string) []kv {
	t.Helper()
	end := endOffsets(t, c, topic)[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []kv
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for int64(len(out)) < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, kv{string(r.Key), val(string(r.Value))}) })
	}
	return out
}

// waitGlobalCaughtUp waits until each instance's global store has applied
// every record of the customers topic.
func waitGlobalCaughtUp(t *testing.T, c *cluster, ins ...*instance) {
	t.Helper()
	ends := endOffsets(t, c, gtCustomers)
	want := map[streams.TopicPartition]streams.Offset{}
	for p, e := range ends {
		want[streams.TopicPartition{Topic: gtCustomers, Partition: streams.Partition(p)}] = streams.Offset(e)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, in := range ins {
		for {
			in.checkRunning(t)
			got := in.app.GlobalOffsets()
			if maps.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("global store never caught up: at %v, topic ends %v", got, want)
			}
			time.Sleep(20 * time.Millisecond) // polling interval with a deadline
		}
	}
}

// waitOutputs polls the output topic until it holds every key of want (and
// maybe more), then returns it.
func waitOutputs(t *testing.T, c *cluster, want []string) []kv {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		out := readOut(t, c, gtOut)
		have := map[string]bool{}
		for _, r := range out {
			have[r.key] = true
		}
		var missing []string
		for _, k := range want {
			if !have[k] {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("outputs never arrived for %d orders, e.g. %v", len(missing), missing[:min(5, len(missing))])
		}
		time.Sleep(100 * time.Millisecond) // polling interval with a deadline
	}
}

func customerOf(i int) string { return fmt.Sprintf("c%d", i%gtCustomerN) }

// TestGlobalTableJoin runs a stream-global-table join on two instances. The
// table is loaded before they start (bootstrap), then updated (new names,
// one customer deleted) while orders flow, then orders flow again once
// both instances have applied the updates.
//
// What is asserted: the orders before and after the updates give exactly
// the output of the test driver for the same input (the driver applies
// each table record before the orders piped after it). The orders sent
// while the table changed join with the old or the new name of their
// customer, never a name it did not have; the deleted customer's orders
// have no output or the old name; every other order has exactly one
// output; and per order partition and customer, the names seen never go
// back from new to old (a task reads a global store that only moves
// forward).
func TestGlobalTableJoin(t *testing.T) {
	for _, cl := range clusters {
		t.Run(cl.name, func(t *testing.T) { testGlobalTableJoin(t, cl.new(t, 1)) })
	}
}

func testGlobalTableJoin(t *testing.T, c *cluster) {
	createGlobalTopics(t, c)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var v1, v2 []kv
	for i := range gtCustomerN {
		v1 = append(v1, kv{customerOf(i), val(fmt.Sprintf("name%d-v1", i))})
		if i == gtCustomerN-1 {
			v2 = append(v2, kv{customerOf(i), nil}) // deleted
		} else {
			v2 = append(v2, kv{customerOf(i), val(fmt.Sprintf("name%d-v2", i))})
		}
	}
	orders := func(from, n int) []kv {
		var out []kv
		for i := from; i < from+n; i++ {
			out = append(out, kv{fmt.Sprintf("o%d", i), val(customerOf(i))})
		}
		return out
	}
	keys := func(rs []kv) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.key)
		}
		return out
	}
	partOf := map[string]int32{} // order id -> its input partition
	sendOrders := func(rs []kv) {
		maps.Copy(partOf, produceKV(t, cl, gtOrders, rs))
	}

	produceKV(t, cl, gtCustomers, v1)
	a := startGlobalInstance(t, c, t.TempDir())
	b := startGlobalInstance(t, c, t.TempDir())
	waitTasks(t, 4, a, b)

	// Phase A: the table as loaded at start.
	phaseA := orders(0, 100)
	sendOrders(phaseA)

	// Phase B: orders flow while the table changes.
	var mu sync.Mutex
	var phaseB []kv
	stop := make(chan struct{})
	flowed := make(chan struct{})
	go func() {
		defer close(flowed)
		pace := time.NewTicker(10 * time.Millisecond) // about 1,000 orders/s
		defer pace.Stop()
		next := 100
		for {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			rs := orders(next, 10)
			next += 10
			res := cl.ProduceSync(context.Background(), toRecords(gtOrders, rs)...)
			if err := res.FirstErr(); err != nil {
				t.Errorf("produce orders: %v", err)
				return
			}
			mu.Lock()
			for _, r := range res {
				partOf[string(r.Record.Key)] = r.Record.Partition
			}
			phaseB = append(phaseB, rs...)
			mu.Unlock()
		}
	}()
	flowedAtLeast := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := len(phaseB)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d orders flowed, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond) // polling interval with a deadline
		}
	}
	// Some orders before the updates, some after.
	flowedAtLeast(100)
	produceKV(t, cl, gtCustomers, v2)
	mu.Lock()
	atUpdate := len(phaseB)
	mu.Unlock()
	flowedAtLeast(atUpdate + 200)
	close(stop)
	<-flowed

	// Phase C: both instances have applied the updates.
	waitGlobalCaughtUp(t, c, a, b)
	phaseC := orders(100_000, 100)
	sendOrders(phaseC)

	var want []string
	for _, r := range append(append([]kv(nil), phaseB...), phaseC...) {
		if *r.value != customerOf(gtCustomerN-1) {
			want = append(want, r.key)
		}
	}
	out := waitOutputs(t, c, append(keys(phaseA), want...))
	t.Logf("%d orders while the table changed; %d outputs in all", len(phaseB), len(out))

	// The driver, on the same input without the racing phase.
	d := streamstest.New(t, globalJoinTopology(t), streamstest.Partitions(gtOrders, 4),
		streamstest.Partitions(gtCustomers, 3), streamstest.Partitions(gtOut, 1))
	dc := streamstest.CreateInputTopic(d, gtCustomers, serde.String(), serde.String())
	do := streamstest.CreateInputTopic(d, gtOrders, serde.String(), serde.String())
	dout := streamstest.CreateOutputTopic(d, gtOut, serde.String(), serde.String())
	pipe := func(in *streamstest.InputTopic[string, string], rs []kv) {
		for _, r := range rs {
			var v []byte
			if r.value != nil {
				v = []byte(*r.value)
			}
			if err := in.PipeRaw([]byte(r.key), v, time.UnixMilli(0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	pipe(dc, v1)
	pipe(do, phaseA)
	pipe(dc, v2)
	pipe(do, phaseC)
	wantAC := streamstest.ReadKeyValuesToMap(dout)

	inAC := map[string]bool{}
	for _, k := range append(keys(phaseA), keys(phaseC)...) {
		inAC[k] = true
	}
	gotAC := map[string]string{}
	count := map[string]int{}
	last := map[string]int{} // "partition/customer" -> last version seen
	versions := map[int]int{}
	for _, r := range out {
		count[r.key]++
		if inAC[r.key] {
			gotAC[r.key] = *r.value
			continue
		}
		var i int
		if _, err := fmt.Sscanf(r.key, "o%d", &i); err != nil {
			t.Fatalf("output key %q", r.key)
		}
		cust := customerOf(i)
		ver := 0
		switch *r.value {
		case fmt.Sprintf("%s=name%d-v1", cust, i%gtCustomerN):
			ver = 1
		case fmt.Sprintf("%s=name%d-v2", cust, i%gtCustomerN):
			ver = 2
		default:
			t.Errorf("order %s joined %q: not a name customer %s ever had", r.key, *r.value, cust)
			continue
		}
		versions[ver]++
		if cust == customerOf(gtCustomerN-1) && ver == 2 {
			t.Errorf("order %s of the deleted customer joined %q", r.key, *r.value)
		}
		pc := fmt.Sprintf("%d/%s", partOf[r.key], cust)
		if ver < last[pc] {
			t.Errorf("order %s (partition/customer %s) joined version %d after version %d", r.key, pc, ver, last[pc])
		}
		last[pc] = ver
	}
	t.Logf("orders sent while the table changed joined old names %d times, new names %d times", versions[1], versions[2])
	if diff := cmp.Diff(wantAC, gotAC); diff != "" {
		t.Errorf("orders before and after the table changed, runtime vs driver (-driver +runtime):\n%s", diff)
	}
	for k, n := range count {
		if n != 1 {
			t.Errorf("order %s has %d outputs", k, n)
		}
	}
	a.stop(t)
	b.stop(t)
}

// TestGlobalStoreRestartReadsTail stops an instance cleanly, adds a few
// records to the global table's topic, and starts a new instance on the
// same state directory: its bootstrap applies exactly the records added
// (the checkpoint written at the clean stop covers the rest), and the join
// sees them.
func TestGlobalStoreRestartReadsTail(t *testing.T) {
	c := newWeir(t, 1)
	createGlobalTopics(t, c)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var table []kv
	for i := range 300 {
		table = append(table, kv{fmt.Sprintf("c%d", i), val("old")})
	}
	produceKV(t, cl, gtCustomers, table)
	dir := t.TempDir()

	first := startGlobalInstance(t, c, dir)
	waitGlobalCaughtUp(t, c, first)
	if got := globalApplied(t, first.app); got != 300 {
		t.Errorf("first start applied %v global records, want 300", got)
	}
	first.stop(t)

	var tail []kv
	for i := range 7 {
		tail = append(tail, kv{fmt.Sprintf("c%d", i*10), val("new")})
	}
	produceKV(t, cl, gtCustomers, tail)
	second := startGlobalInstance(t, c, dir)
	waitGlobalCaughtUp(t, c, second)
	if got := globalApplied(t, second.app); got != 7 {
		t.Errorf("restart applied %v global records, want the 7 added", got)
	}
	produceKV(t, cl, gtOrders, []kv{{"o1", val("c10")}, {"o2", val("c11")}})
	out := waitOutputs(t, c, []string{"o1", "o2"})
	got := map[string]string{}
	for _, r := range out {
		got[r.key] = *r.value
	}
	if diff := cmp.Diff(map[string]string{"o1": "c10=new", "o2": "c11=old"}, got); diff != "" {
		t.Errorf("join after restart (-want +got):\n%s", diff)
	}
	second.stop(t)
}

// TestGlobalStoreCrashRestart abandons an instance (no final commit of
// the global offsets) and starts a new one on its state directory: it
// replays the records after its last global checkpoint on top of the
// stores, which converge to the table's latest values.
func TestGlobalStoreCrashRestart(t *testing.T) {
	c := newWeir(t, 1)
	createGlobalTopics(t, c)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var table []kv
	for i := range 200 {
		table = append(table, kv{fmt.Sprintf("c%d", i%50), val(fmt.Sprintf("v%d", i))})
	}
	produceKV(t, cl, gtCustomers, table)
	dir := t.TempDir()
	// The first instance commits only once, when its bootstrap of the 200
	// records is done (the interval is never reached), so its last global
	// checkpoint is at 200 records and the 100 written afterwards are
	// applied but never committed: the restart must replay exactly them.
	first := startGlobalInstance(t, c, dir, runtime.CommitInterval(time.Hour))
	waitGlobalCaughtUp(t, c, first)
	var more []kv
	for i := range 100 {
		more = append(more, kv{fmt.Sprintf("c%d", i%50), val(fmt.Sprintf("w%d", i))})
	}
	produceKV(t, cl, gtCustomers, more)
	waitGlobalCaughtUp(t, c, first)
	first.app.Abandon()

	second := startGlobalInstance(t, c, dir)
	waitGlobalCaughtUp(t, c, second)
	applied := globalApplied(t, second.app)
	t.Logf("restart after the crash applied %v of 300 global records", applied)
	if applied != 100 {
		t.Errorf("restart applied %v records, want the 100 written after the first instance's only checkpoint", applied)
	}
	var orders []kv
	var want []string
	wantOut := map[string]string{}
	for i := range 50 {
		k := fmt.Sprintf("o%d", i)
		orders = append(orders, kv{k, val(fmt.Sprintf("c%d", i))})
		want = append(want, k)
		wantOut[k] = fmt.Sprintf("c%d=w%d", i, 50+i)
	}
	produceKV(t, cl, gtOrders, orders)
	got := map[string]string{}
	for _, r := range waitOutputs(t, c, want) {
		got[r.key] = *r.value
	}
	if diff := cmp.Diff(wantOut, got); diff != "" {
		t.Errorf("join after the crash and restart (-want +got):\n%s", diff)
	}
	second.stop(t)
}

// globalApplied sums weir_restored_records_total over the global tasks.
func globalApplied(t *testing.T, a *runtime.Application) float64 {
	t.Helper()
	var n float64
	for task, v := range metricByTask(t, a, "weir_restored_records_total") {
		if strings.HasPrefix(task, "global-") {
			n += v
		}
	}
	return n
}

// TestGlobalDeserializationHandler checks that a global table record that
// fails to deserialize meets the configured handler: by default the
// instance stops with an error naming the record; with the skip handler it
// is counted and the table holds the rest.
func TestGlobalDeserializationHandler(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "gd-orders", "gd-prices", "gd-out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	good, _ := serde.Int64().Serialize("gd-prices", 7)
	res := cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: "gd-prices", Key: []byte("p1"), Value: []byte("bad")},
		&kgo.Record{Topic: "gd-prices", Key: []byte("p2"), Value: good},
		&kgo.Record{Topic: "gd-orders", Key: []byte("o1"), Value: []byte("p2")},
	)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	topo := func() *streams.Topology {
		b := dsl.NewBuilder()
		orders := dsl.Stream(b, "gd-orders", serde.String(), serde.String())
		prices := dsl.GlobalTable(b, "gd-prices", serde.String(), serde.Int64())
		dsl.JoinGlobal(orders, prices, func(_, p string) string { return p },
			func(p string, price int64) string { return fmt.Sprintf("%s=%d", p, price) }).To("gd-out")
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	run := func(opts ...runtime.Option) *runtime.Application {
		a, err := runtime.New(topo(), append([]runtime.Option{runtime.ApplicationID("gd-app"), runtime.Brokers(addrs...),
			runtime.StateDir(t.TempDir()), runtime.Logger(quietLogger())}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		return a
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run().Run(ctx); err == nil || !strings.Contains(err.Error(), "gd-prices/0@0") {
		t.Fatalf("default handler: Run = %v, want an error naming gd-prices/0@0", err)
	}

	a := run(runtime.OnDeserializationError(runtime.SkipOnDeserializationError))
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	out := readAll(t, addrs, "gd-out", 1)
	if got := string(out[0].Value); got != "p2=7" {
		t.Errorf("output %q, want p2=7", got)
	}
	if n := metricSum(t, a, "weir_deserialization_errors_total"); n != 1 {
		t.Errorf("deserialization errors counted: %v, want 1", n)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
