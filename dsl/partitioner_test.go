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
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// byNumber puts "<n>:..." values in partition n mod the count, whatever the
// key.
func byNumber(topic, _ string, v string, n int) int {
	i, _ := strconv.Atoi(strings.SplitN(v, ":", 2)[0])
	return i % n
}

type placed struct {
	Key, Value string
	Partition  streams.Partition
}

func readPlaced(t *testing.T, out *streamstest.OutputTopic[string, string]) []placed {
	t.Helper()
	var got []placed
	for _, r := range out.ReadRecords() {
		got = append(got, placed{Key: r.Key, Value: r.Value, Partition: r.Partition})
	}
	return got
}

func TestSinkPartitioner(t *testing.T) {
	inputs := []kv{{Key: "a", Value: "0:x"}, {Key: "a", Value: "1:y"}, {Key: "a", Value: "2:z"}, {Key: "b", Value: "5:w"}}
	want := []placed{{"a", "0:x", 0}, {"a", "1:y", 1}, {"a", "2:z", 2}, {"b", "5:w", 2}}
	t.Run("To", func(t *testing.T) {
		b := dsl.NewBuilder()
		dsl.Stream(b, "in", serde.String(), serde.String()).To("out", dsl.Partitioner(byNumber))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d := streamstest.New(t, topo, streamstest.Partitions("out", 3))
		in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
		for _, r := range inputs {
			in.Pipe(r.Key, r.Value)
		}
		if diff := cmp.Diff(want, readPlaced(t, streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String()))); diff != "" {
			t.Fatalf("placement (-want +got):\n%s", diff)
		}
	})
	t.Run("ToFunc", func(t *testing.T) {
		// The partitioner sees the topic chosen for the record.
		var topics []string
		b := dsl.NewBuilder()
		dsl.Stream(b, "in", serde.String(), serde.String()).ToFunc(func(k, _ string) string { return "out-" + k },
			dsl.Partitioner(func(topic, k, v string, n int) int {
				topics = append(topics, topic)
				return byNumber(topic, k, v, n)
			}))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d := streamstest.New(t, topo, streamstest.Partitions("out-a", 3), streamstest.Partitions("out-b", 4))
		in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
		for _, r := range inputs {
			in.Pipe(r.Key, r.Value)
		}
		if diff := cmp.Diff(want[:3], readPlaced(t, streamstest.CreateOutputTopic(d, "out-a", serde.String(), serde.String()))); diff != "" {
			t.Fatalf("out-a placement (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]placed{{"b", "5:w", 1}}, readPlaced(t, streamstest.CreateOutputTopic(d, "out-b", serde.String(), serde.String()))); diff != "" {
			t.Fatalf("out-b placement (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"out-a", "out-a", "out-a", "out-b"}, topics); diff != "" {
			t.Fatalf("topics seen by the partitioner (-want +got):\n%s", diff)
		}
	})
	t.Run("WindowedTo", func(t *testing.T) {
		b := dsl.NewBuilder()
		dsl.Stream(b, "in", serde.String(), serde.String()).GroupByKey().
			WindowedBy(dsl.TumblingWindows(time.Minute)).Count().ToStream().
			To("out", dsl.Partitioner(func(_ string, k dsl.Windowed[string], n int64, parts int) int { return int(n) % parts }))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d := streamstest.New(t, topo, streamstest.Partitions("out", 2))
		in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
		for i := 0; i < 3; i++ {
			in.PipeAt("k", "v", time.UnixMilli(int64(i)))
		}
		out := streamstest.CreateOutputTopic(d, "out", dsl.WindowedSerde(serde.String(), time.Minute), serde.Int64())
		var parts []streams.Partition
		for _, r := range out.ReadRecords() {
			parts = append(parts, r.Partition)
		}
		if diff := cmp.Diff([]streams.Partition{1, 0, 1}, parts); diff != "" {
			t.Fatalf("partitions of counts 1, 2, 3 (-want +got):\n%s", diff)
		}
	})
}

func TestSinkPartitionerErrors(t *testing.T) {
	t.Run("wrong types", func(t *testing.T) {
		b := dsl.NewBuilder()
		dsl.Stream(b, "in", serde.String(), serde.String()).To("out", dsl.Named("sink"),
			dsl.Partitioner(func(string, int64, string, int) int { return 0 }))
		_, err := b.Build()
		var te *streams.TopologyError
		if !errors.As(err, &te) || te.Node != "sink" || !strings.Contains(te.Problem, "partitioner") {
			t.Fatalf("Build = %v; want a TopologyError on node sink about the partitioner", err)
		}
	})
	t.Run("out of range", func(t *testing.T) {
		b := dsl.NewBuilder()
		dsl.Stream(b, "in", serde.String(), serde.String()).To("out",
			dsl.Partitioner(func(_, _, _ string, n int) int { return n }))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d := streamstest.New(t, topo, streamstest.Partitions("out", 2))
		in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
		err = in.TryPipe("k", "v")
		var pe *streams.ProcessingError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "partition 2") {
			t.Fatalf("TryPipe = %v; want a ProcessingError naming partition 2", err)
		}
	})
}
