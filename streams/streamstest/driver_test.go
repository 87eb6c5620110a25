package streamstest_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

type Order struct {
	ID string
}

// The example of the package documentation, as a test.
func TestOrdersPerMinute(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]()).
		GroupByKey().
		WindowedBy(dsl.TumblingWindows(time.Minute).Grace(10 * time.Second)).
		Count(dsl.Named("count")).
		Suppress(dsl.UntilWindowCloses()).
		ToStream().
		To("order-counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	d := streamstest.New(t, topo) // closed by t.Cleanup
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	out := streamstest.CreateOutputTopic(d, "order-counts",
		dsl.WindowedSerde(serde.String(), time.Minute), serde.Int64())

	in.PipeAt("alice", Order{ID: "o1"}, time.UnixMilli(0))
	in.PipeAt("alice", Order{ID: "o2"}, time.UnixMilli(30_000))
	in.PipeAt("bob", Order{ID: "o3"}, time.UnixMilli(75_000)) // closes [0s, 60s)

	got := out.ReadKeyValues()
	want := []dsl.KeyValue[dsl.Windowed[string], int64]{{
		Key:   dsl.Windowed[string]{Key: "alice", Window: dsl.Window{Start: time.UnixMilli(0), End: time.UnixMilli(60_000)}},
		Value: 2,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final counts (-want +got):\n%s", diff)
	}
	if n := d.Metrics().Dropped[streams.Drop{Node: "count", Reason: streams.DropLate}]; n != 0 {
		t.Errorf("%d late records", n)
	}
}

func passThrough(t *testing.T, opts ...streamstest.Option) (*streamstest.Driver, *streamstest.InputTopic[string, string], *streamstest.OutputTopic[string, string]) {
	t.Helper()
	b := dsl.NewBuilder()
	dsl.Stream(b, "in", serde.String(), serde.String()).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, opts...)
	return d, streamstest.CreateInputTopic(d, "in", serde.String(), serde.String(), streamstest.AutoAdvance(time.UnixMilli(100), 10*time.Millisecond)),
		streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String())
}

func TestInputAndOutputTopics(t *testing.T) {
	d, in, out := passThrough(t)
	if !out.IsEmpty() || out.QueueSize() != 0 {
		t.Fatal("output not empty at start")
	}
	in.Pipe("a", "1") // ts 100
	in.Pipe("b", "2") // ts 110
	in.PipeRecord(streams.Record[string, string]{Key: "a", Value: "3", Timestamp: time.UnixMilli(5),
		Headers: streams.Headers{{Key: "h", Value: []byte("x")}}})
	in.PipeList([]streams.Record[string, string]{{Key: "c", Value: "4"}, {Key: "a", Value: "5"}}) // ts 120, 130
	if out.QueueSize() != 5 {
		t.Fatalf("queue size %d, want 5", out.QueueSize())
	}
	first := out.ReadRecord()
	if diff := cmp.Diff(streamstest.TestRecord[string, string]{Key: "a", Value: "1", Timestamp: time.UnixMilli(100)}, first); diff != "" {
		t.Errorf("first record (-want +got):\n%s", diff)
	}
	rest := out.ReadRecords()
	if diff := cmp.Diff(streams.Headers{{Key: "h", Value: []byte("x")}}, rest[1].Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	var ts []int64
	for _, r := range rest {
		ts = append(ts, r.Timestamp.UnixMilli())
	}
	if diff := cmp.Diff([]int64{110, 5, 120, 130}, ts); diff != "" {
		t.Errorf("timestamps (-want +got):\n%s", diff)
	}
	if !out.IsEmpty() {
		t.Error("not empty after ReadRecords")
	}
	// A second reader starts at the beginning; the map keeps the latest.
	again := streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String())
	if diff := cmp.Diff(map[string]string{"a": "5", "b": "2", "c": "4"}, streamstest.ReadKeyValuesToMap(again)); diff != "" {
		t.Errorf("map (-want +got):\n%s", diff)
	}
}

