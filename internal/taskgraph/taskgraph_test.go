package taskgraph_test

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/taskgraph"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// A source decodes the string key and value of a Stable record without
// copying them, and copies those of any other record.
func TestSourceAliasesOnlyStableRecords(t *testing.T) {
	topo := streams.NewTopology()
	streams.AddSource(topo, "src", serde.String(), serde.String(), []string{"in"})
	var got streams.Record[string, string]
	streams.AddProcessor(topo, "keep", streams.ProcessorFunc[string, string, string, string](
		func(_ streams.ProcessorContext[string, string], r streams.Record[string, string]) error {
			got = r
			return nil
		}).Supplier(), "src")
	if err := topo.Build(); err != nil {
		t.Fatal(err)
	}
	g, err := taskgraph.New(topo, 0)
	if err != nil {
		t.Fatal(err)
	}
	src, ok := g.Source("in")
	if !ok {
		t.Fatal("no source for topic in")
	}
	for _, stable := range []bool{false, true} {
		raw := &streams.RawRecord{Topic: "in", Stable: stable, Key: []byte("the-key"), Value: []byte("the-value")}
		if err := src.Process(raw); err != nil {
			t.Fatal(err)
		}
		if got.Key != "the-key" || got.Value != "the-value" {
			t.Fatalf("stable %v: got %q=%q", stable, got.Key, got.Value)
		}
		shares := unsafe.StringData(got.Key) == &raw.Key[0] && unsafe.StringData(got.Value) == &raw.Value[0]
		copies := unsafe.StringData(got.Key) != &raw.Key[0] && unsafe.StringData(got.Value) != &raw.Value[0]
		if stable && !shares || !stable && !copies {
			t.Errorf("stable %v: key and value share the record's bytes: %v, copy them: %v", stable, shares, copies)
		}
	}
}

// A ProcessorFunc node forwards through the context it is given and its
// errors name the node, like any processor's.
func TestProcessorFuncForwardsAndNamesItsErrors(t *testing.T) {
	topo := streams.NewTopology()
	streams.AddSource(topo, "src", serde.String(), serde.String(), []string{"in"})
	streams.AddProcessor(topo, "upper", streams.ProcessorFunc[string, string, string, string](
		func(ctx streams.ProcessorContext[string, string], r streams.Record[string, string]) error {
			if r.Value == "bad" {
				return errors.New("refused")
			}
			return ctx.Forward(streams.WithValue(r, strings.ToUpper(r.Value)))
		}).Supplier(), "src")
	var got []string
	streams.AddProcessor(topo, "keep", streams.ProcessorFunc[string, string, string, string](
		func(_ streams.ProcessorContext[string, string], r streams.Record[string, string]) error {
			got = append(got, r.Key+"="+r.Value)
			return nil
		}).Supplier(), "upper")
	if err := topo.Build(); err != nil {
		t.Fatal(err)
	}
	g, err := taskgraph.New(topo, 0)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := g.Source("in")
	if err := src.Process(&streams.RawRecord{Topic: "in", Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	err = src.Process(&streams.RawRecord{Topic: "in", Key: []byte("k"), Value: []byte("bad")})
	var ne *streams.NodeError
	if !errors.As(err, &ne) || ne.Node != "upper" || ne.Err.Error() != "refused" {
		t.Errorf("error %v, want node upper's refusal", err)
	}
	if diff := cmp.Diff([]string{"k=V"}, got); diff != "" {
		t.Errorf("forwarded (-want +got):\n%s", diff)
	}
}
