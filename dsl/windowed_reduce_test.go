package dsl_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// winRow is one update of a windowed table, as the change stream carries
// it: the key, the window's start and end (ms), the value, and whether it
// is a deletion.
type winRow[V any] struct {
	Key        string
	Start, End int64
	Value      V
	Deleted    bool
}

// windowedRows drains out into winRows.
func windowedRows[V any](out *streamstest.OutputTopic[dsl.Windowed[string], dsl.Nullable[V]]) []winRow[V] {
	var rows []winRow[V]
	for _, r := range out.ReadRecords() {
		rows = append(rows, winRow[V]{Key: r.Key.Key, Start: r.Key.Window.Start.UnixMilli(), End: r.Key.Window.End.UnixMilli(),
			Value: r.Value.Value, Deleted: !r.Value.Valid})
	}
	return rows
}

// Tumbling windows of 10ms with 5ms grace: a window [s, s+10) closes once
// stream time reaches s+15.
func tumbling() dsl.TimeWindows {
	return dsl.TumblingWindows(10 * time.Millisecond).Grace(5 * time.Millisecond)
}

func TestTumblingReduce(t *testing.T) {
	b := dsl.NewBuilder()
	sums := dsl.Stream(b, "in", serde.String(), serde.Int64()).
		GroupByKey().
		WindowedBy(tumbling()).
		Reduce(func(agg, v int64) int64 { return agg + v }, dsl.Named("sum"))
	dsl.ChangeStream(dsl.AsTable(sums)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.Int64())
	out := streamstest.CreateOutputTopic(d, "out", dsl.WindowedSerde(serde.String(), 10*time.Millisecond), dsl.NullableSerde(serde.Int64()))

	in.PipeAt("a", 1, time.UnixMilli(0))   // a [0,10): 1
	in.PipeAt("a", 2, time.UnixMilli(4))   // a [0,10): 1+2
	in.PipeAt("b", 5, time.UnixMilli(7))   // b [0,10): 5, its own key
	in.PipeAt("a", 10, time.UnixMilli(12)) // a [10,20): 10, a new window
	want := []winRow[int64]{
		{Key: "a", Start: 0, End: 10, Value: 1},
		{Key: "a", Start: 0, End: 10, Value: 1 + 2},
		{Key: "b", Start: 0, End: 10, Value: 5},
		{Key: "a", Start: 10, End: 20, Value: 10},
	}
	if diff := cmp.Diff(want, windowedRows(out)); diff != "" {
		t.Errorf("reduce (-want +got):\n%s", diff)
	}
	// Stream time 14 < 0+10+5: [0,10) is still open to a record at 9.
	in.PipeAt("b", 3, time.UnixMilli(14)) // b [10,20): 3
	in.PipeAt("a", 20, time.UnixMilli(9)) // a [0,10): 1+2+20, within grace
	want = []winRow[int64]{
		{Key: "b", Start: 10, End: 20, Value: 3},
		{Key: "a", Start: 0, End: 10, Value: 1 + 2 + 20},
	}
	if diff := cmp.Diff(want, windowedRows(out)); diff != "" {
		t.Errorf("within grace (-want +got):\n%s", diff)
	}
	// Stream time 15 = 0+10+5 closes [0,10): a record at 9 is dropped.
	in.PipeAt("b", 4, time.UnixMilli(15)) // b [10,20): 3+4
	in.PipeAt("a", 40, time.UnixMilli(9)) // late: dropped
	want = []winRow[int64]{{Key: "b", Start: 10, End: 20, Value: 3 + 4}}
	if diff := cmp.Diff(want, windowedRows(out)); diff != "" {
		t.Errorf("late (-want +got):\n%s", diff)
	}
	if got := d.Metrics().Dropped[streams.Drop{Node: "sum", Reason: streams.DropLate}]; got != 1 {
		t.Errorf("late records dropped = %d, want 1 (metrics %v)", got, d.Metrics().Dropped)
	}
}