func TestPartitionsUseMurmur2(t *testing.T) {
	d, in, out := passThrough(t, streamstest.Partitions("in", 3), streamstest.Partitions("out", 5))
	for _, k := range []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"} {
		in.Pipe(k, k)
	}
	if n := len(d.Tasks()); n != 3 {
		t.Errorf("%d tasks, want 3 (one per input partition)", n)
	}
	for _, r := range out.ReadRecords() {
		if want := streams.KeyPartition([]byte(r.Key), 5); r.Partition != want {
			t.Errorf("key %q in partition %d, murmur2 says %d", r.Key, r.Partition, want)
		}
	}
}

func TestPipeErrorsCarryTheRecord(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "in", serde.String(), serde.String()).To("out", dsl.ValueSerde(serde.Func(func(_ string, v string) ([]byte, error) {
		if v == "secret" {
			return nil, errors.New("refusing to write secrets")
		}
		return []byte(v), nil
	}, func(_ string, b []byte) (string, error) { return string(b), nil })))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	in.Pipe("k", "fine")
	err = in.TryPipe("k2", "secret")
	var pe *streams.ProcessingError
	var se *streams.SerdeError
	if !errors.As(err, &pe) || string(pe.Record.Key) != "k2" || pe.Record.Offset != 1 {
		t.Fatalf("error %v: want a ProcessingError for in/0@1", err)
	}
	if !errors.As(err, &se) || se.What != "value" || se.Topic != "out" {
		t.Errorf("error %v: want a SerdeError on the value for topic out", err)
	}
}

func TestBuildErrorsNameNodeAndFix(t *testing.T) {
	type unknown struct{ X int }
	b := dsl.NewBuilder()
	dsl.MapValues(dsl.Stream(b, "in", serde.String(), serde.String()), func(v string) unknown { return unknown{} }, dsl.Named("to-unknown")).
		To("out", dsl.Named("writer"))
	_, err := b.Build()
	if !streams.IsInvalidTopology(err) {
		t.Fatalf("Build = %v, want an invalid topology", err)
	}
	var te *streams.TopologyError
	if !errors.As(err, &te) || te.Node != "writer" || te.Fix == "" {
		t.Errorf("error %v should name node writer and a fix", err)
	}
}

// fatalTB records a Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestDriverRefusesJoinOfTopicsNotCopartitioned(t *testing.T) {
	b := dsl.NewBuilder()
	l := dsl.Stream(b, "left", serde.String(), serde.String())
	r := dsl.Stream(b, "right", serde.String(), serde.String())
	dsl.Join(l, r, func(a, b string) string { return a + b }, dsl.JoinWindowsOf(time.Second)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ftb := &fatalTB{TB: t}
	streamstest.New(ftb, topo, streamstest.Partitions("left", 4), streamstest.Partitions("right", 3))
	if !strings.Contains(ftb.msg, "not co-partitioned") || !strings.Contains(ftb.msg, `"right" has 3`) {
		t.Errorf("New with 4 and 3 partitions: %q, want a co-partitioning error", ftb.msg)
	}
	// Equal counts run, and a key change before the join adapts through
	// repartition topics.
	streamstest.New(t, topo, streamstest.DefaultPartitions(4))
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	d, in, _ := passThrough(t)
	in.Pipe("k", "v")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// Restart restores a count from its changelog and reads the input after
// the last commit again: with commits every 3 records, a restart after 7
// records replays the 7th, and the counts come out as without the restart,
// the replayed record's update once more (at-least-once).
func TestRestartRestoresAndReplaysUncommitted(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "in", serde.String(), serde.String()).GroupByKey().Count(dsl.StoreName("counts")).ToStream().To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, streamstest.CommitEvery(3))
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	out := streamstest.CreateOutputTopic(d, "out", serde.String(), serde.Int64())
	keys := []string{"a", "b", "a", "a", "b", "c", "a"}
	for _, k := range keys {
		in.Pipe(k, "v")
	}
	// Committed: records 1-6 (a=3, b=2, c=1); record 7 (a) only cached.
	want := []dsl.KeyValue[string, int64]{{Key: "b", Value: 1}, {Key: "a", Value: 2}, {Key: "a", Value: 3}, {Key: "b", Value: 2}, {Key: "c", Value: 1}}
	if diff := cmp.Diff(want, out.ReadKeyValues()); diff != "" {
		t.Fatalf("before the restart (-want +got):\n%s", diff)
	}
	d.Restart()
	// The restart lost a=4 with the cache, restored a=3 from the
	// changelog, processed record 7 again and committed: a=4 once.
	if diff := cmp.Diff([]dsl.KeyValue[string, int64]{{Key: "a", Value: 4}}, out.ReadKeyValues()); diff != "" {
		t.Fatalf("after the restart (-want +got):\n%s", diff)
	}
	in.Pipe("c", "v")
	d.Commit()
	if diff := cmp.Diff([]dsl.KeyValue[string, int64]{{Key: "c", Value: 2}}, out.ReadKeyValues()); diff != "" {
		t.Fatalf("after one more record (-want +got):\n%s", diff)
	}
	got := map[string]int64{}
	for _, k := range []string{"a", "b", "c"} {
		v, ok, err := streamstest.GetKeyValueStore(d, "counts", serde.String(), serde.Int64()).Get(k)
		if err != nil || !ok {
			t.Fatalf("store %s: %v, %v", k, ok, err)
		}
		got[k] = v
	}
	if diff := cmp.Diff(map[string]int64{"a": 4, "b": 2, "c": 2}, got); diff != "" {
		t.Fatalf("store (-want +got):\n%s", diff)
	}
}

