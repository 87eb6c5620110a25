package dsl_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// countTopology counts records per key into "counts".
func countTopology(t *testing.T) (*dsl.Builder, string) {
	t.Helper()
	b := dsl.NewBuilder()
	counts := dsl.Stream(b, "in", serde.String(), serde.String()).GroupByKey().Count(dsl.Named("count"))
	counts.ToStream().To("counts")
	return b, counts.StoreName()
}

// A key updated 1,000 times between two commits reaches downstream and the
// changelog once per commit, with its latest count.
func TestCachedCountForwardsOncePerCommit(t *testing.T) {
	b, store := countTopology(t)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	d := streamstest.New(t, topo, streamstest.CommitEvery(n))
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	out := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.Int64())
	changelog := streamstest.CreateOutputTopic(d, state.ChangelogTopicName("streamstest", store), serde.String(), serde.Int64())
	for commit := 1; commit <= 2; commit++ {
		for i := range n {
			if i == n-1 {
				if !out.IsEmpty() || !changelog.IsEmpty() {
					t.Fatalf("commit %d: output before the commit: %d records, changelog %d", commit, out.QueueSize(), changelog.QueueSize())
				}
			}
			in.PipeAt("k", "v", time.UnixMilli(int64((commit-1)*n+i)))
		}
		want := []dsl.KeyValue[string, int64]{{Key: "k", Value: int64(commit * n)}}
		if diff := cmp.Diff(want, out.ReadKeyValues()); diff != "" {
			t.Errorf("commit %d: downstream (-want +got):\n%s", commit, diff)
		}
		if diff := cmp.Diff(want, changelog.ReadKeyValues()); diff != "" {
			t.Errorf("commit %d: changelog (-want +got):\n%s", commit, diff)
		}
	}
}

// Without the cache (map stores) or with a commit after each record (the
// driver's default), every update is forwarded.
func TestUncachedCountForwardsEveryUpdate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []streamstest.Option
	}{
		{"map-stores", []streamstest.Option{streamstest.MapStores(), streamstest.CommitEvery(100)}},
		{"commit-each-record", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := countTopology(t)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d := streamstest.New(t, topo, tc.opts...)
			in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
			out := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.Int64())
			var want []dsl.KeyValue[string, int64]
			for i := range 100 {
				in.PipeAt("k", "v", time.UnixMilli(int64(i)))
				want = append(want, dsl.KeyValue[string, int64]{Key: "k", Value: int64(i + 1)})
			}
			if diff := cmp.Diff(want, out.ReadKeyValues()); diff != "" {
				t.Errorf("downstream (-want +got):\n%s", diff)
			}
		})
	}
}

// The orders-per-minute program with commits every 100 records: each
// window's latest count is forwarded once per commit, and the suppressed
// stream still gives exactly one final count per window.
func TestOrdersPerMinuteCommitEvery(t *testing.T) {
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
	d := streamstest.New(t, topo, streamstest.CommitEvery(100))
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	wkey := dsl.WindowedSerde(serde.String(), time.Minute)
	updates := streamstest.CreateOutputTopic(d, "order-counts-per-minute", wkey, serde.Int64())
	finals := streamstest.CreateOutputTopic(d, "final-order-counts", wkey, serde.Int64())

	in.PipeAt("alice", Order{ID: "o1"}, at(0, 0))
	in.PipeAt("alice", Order{ID: "o2"}, at(0, 30))
	d.Commit() // alice [0,60) = 2 reaches the suppress buffer
	if diff := cmp.Diff([]windowCount{{"alice", 0, 2}}, readCounts(t, updates)); diff != "" {
		t.Errorf("updates at the first commit (-want +got):\n%s", diff)
	}
	in.PipeAt("alice", Order{ID: "o3"}, at(1, 5))
	in.PipeAt("alice", Order{ID: "o4"}, at(0, 55)) // within grace
	in.PipeAt("alice", Order{ID: "o5"}, at(1, 15)) // stream time 75s: [0,60) closed
	in.PipeAt("alice", Order{ID: "o6"}, at(0, 40)) // late
	in.PipeAt("bob", Order{ID: "o7"}, at(1, 20))
	if !updates.IsEmpty() || !finals.IsEmpty() {
		t.Fatalf("output before the commit: %d updates, %d finals", updates.QueueSize(), finals.QueueSize())
	}
	d.Commit()
	// In the order of each window's last update.
	want := []windowCount{{"alice", 0, 3}, {"alice", 60, 2}, {"bob", 60, 1}}
	if diff := cmp.Diff(want, readCounts(t, updates)); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]windowCount{{"alice", 0, 3}}, readCounts(t, finals)); diff != "" {
		t.Errorf("final counts after the first window closed (-want +got):\n%s", diff)
	}
	if got := d.Metrics().Dropped[streams.Drop{Node: "count", Reason: streams.DropLate}]; got != 1 {
		t.Errorf("late records dropped = %d, want 1", got)
	}
	in.PipeAt("carol", Order{ID: "o8"}, at(2, 10))
	d.Commit()
	if diff := cmp.Diff([]windowCount{{"alice", 60, 2}, {"bob", 60, 1}}, readCounts(t, finals)); diff != "" {
		t.Errorf("final counts after the second window closed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]windowCount{{"carol", 120, 1}}, readCounts(t, updates)); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
}
