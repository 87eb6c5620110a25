package streamstest_test

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// countingTopology counts records per key in an uncached store (every
// update reaches its changelog at once) and forwards each new count to
// "counts": what a crash between two commits can duplicate.
func countingTopology(t *testing.T) *streams.Topology {
	t.Helper()
	topo := streams.NewTopology()
	streams.AddSource(topo, "in", serde.String(), serde.String(), []string{"in"})
	streams.AddProcessor(topo, "count", streams.ProcessorFunc[string, string, string, string](
		func(ctx streams.ProcessorContext[string, string], r streams.Record[string, string]) error {
			st, err := ctx.Store("counts")
			if err != nil {
				return err
			}
			kv := st.(state.KeyValueStore)
			old, err := kv.Get([]byte(r.Key))
			if err != nil {
				return err
			}
			n := 0
			if old != nil {
				n, _ = strconv.Atoi(string(old))
			}
			n++
			if err := kv.Put([]byte(r.Key), []byte(strconv.Itoa(n))); err != nil {
				return err
			}
			return ctx.Forward(streams.Record[string, string]{Key: r.Key, Value: strconv.Itoa(n), Timestamp: r.Timestamp})
		}).Supplier(), "in")
	topo.AddStore(streams.StoreSpec{Spec: state.Spec{Name: "counts", Kind: state.KindKeyValue, Uncached: true}}, "count")
	streams.AddSink(topo, "out", "counts", serde.String(), serde.String(), []string{"count"})
	if err := topo.Build(); err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestExactlyOnceRestart pipes five records for one key committing every
// two, restarts (a crash) with the fifth processed and not committed, and
// pipes one more. At-least-once, the fifth record's count was visible
// before the crash, its store write reached the changelog, so the restored
// store already counts it and processing it again counts it twice (6, then
// 7 for the sixth record). Under ExactlyOnce the fifth count is invisible
// until its commit, the crash aborts it (the count and the changelog
// record), and the output is 1..6 exactly.
func TestExactlyOnceRestart(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []streamstest.Option
		// before is what the output shows right before the restart;
		// want is the whole output at the end.
		before, want []string
	}{
		{"at-least-once", nil, []string{"1", "2", "3", "4", "5"}, []string{"1", "2", "3", "4", "5", "6", "7"}},
		{"exactly-once", []streamstest.Option{streamstest.ExactlyOnce()}, []string{"1", "2", "3", "4"}, []string{"1", "2", "3", "4", "5", "6"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := streamstest.New(t, countingTopology(t), append(c.opts, streamstest.CommitEvery(2))...)
			in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
			out := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.String())
			for range 5 {
				in.Pipe("a", "x")
			}
			var got []string
			for _, kv := range out.ReadKeyValues() {
				got = append(got, kv.Value)
			}
			if d := cmp.Diff(c.before, got); d != "" {
				t.Errorf("output before the restart (-want +got):\n%s", d)
			}
			d.Restart()
			in.Pipe("a", "x")
			d.Commit()
			for _, kv := range out.ReadKeyValues() {
				got = append(got, kv.Value)
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("output (-want +got):\n%s", d)
			}
		})
	}
}

// TestExactlyOnceAbort: Abort drops the open transaction's output and
// store writes and processes its input again, once.
func TestExactlyOnceAbort(t *testing.T) {
	d := streamstest.New(t, countingTopology(t), streamstest.ExactlyOnce(), streamstest.CommitEvery(10))
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	out := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.String())
	in.Pipe("a", "x")
	in.Pipe("b", "x")
	d.Commit()
	if got, want := out.ReadKeyValues(), []dsl.KeyValue[string, string]{{Key: "a", Value: "1"}, {Key: "b", Value: "1"}}; !cmp.Equal(want, got) {
		t.Fatalf("committed output %v, want %v", got, want)
	}
	in.Pipe("a", "x")
	if !out.IsEmpty() {
		t.Fatalf("output of the open transaction visible: %v", out.ReadKeyValues())
	}
	d.Abort()
	d.Abort() // nothing open: changes nothing
	in.Pipe("b", "x")
	d.Commit()
	got := streamstest.ReadKeyValuesToMap(out)
	want := map[string]string{"a": "2", "b": "2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("latest counts (-want +got):\n%s", diff)
	}
}