func TestTumblingAggregate(t *testing.T) {
	b := dsl.NewBuilder()
	// The aggregate has its own type: the values seen, in order.
	seen := dsl.WindowedAggregate(
		dsl.Stream(b, "in", serde.String(), serde.Int64()).GroupByKey().WindowedBy(tumbling()),
		func() string { return "" },
		func(_ string, v int64, agg string) string { return agg + string(rune('0'+v)) },
		dsl.Named("seen"), dsl.ValueSerde(serde.String()))
	dsl.ChangeStream(dsl.AsTable(seen)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.Int64())
	out := streamstest.CreateOutputTopic(d, "out", dsl.WindowedSerde(serde.String(), 10*time.Millisecond), dsl.NullableSerde(serde.String()))

	in.PipeAt("a", 1, time.UnixMilli(3))  // a [0,10): "" + "1"
	in.PipeAt("a", 2, time.UnixMilli(11)) // a [10,20): "2"
	in.PipeAt("a", 3, time.UnixMilli(8))  // a [0,10): "1"+"3" (stream time 11 < 15)
	in.PipeAt("a", 4, time.UnixMilli(25)) // a [20,30): "4"; stream time 25 closes [0,10) and [10,20)
	in.PipeAt("a", 5, time.UnixMilli(19)) // late for [10,20): dropped
	want := []winRow[string]{
		{Key: "a", Start: 0, End: 10, Value: "1"},
		{Key: "a", Start: 10, End: 20, Value: "2"},
		{Key: "a", Start: 0, End: 10, Value: "13"},
		{Key: "a", Start: 20, End: 30, Value: "4"},
	}
	if diff := cmp.Diff(want, windowedRows(out)); diff != "" {
		t.Errorf("aggregate (-want +got):\n%s", diff)
	}
	if got := d.Metrics().Dropped[streams.Drop{Node: "seen", Reason: streams.DropLate}]; got != 1 {
		t.Errorf("late records dropped = %d, want 1 (metrics %v)", got, d.Metrics().Dropped)
	}
}

// TestSessionAggregateMerge sums values per session (gap 10ms, grace
// 50ms). The merger adds two sessions' sums; a record bridging two
// sessions must produce their merged sum plus its own value. (The DSL has
// no session Reduce: SessionAggregate is the session fold.)
func TestSessionAggregateMerge(t *testing.T) {
	b := dsl.NewBuilder()
	merges := 0
	sums := dsl.SessionAggregate(
		dsl.Stream(b, "in", serde.String(), serde.Int64()).GroupByKey().
			WindowedBySession(dsl.SessionWindowsWithGap(10*time.Millisecond).Grace(50*time.Millisecond)),
		func() int64 { return 0 },
		func(_ string, v, agg int64) int64 { return agg + v },
		func(_ string, x, y int64) int64 { merges++; return x + y },
		dsl.Named("sessions"), dsl.ValueSerde(serde.Int64()))
	dsl.ChangeStream(dsl.AsTable(sums)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.Int64())
	out := streamstest.CreateOutputTopic(d, "out", dsl.SessionWindowedSerde(serde.String()), dsl.NullableSerde(serde.Int64()))

	in.PipeAt("u", 1, time.UnixMilli(0))  // u [0,0]: 1
	in.PipeAt("u", 2, time.UnixMilli(25)) // u [25,25]: 2, more than the gap from 0
	in.PipeAt("u", 4, time.UnixMilli(5))  // extends [0,0] to [0,5]: 1+4
	want := []winRow[int64]{
		{Key: "u", Start: 0, End: 0, Value: 1},
		{Key: "u", Start: 25, End: 25, Value: 2},
		{Key: "u", Start: 0, End: 0, Deleted: true}, {Key: "u", Start: 0, End: 5, Value: 1 + 4},
	}
	if diff := cmp.Diff(want, windowedRows(out)); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
	// 15 is within the gap of both 5 and 25: [0,5] and [25,25] merge with
	// it into [0,25], whose sum is (1+4) + 2 + 8.
	in.PipeAt("u", 8, time.UnixMilli(15))
	want = []winRow[int64]{
		{Key: "u", Start: 0, End: 5, Deleted: true}, {Key: "u", Start: 25, End: 25, Deleted: true},
		{Key: "u", Start: 0, End: 25, Value: (1 + 4) + 2 + 8},
	}
	if diff := cmp.Diff(want, windowedRows(out)); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
	if merges == 0 {
		t.Errorf("the merger was never called for the bridging record")
	}
	// The store holds only the merged session (read before stream time
	// moves on: the store keeps sessions for gap+grace only).
	got, err := streamstest.GetSessionStore(d, sums.StoreName(), serde.String(), serde.Int64()).Fetch("u")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]streamstest.SessionValue[int64]{{Start: 0, End: 25, Value: (1 + 4) + 2 + 8}}, got); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
	// Stream time 100: a record at 35 would extend [0,25] to end at 35,
	// before 100 - 50: it is dropped and [0,25] keeps its sum.
	in.PipeAt("v", 0, time.UnixMilli(100))
	in.PipeAt("u", 16, time.UnixMilli(35))
	want = []winRow[int64]{{Key: "v", Start: 100, End: 100, Value: 0}}
	if diff := cmp.Diff(want, windowedRows(out)); diff != "" {
		t.Errorf("late (-want +got):\n%s", diff)
	}
	if got := d.Metrics().Dropped[streams.Drop{Node: "sessions", Reason: streams.DropLate}]; got != 1 {
		t.Errorf("late records dropped = %d, want 1 (metrics %v)", got, d.Metrics().Dropped)
	}
}