func TestRestartNeedsStateStores(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "in", serde.String(), serde.String()).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ft := &fatalTB{TB: t}
	d := streamstest.New(ft, topo, streamstest.MapStores())
	d.Restart()
	if !strings.Contains(ft.msg, "MapStores") {
		t.Fatalf("Restart with map stores failed with %q; want it to name MapStores", ft.msg)
	}
}

// Sources decode string keys and values of the driver's own records
// without copying them (streams.RawRecord.Stable). What a processor keeps
// must still never change: records piped through input topics and
// repartition topics, across many of the driver's buffers, and raw records
// whose bytes the test writes over after piping them (those are copied).
func TestKeptKeysAndValuesStayIntact(t *testing.T) {
	var direct, repartitioned []string
	b := dsl.NewBuilder()
	s := dsl.Stream(b, "in", serde.String(), serde.String())
	// The processors keep the strings they are given, not copies.
	s.Foreach(func(k, v string) { direct = append(direct, k, v) })
	dsl.SelectKey(s, func(k, v string) string { return v + "/" + k }).Repartition().
		Foreach(func(k, v string) { repartitioned = append(repartitioned, k, v) })
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, streamstest.DiscardRecords(), streamstest.DefaultPartitions(3))
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	var want, wantRe []string
	for i := range 5000 { // about 40 of the driver's 8 KiB buffers
		k, v := fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i%97)
		in.Pipe(k, v)
		want, wantRe = append(want, k, v), append(wantRe, v+"/"+k, v)
	}
	buf := make([]byte, 0, 64)
	for i := range 100 {
		k := fmt.Sprintf("raw-%d", i)
		buf = append(buf[:0], k...)
		if err := in.PipeRaw(buf, buf, time.UnixMilli(0)); err != nil {
			t.Fatal(err)
		}
		for j := range buf {
			buf[j] = '#' // the test's buffer is its own again
		}
		want, wantRe = append(want, k, k), append(wantRe, k+"/"+k, k)
	}
	if diff := cmp.Diff(want, direct); diff != "" {
		t.Errorf("kept by the first processor (-want +got):\n%s", diff)
	}
	// Repartitioning spreads the records over 3 partitions: compare them as
	// sets of strings.
	slices.Sort(wantRe)
	slices.Sort(repartitioned)
	if diff := cmp.Diff(wantRe, repartitioned); diff != "" {
		t.Errorf("kept after the repartition topic (-want +got):\n%s", diff)
	}
}
