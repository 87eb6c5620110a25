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

type sessionRow struct {
	Key        string
	Start, End int64
	Count      int64
	Deleted    bool
}

func TestSessionWindowsMerge(t *testing.T) {
	b := dsl.NewBuilder()
	sessions := dsl.Stream(b, "clicks", serde.String(), serde.String()).
		GroupByKey().
		WindowedBySession(dsl.SessionWindowsWithGap(10 * time.Millisecond).Grace(50 * time.Millisecond)).
		Count(dsl.Named("sessions"))
	dsl.ChangeStream(dsl.AsTable(sessions)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "clicks", serde.String(), serde.String())
	out := streamstest.CreateOutputTopic(d, "out", dsl.SessionWindowedSerde(serde.String()), dsl.NullableSerde(serde.Int64()))
	read := func() []sessionRow {
		var rows []sessionRow
		for _, r := range out.ReadRecords() {
			rows = append(rows, sessionRow{Key: r.Key.Key, Start: r.Key.Window.Start.UnixMilli(), End: r.Key.Window.End.UnixMilli(),
				Count: r.Value.Value, Deleted: !r.Value.Valid})
		}
		return rows
	}
	in.PipeAt("u", "x", time.UnixMilli(0))
	in.PipeAt("u", "x", time.UnixMilli(25)) // a second session: more than the gap apart
	in.PipeAt("u", "x", time.UnixMilli(5))  // extends the first session to [0,5]
	want := []sessionRow{
		{"u", 0, 0, 1, false},
		{"u", 25, 25, 1, false},
		{"u", 0, 0, 0, true}, {"u", 0, 5, 2, false},
	}
	if diff := cmp.Diff(want, read()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A record at 15 is within 10 of both 5 and 25: it bridges the two
	// sessions, which merge into [0,25] with count 4.
	in.PipeAt("u", "x", time.UnixMilli(15))
	want = []sessionRow{
		{"u", 0, 5, 0, true}, {"u", 25, 25, 0, true}, {"u", 0, 25, 4, false},
	}
	if diff := cmp.Diff(want, read()); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
	ss := streamstest.GetSessionStore(d, sessions.StoreName(), serde.String(), serde.Int64())
	got, err := ss.Fetch("u")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]streamstest.SessionValue[int64]{{Start: 0, End: 25, Value: 4}}, got); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
	// Stream time 100: a record at 35 would extend [0,25] to end at 35,
	// before 100 - grace: it is dropped.
	in.PipeAt("v", "x", time.UnixMilli(100))
	in.PipeAt("u", "x", time.UnixMilli(35))
	if diff := cmp.Diff([]sessionRow{{"v", 100, 100, 1, false}}, read()); diff != "" {
		t.Errorf("late (-want +got):\n%s", diff)
	}
	if got := d.Metrics().Dropped[streams.Drop{Node: "sessions", Reason: streams.DropLate}]; got != 1 {
		t.Errorf("late = %d, want 1", got)
	}
}

func TestHoppingWindowsCountEveryWindow(t *testing.T) {
	b := dsl.NewBuilder()
	counts := dsl.Stream(b, "in", serde.String(), serde.String()).
		GroupByKey().
		WindowedBy(dsl.HoppingWindows(10*time.Millisecond, 5*time.Millisecond).Grace(20 * time.Millisecond)).
		Count()
	counts.ToStream().To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	out := streamstest.CreateOutputTopic(d, "out", dsl.WindowedSerde(serde.String(), 10*time.Millisecond), serde.Int64())
	in.PipeAt("k", "a", time.UnixMilli(7))  // in [0,10) and [5,15)
	in.PipeAt("k", "b", time.UnixMilli(12)) // in [5,15) and [10,20)
	in.PipeAt("k", "c", time.UnixMilli(3))  // in [0,10) only (no window starts below 0)
	type wc struct {
		Start, End, Count int64
	}
	var got []wc
	for _, kv := range out.ReadKeyValues() {
		got = append(got, wc{kv.Key.Window.Start.UnixMilli(), kv.Key.Window.End.UnixMilli(), kv.Value})
	}
	want := []wc{{0, 10, 1}, {5, 15, 1}, {5, 15, 2}, {10, 20, 1}, {0, 10, 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
