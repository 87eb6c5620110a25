package runtime_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// tickingGlobal is a global store's processor whose wall-clock punctuator
// reports each firing on ticks.
type tickingGlobal struct {
	ticks chan<- time.Time
}

func (p *tickingGlobal) Init(ctx streams.ProcessorContext[string, string]) error {
	_, err := ctx.Schedule(50*time.Millisecond, streams.WallClockTime, func(ts time.Time) error {
		select {
		case p.ticks <- ts:
		default: // the test has seen enough
		}
		return nil
	})
	return err
}

func (p *tickingGlobal) Process(streams.Record[string, string]) error { return nil }
func (p *tickingGlobal) Close() error                                 { return nil }

// TestGlobalWallClockPunctuator: a global store's processor schedules a
// wall-clock punctuator; the instance fires it as time passes, with no
// record arriving on the global topic, at increasing times.
func TestGlobalWallClockPunctuator(t *testing.T) {
	c := newWeir(t, 1)
	createGlobalTopics(t, c)
	ticks := make(chan time.Time, 16)
	topo := streams.NewTopology()
	streams.AddSource(topo, "customers", serde.String(), serde.String(), []string{gtCustomers})
	streams.AddProcessor(topo, "ticking", func() streams.Processor[string, string, string, string] {
		return &tickingGlobal{ticks: ticks}
	}, "customers")
	topo.AddStore(streams.StoreSpec{Spec: state.Spec{Name: "ticking-store", Kind: state.KindKeyValue},
		SourceTopic: gtCustomers, Global: true}, "ticking")
	streams.AddSource(topo, "orders", serde.String(), serde.String(), []string{gtOrders})
	streams.AddSink(topo, "out", gtOut, serde.String(), serde.String(), []string{"orders"})
	dir := t.TempDir()
	a, err := runtime.New(topo,
		runtime.ApplicationID("gp-app"),
		runtime.Brokers(c.addrs...),
		runtime.StateDir(dir),
		runtime.CommitInterval(200*time.Millisecond),
		runtime.SessionTimeout(c.session),
		runtime.Logger(quietLogger().With("instance", filepath.Base(dir))),
	)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{app: a, done: make(chan error, 1)}
	go func() { in.done <- a.Run(context.Background()) }()
	t.Cleanup(func() { _ = a.Close() })

	deadline := time.After(20 * time.Second)
	var seen []time.Time
	for len(seen) < 3 {
		select {
		case ts := <-ticks:
			if n := len(seen); n > 0 && !ts.After(seen[n-1]) {
				t.Fatalf("punctuator fired at %v after %v", ts, seen[n-1])
			}
			seen = append(seen, ts)
		case err := <-in.done:
			t.Fatalf("instance stopped: %v", err)
		case <-deadline:
			t.Fatalf("the global store's wall-clock punctuator fired %d times in 20s, want 3", len(seen))
		}
	}
	in.stop(t)
}
