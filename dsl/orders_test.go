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

type Order struct {
	ID     string
	Amount int64
}

func at(min, sec int) time.Time { return time.UnixMilli(int64(min*60+sec) * 1000) }

type windowCount struct {
	Key   string
	Start int64 // seconds
	Count int64
}

func readCounts(t *testing.T, out *streamstest.OutputTopic[dsl.Windowed[string], int64]) []windowCount {
	t.Helper()
	var got []windowCount
	for _, kv := range out.ReadKeyValues() {
		if d := kv.Key.Window.End.Sub(kv.Key.Window.Start); d != time.Minute {
			t.Fatalf("window %v is %v long, want 1m", kv.Key.Window, d)
		}
		got = append(got, windowCount{Key: kv.Key.Key, Start: kv.Key.Window.Start.Unix(), Count: kv.Value})
	}
	return got
}

// The program every new user writes first: orders per customer per minute,
// with every update, and with the final count per window only.
func TestOrdersPerMinute(t *testing.T) {
	b := dsl.NewBuilder()
	orders := dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]())
	counts := orders.GroupByKey().
		WindowedBy(dsl.TumblingWindows(time.Minute).Grace(10 * time.Second)).
		Count(dsl.Named("count"))
	counts.ToStream().To("order-counts-per-minute")
	counts.Suppress(dsl.UntilWindowCloses()).ToStream().To("final-order-counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}

	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	wkey := dsl.WindowedSerde(serde.String(), time.Minute)
	updates := streamstest.CreateOutputTopic(d, "order-counts-per-minute", wkey, serde.Int64())
	finals := streamstest.CreateOutputTopic(d, "final-order-counts", wkey, serde.Int64())

	in.PipeAt("alice", Order{ID: "o1"}, at(0, 0))
	in.PipeAt("alice", Order{ID: "o2"}, at(0, 30))
	in.PipeAt("alice", Order{ID: "o3"}, at(1, 5)) // stream time 65s
	// Out of order but within grace: window [0,60) closes at 70s.
	in.PipeAt("alice", Order{ID: "o4"}, at(0, 55))
	in.PipeAt("alice", Order{ID: "o5"}, at(1, 15)) // stream time 75s: [0,60) closed
	// Late: its window closed at 70s.
	in.PipeAt("alice", Order{ID: "o6"}, at(0, 40))
	in.PipeAt("bob", Order{ID: "o7"}, at(1, 20))

	wantUpdates := []windowCount{
		{"alice", 0, 1}, {"alice", 0, 2}, {"alice", 60, 1}, {"alice", 0, 3}, {"alice", 60, 2}, {"bob", 60, 1},
	}
	if diff := cmp.Diff(wantUpdates, readCounts(t, updates)); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]windowCount{{"alice", 0, 3}}, readCounts(t, finals)); diff != "" {
		t.Errorf("final counts after the first window closed (-want +got):\n%s", diff)
	}
	if got := d.Metrics().Dropped[streams.Drop{Node: "count", Reason: streams.DropLate}]; got != 1 {
		t.Errorf("late records dropped = %d, want 1 (metrics %v)", got, d.Metrics().Dropped)
	}

	// The window store is queryable by name. (Windows expire from it once
	// stream time passes their start plus retention = size + grace.)
	ws := streamstest.GetWindowStore(d, counts.StoreName(), serde.String(), serde.Int64())
	got, err := ws.Fetch("alice", 0, 200_000)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]streamstest.WindowValue[int64]{{Start: 0, Value: 3}, {Start: 60_000, Value: 2}}, got); diff != "" {
		t.Errorf("window store (-want +got):\n%s", diff)
	}

	// Moving stream time past 120s+10s closes the second window.
	in.PipeAt("carol", Order{ID: "o8"}, at(2, 10))
	if diff := cmp.Diff([]windowCount{{"alice", 60, 2}, {"bob", 60, 1}}, readCounts(t, finals)); diff != "" {
		t.Errorf("final counts after the second window closed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]windowCount{{"carol", 120, 1}}, readCounts(t, updates)); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
}
