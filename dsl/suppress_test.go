package dsl_test

import (
	"cmp"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams/streamstest"
)

// A restart in the middle of a window loses nothing the suppress buffer
// held: each window's final count comes out once, after restarts before and
// after the window closes, over 2 input partitions.
func TestSuppressSurvivesRestart(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]()).GroupByKey().
		WindowedBy(dsl.TumblingWindows(time.Minute).Grace(10*time.Second)).
		Count(dsl.Named("count")).
		Suppress(dsl.UntilWindowCloses(), dsl.Named("final")).
		ToStream().To("final-order-counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, commitEvery := range []int{1, 3} {
		d := streamstest.New(t, topo, streamstest.DefaultPartitions(2), streamstest.CommitEvery(commitEvery))
		in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
		finals := streamstest.CreateOutputTopic(d, "final-order-counts", dsl.WindowedSerde(serde.String(), time.Minute), serde.Int64())

		// Every customer orders in minute 0; alice and bob never again.
		for _, c := range []string{"alice", "bob", "carol", "dave"} {
			in.PipeAt(c, Order{ID: c + "-1"}, at(0, 5))
			in.PipeAt(c, Order{ID: c + "-2"}, at(0, 20))
		}
		d.Commit()
		d.Restart()
		if !finals.IsEmpty() {
			t.Fatalf("commit every %d: a final count before any window closed: %v", commitEvery, readCounts(t, finals))
		}
		// carol and dave order again in minute 0, then in minute 1 until
		// minute 0 closes (1:10 on each partition).
		for _, c := range []string{"carol", "dave"} {
			in.PipeAt(c, Order{ID: c + "-3"}, at(0, 40))
		}
		d.Commit()
		d.Restart()
		for _, c := range []string{"alice", "bob", "carol", "dave"} {
			in.PipeAt(c, Order{ID: c + "-4"}, at(1, 15))
		}
		d.Commit()
		got := readCounts(t, finals)
		want := []windowCount{{"alice", 0, 2}, {"bob", 0, 2}, {"carol", 0, 3}, {"dave", 0, 3}}
		if diff := gocmp.Diff(want, sortCounts(got)); diff != "" {
			t.Fatalf("commit every %d: final counts of minute 0 (-want +got):\n%s", commitEvery, diff)
		}
		// Emitted finals leave the buffer for good: a restart brings none
		// back, and minute 1 closes once.
		d.Restart()
		in.PipeAt("alice", Order{ID: "alice-5"}, at(3, 0))
		in.PipeAt("bob", Order{ID: "bob-5"}, at(3, 0))
		d.Commit()
		got = readCounts(t, finals)
		want = []windowCount{{"alice", 60, 1}, {"bob", 60, 1}, {"carol", 60, 1}, {"dave", 60, 1}}
		if diff := gocmp.Diff(want, sortCounts(got)); diff != "" {
			t.Fatalf("commit every %d: final counts after minute 1 (-want +got):\n%s", commitEvery, diff)
		}
	}
}

// sortCounts orders counts by window, then key (partitions interleave).
func sortCounts(cs []windowCount) []windowCount {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b windowCount) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

// The suppress buffer's changelog is one of the application's internal
// topics.
func TestSuppressBufferIsLogged(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "in", serde.String(), serde.String()).GroupByKey().
		WindowedBy(dsl.TumblingWindows(time.Minute)).Count().
		Suppress(dsl.UntilWindowCloses(), dsl.StoreName("pending-finals")).ToStream().To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	spec, ok := topo.Store("pending-finals")
	if !ok || spec.Unlogged {
		t.Fatalf("store pending-finals = %+v, %v; want a logged store", spec, ok)
	}
	d := streamstest.New(t, topo)
	streamstest.CreateInputTopic(d, "in", serde.String(), serde.String()).PipeAt("k", "v", time.UnixMilli(1))
	changelog := "streamstest-pending-finals-changelog"
	if !slices.Contains(d.Topics(), changelog) {
		t.Fatalf("topics %v lack %s", d.Topics(), changelog)
	}
}
