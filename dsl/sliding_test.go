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

func TestSlidingWindowsCount(t *testing.T) {
	b := dsl.NewBuilder()
	counts := dsl.Stream(b, "in", serde.String(), serde.String()).
		GroupByKey().
		WindowedBySliding(dsl.SlidingWindowsOf(10 * time.Millisecond).Grace(100 * time.Millisecond)).
		Count(dsl.Named("sliding"))
	counts.ToStream().To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	out := streamstest.CreateOutputTopic(d, "out", dsl.WindowedSerde(serde.String(), 10*time.Millisecond), serde.Int64())
	type wc struct{ Start, End, Count int64 }
	read := func() []wc {
		var got []wc
		for _, kv := range out.ReadKeyValues() {
			got = append(got, wc{kv.Key.Window.Start.UnixMilli(), kv.Key.Window.End.UnixMilli(), kv.Value})
		}
		return got
	}
	in.PipeAt("k", "a", time.UnixMilli(20))
	if diff := cmp.Diff([]wc{{10, 20, 1}}, read()); diff != "" {
		t.Errorf("first record: its left window (-want +got):\n%s", diff)
	}
	in.PipeAt("k", "b", time.UnixMilli(25))
	// b's left window [15,25] holds a and b; a's right window [21,31]
	// now holds b.
	if diff := cmp.Diff([]wc{{15, 25, 2}, {21, 31, 1}}, read()); diff != "" {
		t.Errorf("second record (-want +got):\n%s", diff)
	}
	in.PipeAt("k", "c", time.UnixMilli(18)) // out of order
	// c's left window [8,18] holds c; a's left window [10,20] and b's left
	// window [15,25] gain c; c's right window [19,29] holds a and b.
	if diff := cmp.Diff([]wc{{8, 18, 1}, {10, 20, 2}, {15, 25, 3}, {19, 29, 2}}, read()); diff != "" {
		t.Errorf("out-of-order record (-want +got):\n%s", diff)
	}
	in.PipeAt("k", "d", time.UnixMilli(40)) // alone: more than 10 after b
	if diff := cmp.Diff([]wc{{30, 40, 1}}, read()); diff != "" {
		t.Errorf("lone record (-want +got):\n%s", diff)
	}
	in.PipeAt("k", "e", time.UnixMilli(500)) // stream time 500: windows up to 400 closed
	read()
	in.PipeAt("k", "late", time.UnixMilli(30))
	if got := read(); len(got) != 0 {
		t.Errorf("late record produced %v", got)
	}
	if n := d.Metrics().Dropped[streams.Drop{Node: "sliding", Reason: streams.DropLate}]; n != 1 {
		t.Errorf("late = %d, want 1", n)
	}
}
