package dsl_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

type kv = dsl.KeyValue[string, string]

// run builds the program, pipes the inputs into "in" and returns what
// "out" received.
func run(t *testing.T, build func(in dsl.KStream[string, string]), inputs []kv, opts ...streamstest.Option) []kv {
	t.Helper()
	b := dsl.NewBuilder()
	build(dsl.Stream(b, "in", serde.String(), serde.String()))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, opts...)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String(), streamstest.AutoAdvance(time.UnixMilli(1000), time.Millisecond))
	out := streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String())
	for _, r := range inputs {
		in.Pipe(r.Key, r.Value)
	}
	return out.ReadKeyValues()
}

var fruit = []kv{{Key: "a", Value: "apple"}, {Key: "b", Value: "banana"}, {Key: "c", Value: "cherry"}, {Key: "a", Value: "avocado"}}

func TestStatelessOperations(t *testing.T) {
	long := func(_, v string) bool { return len(v) > 5 }
	for _, tc := range []struct {
		name  string
		build func(s dsl.KStream[string, string])
		want  []kv
	}{
		{"Filter", func(s dsl.KStream[string, string]) { s.Filter(long).To("out") },
			[]kv{{Key: "b", Value: "banana"}, {Key: "c", Value: "cherry"}, {Key: "a", Value: "avocado"}}},
		{"FilterNot", func(s dsl.KStream[string, string]) { s.FilterNot(long).To("out") },
			[]kv{{Key: "a", Value: "apple"}}},
		{"Map", func(s dsl.KStream[string, string]) {
			dsl.Map(s, func(k, v string) (string, string) { return v, k }).To("out")
		}, []kv{{Key: "apple", Value: "a"}, {Key: "banana", Value: "b"}, {Key: "cherry", Value: "c"}, {Key: "avocado", Value: "a"}}},
		{"MapValues", func(s dsl.KStream[string, string]) {
			dsl.MapValues(s, strings.ToUpper).To("out")
		}, []kv{{Key: "a", Value: "APPLE"}, {Key: "b", Value: "BANANA"}, {Key: "c", Value: "CHERRY"}, {Key: "a", Value: "AVOCADO"}}},
		{"MapValuesWithKey", func(s dsl.KStream[string, string]) {
			dsl.MapValuesWithKey(s, func(k, v string) string { return k + ":" + v }).To("out")
		}, []kv{{Key: "a", Value: "a:apple"}, {Key: "b", Value: "b:banana"}, {Key: "c", Value: "c:cherry"}, {Key: "a", Value: "a:avocado"}}},
		{"SelectKey", func(s dsl.KStream[string, string]) {
			dsl.SelectKey(s, func(_, v string) string { return v[len(v)-1:] }).To("out")
		}, []kv{{Key: "e", Value: "apple"}, {Key: "a", Value: "banana"}, {Key: "y", Value: "cherry"}, {Key: "o", Value: "avocado"}}},
		{"FlatMap", func(s dsl.KStream[string, string]) {
			dsl.FlatMap(s, func(k, v string) []dsl.KeyValue[string, string] {
				if k != "a" {
					return nil
				}
				return []dsl.KeyValue[string, string]{dsl.KV(v, "1"), dsl.KV(v, "2")}
			}).To("out")
		}, []kv{{Key: "apple", Value: "1"}, {Key: "apple", Value: "2"}, {Key: "avocado", Value: "1"}, {Key: "avocado", Value: "2"}}},
		{"FlatMapValues", func(s dsl.KStream[string, string]) {
			dsl.FlatMapValues(s, func(v string) []string { return strings.Split(v, "an") }).To("out")
		}, []kv{{Key: "a", Value: "apple"}, {Key: "b", Value: "b"}, {Key: "b", Value: ""}, {Key: "b", Value: "a"}, {Key: "c", Value: "cherry"}, {Key: "a", Value: "avocado"}}},
		{"Merge", func(s dsl.KStream[string, string]) {
			a := s.Filter(func(k, _ string) bool { return k == "a" })
			c := s.Filter(func(k, _ string) bool { return k == "c" })
			a.Merge(c).To("out")
		}, []kv{{Key: "a", Value: "apple"}, {Key: "c", Value: "cherry"}, {Key: "a", Value: "avocado"}}},
		{"ToFunc", func(s dsl.KStream[string, string]) {
			s.ToFunc(func(k, _ string) string {
				if k == "b" {
					return "out"
				}
				return "elsewhere"
			})
		}, []kv{{Key: "b", Value: "banana"}}},
		{"Repartition", func(s dsl.KStream[string, string]) {
			s.Repartition(dsl.Named("rp")).To("out")
		}, fruit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, tc.build, fruit)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPeekAndForeach(t *testing.T) {
	var peeked, each []string
	got := run(t, func(s dsl.KStream[string, string]) {
		p := s.Peek(func(k, v string) { peeked = append(peeked, k+"="+v) })
		p.Foreach(func(k, _ string) { each = append(each, k) })
		p.To("out")
	}, fruit[:2])
	if diff := cmp.Diff([]string{"a=apple", "b=banana"}, peeked); diff != "" {
		t.Errorf("peek (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, each); diff != "" {
		t.Errorf("foreach (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fruit[:2], got); diff != "" {
		t.Errorf("passed on (-want +got):\n%s", diff)
	}
}

func TestSplit(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.Stream(b, "in", serde.String(), serde.String())
	br := s.Split([]dsl.Branch[string, string]{
		{Name: "a", Pred: func(k, _ string) bool { return k == "a" }},
		{Name: "long", Pred: func(_, v string) bool { return len(v) > 5 }},
	}, "rest", dsl.Named("split"))
	br["a"].To("out-a")
	br["long"].To("out-long")
	br["rest"].To("out-rest")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	for _, r := range append(fruit, kv{Key: "d", Value: "date"}) {
		in.Pipe(r.Key, r.Value)
	}
	got := map[string][]kv{}
	for _, tp := range []string{"out-a", "out-long", "out-rest"} {
		got[tp] = streamstest.CreateOutputTopic(d, tp, serde.String(), serde.String()).ReadKeyValues()
	}
	want := map[string][]kv{
		"out-a":    {{Key: "a", Value: "apple"}, {Key: "a", Value: "avocado"}}, // first matching branch wins
		"out-long": {{Key: "b", Value: "banana"}, {Key: "c", Value: "cherry"}},
		"out-rest": {{Key: "d", Value: "date"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Repartitioning after SelectKey with 4 input partitions: records of one
// new key arrive from every input partition and must meet in one task.
func TestRepartitionAfterSelectKeyFourPartitions(t *testing.T) {
	b := dsl.NewBuilder()
	words := dsl.Stream(b, "lines", serde.String(), serde.String())
	byWord := dsl.SelectKey(words, func(_, w string) string { return w })
	byWord.GroupByKey(dsl.Named("by-word")).Count(dsl.Named("count")).ToStream().To("counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topo.Subtopologies()); n != 2 {
		t.Fatalf("%d sub-topologies, want 2 (split at the repartition topic)\n%s", n, topo.Describe())
	}
	d := streamstest.New(t, topo, streamstest.DefaultPartitions(4))
	if n := len(d.Tasks()); n != 8 {
		t.Fatalf("%d tasks, want 2 sub-topologies x 4 partitions", n)
	}
	in := streamstest.CreateInputTopic(d, "lines", serde.String(), serde.String())
	want := map[string]int64{}
	partitions := map[streams.Partition]bool{}
	for i := range 400 {
		key := "line-" + strconv.Itoa(i) // spreads over the 4 input partitions
		partitions[streams.KeyPartition([]byte(key), 4)] = true
		word := []string{"red", "green", "blue", "cyan", "magenta"}[i%5]
		if i%7 == 0 {
			word = "rare"
		}
		want[word]++
		in.Pipe(key, word)
	}
	if len(partitions) != 4 {
		t.Fatalf("input used partitions %v, want all 4", partitions)
	}
	out := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.Int64())
	got := streamstest.ReadKeyValuesToMap(out)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final counts (-want +got):\n%s", diff)
	}
	// Every word's count lives in exactly one task's store.
	store := streamstest.GetKeyValueStore(d, "count-store", serde.String(), serde.Int64())
	all, err := store.All()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int64{}
	for _, e := range all {
		if _, dup := seen[e.Key]; dup {
			t.Errorf("word %q counted in two tasks", e.Key)
		}
		seen[e.Key] = e.Value
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("stores (-want +got):\n%s", diff)
	}
}

func TestGroupByReduceAggregate(t *testing.T) {
	b := dsl.NewBuilder()
	s := dsl.Stream(b, "in", serde.String(), serde.String())
	byFirst := dsl.GroupBy(s, func(_, v string) string { return v[:1] }, dsl.Named("first-letter"))
	byFirst.Reduce(func(a, v string) string { return a + "," + v }).ToStream().To("reduced")
	dsl.Aggregate(byFirst, func() int64 { return 0 }, func(_, v string, n int64) int64 { return n + int64(len(v)) },
		dsl.StoreName("letters")).ToStream().To("lengths")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, streamstest.DefaultPartitions(2))
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	for _, r := range fruit {
		in.Pipe(r.Key, r.Value)
	}
	red := streamstest.ReadKeyValuesToMap(streamstest.CreateOutputTopic(d, "reduced", serde.String(), serde.String()))
	if diff := cmp.Diff(map[string]string{"a": "apple,avocado", "b": "banana", "c": "cherry"}, red); diff != "" {
		t.Errorf("reduce (-want +got):\n%s", diff)
	}
	lens := streamstest.ReadKeyValuesToMap(streamstest.CreateOutputTopic(d, "lengths", serde.String(), serde.Int64()))
	if diff := cmp.Diff(map[string]int64{"a": 12, "b": 6, "c": 6}, lens); diff != "" {
		t.Errorf("aggregate (-want +got):\n%s", diff)
	}
	v, ok, err := streamstest.GetKeyValueStore(d, "letters", serde.String(), serde.Int64()).Get("a")
	if err != nil || !ok || v != 12 {
		t.Errorf("store letters[a] = %d, %v, %v; want 12", v, ok, err)
	}
}

func TestTableOperations(t *testing.T) {
	b := dsl.NewBuilder()
	prices := dsl.Table(b, "prices", serde.String(), serde.Int64(), dsl.StoreName("prices"))
	expensive := prices.Filter(func(_ string, p int64) bool { return p >= 100 }, dsl.StoreName("expensive"))
	expensive.To("expensive")
	labels := dsl.TableMapValues(prices, func(p int64) string { return strconv.FormatInt(p, 10) + "c" })
	labels.ToStream().To("labels")
	dsl.Stream(b, "in", serde.String(), serde.String()).ToTable(dsl.StoreName("latest"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "prices", serde.String(), serde.Int64())
	in.Pipe("tea", 50)
	in.Pipe("cake", 150)
	in.Pipe("tea", 120)                                                       // now expensive
	in.Pipe("cake", 90)                                                       // no longer expensive: deleted downstream
	if err := in.PipeRaw([]byte("tea"), nil, time.UnixMilli(5)); err != nil { // deleted
		t.Fatal(err)
	}
	exp := streamstest.CreateOutputTopic(d, "expensive", serde.String(), dsl.NullableSerde(serde.Int64()))
	wantExp := []dsl.KeyValue[string, dsl.Nullable[int64]]{
		{Key: "cake", Value: dsl.Some[int64](150)}, {Key: "tea", Value: dsl.Some[int64](120)},
		{Key: "cake"}, {Key: "tea"},
	}
	if diff := cmp.Diff(wantExp, exp.ReadKeyValues()); diff != "" {
		t.Errorf("filter (-want +got):\n%s", diff)
	}
	lab := streamstest.CreateOutputTopic(d, "labels", serde.String(), serde.String())
	wantLab := []kv{{Key: "tea", Value: "50c"}, {Key: "cake", Value: "150c"}, {Key: "tea", Value: "120c"}, {Key: "cake", Value: "90c"}}
	if diff := cmp.Diff(wantLab, lab.ReadKeyValues()); diff != "" {
		t.Errorf("map values (-want +got):\n%s", diff)
	}
	all, err := streamstest.GetKeyValueStore(d, "prices", serde.String(), serde.Int64()).All()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]dsl.KeyValue[string, int64]{{Key: "cake", Value: 90}}, all); diff != "" {
		t.Errorf("queryable store (-want +got):\n%s", diff)
	}
	li := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	li.Pipe("x", "1")
	li.Pipe("x", "2")
	if v, ok, _ := streamstest.GetKeyValueStore(d, "latest", serde.String(), serde.String()).Get("x"); !ok || v != "2" {
		t.Errorf("ToTable store x = %q, %v; want 2", v, ok)
	}
}

// A custom processor with a store, a wall-clock punctuator and a
// stream-time punctuator, forwarding to a named child.
type dedup struct {
	store dsl.KeyValueHandle[string, int64]
	ctx   streams.ProcessorContext[string, string]
	seen  *state.TypedKeyValue[string, int64]
	ticks []int64
}

func (p *dedup) Init(ctx streams.ProcessorContext[string, string]) (err error) {
	p.ctx = ctx
	if p.seen, err = p.store.Open(ctx); err != nil {
		return err
	}
	if _, err := ctx.Schedule(time.Minute, streams.WallClockTime, func(ts time.Time) error {
		// Forget everything once a minute of wall-clock time.
		var keys []string
		for e, err := range p.seen.All() {
			if err != nil {
				return err
			}
			keys = append(keys, e.Key)
		}
		for _, k := range keys {
			if err := p.seen.Delete(k); err != nil {
				return err
			}
		}
		return ctx.Forward(streams.Record[string, string]{Key: "tick", Value: ts.UTC().Format("15:04"), Timestamp: ts})
	}); err != nil {
		return err
	}
	_, err = ctx.Schedule(10*time.Millisecond, streams.StreamTime, func(ts time.Time) error {
		p.ticks = append(p.ticks, ts.UnixMilli())
		return nil
	})
	return err
}

func (p *dedup) Process(r streams.Record[string, string]) error {
	if r.Value == "boom" {
		return errors.New("cannot digest boom")
	}
	if _, seen, err := p.seen.Get(r.Value); err != nil || seen {
		return err
	}
	if err := p.seen.Put(r.Value, r.Timestamp.UnixMilli()); err != nil {
		return err
	}
	md, _ := p.ctx.RecordMetadata()
	r.Headers = r.Headers.Add("from", []byte(md.Topic+"/"+strconv.Itoa(int(md.Partition))+"@"+strconv.Itoa(int(md.Offset))))
	return p.ctx.ForwardTo("dedup-out", r)
}

func (p *dedup) Close() error { return nil }

func TestProcessWithStoreAndPunctuators(t *testing.T) {
	b := dsl.NewBuilder()
	var proc *dedup
	seen := dsl.KeyValueStore(b, "seen", serde.String(), serde.Int64())
	s := dsl.Stream(b, "in", serde.String(), serde.String())
	out := dsl.Process(s, func() streams.Processor[string, string, string, string] {
		proc = &dedup{store: seen}
		return proc
	}, dsl.Stores(seen), dsl.Named("dedup"))
	out.Peek(func(string, string) {}, dsl.Named("dedup-out")).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, streamstest.WallClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)))
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String(), streamstest.AutoAdvance(time.UnixMilli(0), 7*time.Millisecond))
	o := streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String())
	for _, v := range []string{"x", "y", "x", "z"} {
		in.Pipe("k", v) // timestamps 0, 7, 14, 21
	}
	got := o.ReadRecords()
	var vals, from []string
	for _, r := range got {
		vals = append(vals, r.Value)
		h, _ := r.Headers.Get("from")
		from = append(from, string(h))
	}
	if diff := cmp.Diff([]string{"x", "y", "z"}, vals); diff != "" {
		t.Errorf("dedup (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"in/0@0", "in/0@1", "in/0@3"}, from); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	// Stream-time punctuation: first at stream time 0, then each 10ms
	// boundary passed (7 does not pass 10; 14 passes 10; 21 passes 20).
	if diff := cmp.Diff([]int64{0, 10, 20}, proc.ticks); diff != "" {
		t.Errorf("stream-time punctuations (-want +got):\n%s", diff)
	}
	if err := d.AdvanceWallClock(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !o.IsEmpty() {
		t.Fatalf("wall-clock punctuator fired early: %v", o.ReadKeyValues())
	}
	if err := d.AdvanceWallClock(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]kv{{Key: "tick", Value: "12:01"}}, o.ReadKeyValues()); diff != "" {
		t.Errorf("wall-clock punctuation (-want +got):\n%s", diff)
	}
	in.Pipe("k", "x") // forgotten by the punctuator: passes again
	if diff := cmp.Diff([]kv{{Key: "k", Value: "x"}}, o.ReadKeyValues()); diff != "" {
		t.Errorf("after punctuation (-want +got):\n%s", diff)
	}

	// An error from user code surfaces with the record that caused it.
	err = in.TryPipe("bad-key", "boom")
	var pe *streams.ProcessingError
	if !errors.As(err, &pe) || pe.Record == nil || string(pe.Record.Key) != "bad-key" || pe.Record.Topic != "in" {
		t.Fatalf("error = %v, want a ProcessingError carrying the record", err)
	}
	var ne *streams.NodeError
	if !errors.As(err, &ne) || ne.Node != "dedup" {
		t.Errorf("error %v does not name node dedup", err)
	}
	if !strings.Contains(err.Error(), "cannot digest boom") {
		t.Errorf("error %q lost the cause", err)
	}
}

func TestTimestampExtractor(t *testing.T) {
	b := dsl.NewBuilder()
	// The event time is the value, in milliseconds.
	fromValue := func(r *streams.RawRecord) time.Time {
		ms, _ := strconv.ParseInt(string(r.Value), 10, 64)
		return time.UnixMilli(ms)
	}
	dsl.Stream(b, "in", serde.String(), serde.String(), dsl.TimestampExtractor(fromValue)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	in.PipeAt("k", "1234", time.UnixMilli(1))
	r := streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String()).ReadRecord()
	if got := r.Timestamp.UnixMilli(); got != 1234 {
		t.Errorf("timestamp %d, want 1234 from the extractor", got)
	}
}
