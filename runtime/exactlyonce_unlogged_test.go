package runtime_test

import (
	"strings"
	"testing"

	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

type noopProcessor struct{}

func (noopProcessor) Init(streams.ProcessorContext[string, string]) error { return nil }
func (noopProcessor) Process(streams.Record[string, string]) error        { return nil }
func (noopProcessor) Close() error                                        { return nil }

// unloggedTopology reads "in" into a processor connected to one store,
// Unlogged or not.
func unloggedTopology(unlogged bool) *streams.Topology {
	topo := streams.NewTopology()
	streams.AddSource(topo, "in", serde.String(), serde.String(), []string{"in"})
	streams.AddProcessor(topo, "p", func() streams.Processor[string, string, string, string] {
		return noopProcessor{}
	}, "in")
	topo.AddStore(streams.StoreSpec{Spec: state.Spec{Name: "scratch", Kind: state.KindKeyValue, Unlogged: unlogged}}, "p")
	return topo
}

// TestExactlyOnceRefusesUnloggedStore: New refuses an Unlogged store under
// ExactlyOnce, naming it (its writes reach Pebble before the transaction
// ends, so an abort could not undo them); the same topology is accepted
// without ExactlyOnce, and a logged store is accepted with it.
func TestExactlyOnceRefusesUnloggedStore(t *testing.T) {
	newApp := func(unlogged bool, opts ...runtime.Option) error {
		opts = append(opts, runtime.ApplicationID("eos-unlogged"), runtime.Brokers("127.0.0.1:1"),
			runtime.StateDir(t.TempDir()), runtime.Logger(quietLogger()))
		a, err := runtime.New(unloggedTopology(unlogged), opts...)
		if err == nil {
			_ = a.Close()
		}
		return err
	}
	err := newApp(true, runtime.ExactlyOnce())
	if err == nil || !strings.Contains(err.Error(), `store "scratch" is Unlogged`) || !strings.Contains(err.Error(), "ExactlyOnce") {
		t.Errorf("New(ExactlyOnce, Unlogged store scratch) = %v, want an error naming the store and ExactlyOnce", err)
	}
	if err := newApp(true); err != nil {
		t.Errorf("New(at-least-once, Unlogged store) = %v, want it accepted", err)
	}
	if err := newApp(false, runtime.ExactlyOnce()); err != nil {
		t.Errorf("New(ExactlyOnce, logged store) = %v, want it accepted", err)
	}
}
