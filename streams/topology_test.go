package streams_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

func pass[K, V any]() streams.ProcessorSupplier[K, V, K, V] {
	return streams.ProcessorFunc[K, V, K, V](func(ctx streams.ProcessorContext[K, V], r streams.Record[K, V]) error {
		return ctx.Forward(r)
	}).Supplier()
}

// buildErrors returns the TopologyErrors Build reports, as "node: problem".
func buildErrors(t *testing.T, topo *streams.Topology) []string {
	t.Helper()
	err := topo.Build()
	if err == nil {
		return nil
	}
	if !streams.IsInvalidTopology(err) {
		t.Fatalf("Build error %v does not match ErrInvalidTopology", err)
	}
	var out []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var te *streams.TopologyError
		if !errors.As(e, &te) {
			t.Fatalf("not a TopologyError: %v", e)
		}
		if te.Fix == "" {
			t.Errorf("error without a fix: %v", te)
		}
		out = append(out, te.Node+": "+te.Problem)
	}
	return out
}

func TestBuildValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(t *streams.Topology)
		want  []string
	}{
		{"missing serdes", func(t *streams.Topology) {
			streams.AddSource[string, string](t, "src", nil, serde.String(), []string{"in"})
			streams.AddSink[string, string](t, "sink", "out", serde.String(), nil, []string{"src"})
		}, []string{"src: source src has no key serde", "sink: sink sink has no value serde"}},
		{"unknown and duplicate stores", func(t *streams.Topology) {
			streams.AddSource(t, "src", serde.String(), serde.String(), []string{"in"})
			streams.AddProcessor(t, "p", pass[string, string](), "src")
			t.AddStore(streams.StoreSpec{Spec: state.Spec{Name: "s", Kind: state.KindKeyValue}}, "p")
			t.AddStore(streams.StoreSpec{Spec: state.Spec{Name: "s", Kind: state.KindKeyValue}}, "p")
			t.ConnectStores("p", "nope")
		}, []string{"s: duplicate store name", `p: connected to unknown store "nope"`}},
		{"read and written by one sub-topology", func(t *streams.Topology) {
			streams.AddSource(t, "src", serde.String(), serde.String(), []string{"loop"})
			streams.AddSink(t, "sink", "loop", serde.String(), serde.String(), []string{"src"})
		}, []string{`sink: sub-topology 0 both reads and writes topic "loop"`}},
		{"types and parents", func(t *streams.Topology) {
			streams.AddSource(t, "src", serde.String(), serde.String(), []string{"in"})
			streams.AddProcessor(t, "ints", pass[string, int64](), "src")
			streams.AddProcessor(t, "orphan", pass[string, string](), "ghost")
			streams.AddProcessor(t, "src", pass[string, string](), "src")
		}, []string{
			"src: duplicate node name",
			`ints: consumes (string, int64) but parent "src" emits (string, string)`,
			`orphan: unknown parent "ghost"`,
		}},
		{"co-partition group on unread topic", func(t *streams.Topology) {
			streams.AddSource(t, "src", serde.String(), serde.String(), []string{"in"})
			t.RequireCopartitioned("in", "other")
		}, []string{"other: co-partitioning requirement names a topic no source reads"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := streams.NewTopology()
			tc.build(topo)
			if diff := cmp.Diff(tc.want, buildErrors(t, topo)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func sampleTopology(t *testing.T) *streams.Topology {
	t.Helper()
	topo := streams.NewTopology()
	streams.AddSource(topo, "src", serde.String(), serde.String(), []string{"in"})
	streams.AddProcessor(topo, "rekey", pass[string, string](), "src")
	topo.AddInternalTopic(streams.InternalTopic{Name: "rk-repartition"})
	streams.AddSink(topo, "rk-sink", "rk-repartition", serde.String(), serde.String(), []string{"rekey"}, streams.ToInternal())
	streams.AddSource(topo, "rk-source", serde.String(), serde.String(), []string{"rk-repartition"}, streams.Internal())
	streams.AddProcessor(topo, "agg", pass[string, string](), "rk-source")
	topo.AddStore(streams.StoreSpec{Spec: state.Spec{Name: "agg-store", Kind: state.KindKeyValue}}, "agg")
	streams.AddSink(topo, "out", "result", serde.String(), serde.String(), []string{"agg"})
	if err := topo.Build(); err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestSubtopologiesAndDescribe(t *testing.T) {
	topo := sampleTopology(t)
	got := topo.Subtopologies()
	want := []streams.Subtopology{
		{ID: 0, Nodes: []string{"src", "rekey", "rk-sink"}, SourceTopics: []string{"in"}, SinkTopics: []string{"rk-repartition"}},
		{ID: 1, Nodes: []string{"rk-source", "agg", "out"}, Stores: []string{"agg-store"}, SourceTopics: []string{"rk-repartition"}, SinkTopics: []string{"result"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sub-topologies (-want +got):\n%s", diff)
	}
	wantText := `Topology
  Sub-topology 0
    Source: src (topics: in) <string, string>
      --> rekey
    Processor: rekey <string, string>
      --> rk-sink
      <-- src
    Sink: rk-sink (topic: <application>-rk-repartition) <string, string>
      <-- rekey
  Sub-topology 1
    Source: rk-source (topics: <application>-rk-repartition) <string, string>
      --> agg
    Processor: agg (stores: agg-store) <string, string>
      --> out
      <-- rk-source
    Sink: out (topic: result) <string, string>
      <-- agg
  Stores
    agg-store (key-value, changelog: <application>-agg-store-changelog)
  Internal topics
    rk-repartition (repartition, partitions: as upstream)
`
	if diff := cmp.Diff(wantText, topo.Describe()); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
	dot := topo.DescribeDOT()
	for _, want := range []string{"subgraph cluster_0", "subgraph cluster_1", `"src" -> "rekey"`, `"topic:in" -> "src"`, `"agg" -> "store:agg-store"`, `"out" -> "topic:result"`} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %q:\n%s", want, dot)
		}
	}
	mm := topo.DescribeMermaid()
	for _, want := range []string{"flowchart LR", `subgraph sub1["sub-topology 1"]`, `[("agg-store")]`} {
		if !strings.Contains(mm, want) {
			t.Errorf("Mermaid lacks %q:\n%s", want, mm)
		}
	}
	parts := topo.InternalTopicPartitions(func(string) int { return 6 })
	if diff := cmp.Diff(map[string]int{"rk-repartition": 6}, parts); diff != "" {
		t.Errorf("internal partitions (-want +got):\n%s", diff)
	}
}
