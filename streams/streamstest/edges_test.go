package streamstest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// stoppingTB records a Fatalf instead of failing the real test and stops
// the caller as Fatalf would, so a test can check what the driver refuses
// and with which message.
type stoppingTB struct {
	testing.TB
	msg string
}

func (f *stoppingTB) Helper() {}

func (f *stoppingTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f) // recovered by refused
}

// refused runs fn with a recording TB (for the driver it creates) and
// returns the Fatalf message, or "" if fn returned normally.
func refused(t *testing.T, fn func(tb testing.TB)) (msg string) {
	t.Helper()
	f := &stoppingTB{TB: t}
	defer func() {
		if r := recover(); r != nil {
			if r != f {
				panic(r)
			}
			msg = f.msg
		}
	}()
	fn(f)
	return ""
}

func countTopology(t *testing.T) *streams.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.String()).
		GroupByKey().
		Count(dsl.Named("count")).
		ToStream().
		To("counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestUnknownInputTopicRefused(t *testing.T) {
	topo := countTopology(t)
	msg := refused(t, func(tb testing.TB) {
		streamstest.CreateInputTopic(streamstest.New(tb, topo), "order", serde.String(), serde.String())
	})
	for _, want := range []string{`reads no topic "order"`, `"orders"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("piping into an unknown topic: message %q lacks %q", msg, want)
		}
	}
	// The sink's topic is written, not read: piping into it is refused too.
	if msg := refused(t, func(tb testing.TB) {
		streamstest.CreateInputTopic(streamstest.New(tb, topo), "counts", serde.String(), serde.String())
	}); !strings.Contains(msg, `reads no topic "counts"`) {
		t.Errorf("piping into the output topic: got %q", msg)
	}
	if msg := refused(t, func(tb testing.TB) {
		streamstest.CreateInputTopic(streamstest.New(tb, topo), "orders", serde.String(), serde.String())
	}); msg != "" {
		t.Errorf("the source topic was refused: %q", msg)
	}
}

func TestUnknownOutputTopicRefused(t *testing.T) {
	topo := countTopology(t)
	app := streamstest.ApplicationID("app")
	msg := refused(t, func(tb testing.TB) {
		streamstest.CreateOutputTopic(streamstest.New(tb, topo, app), "count", serde.String(), serde.Int64())
	})
	if strings.Count(msg, "streamstest:") != 1 {
		t.Errorf("message %q repeats its prefix", msg)
	}
	for _, want := range []string{`writes no topic "count"`, `"counts"`, `"orders"`, `"app-count-store-changelog"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("reading an unknown topic: message %q lacks %q", msg, want)
		}
	}
	for _, ok := range []string{"counts", "orders", "app-count-store-changelog"} {
		if msg := refused(t, func(tb testing.TB) {
			streamstest.CreateOutputTopic(streamstest.New(tb, topo, app), ok, serde.String(), serde.Int64())
		}); msg != "" {
			t.Errorf("topic %q refused: %q", ok, msg)
		}
	}
}

func TestOutputTopicChosenPerRecordAllowed(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "in", serde.String(), serde.String()).
		ToFunc(func(k, v string) string { return "out-" + k })
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	streamstest.CreateInputTopic(d, "in", serde.String(), serde.String()).Pipe("a", "x")
	out := streamstest.CreateOutputTopic(d, "out-a", serde.String(), serde.String())
	if got := out.ReadKeyValues(); len(got) != 1 || got[0].Value != "x" {
		t.Errorf("out-a = %v, want one record a:x", got)
	}
}

func TestMetricsDropsAreTyped(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.String()).
		GroupByKey().
		WindowedBy(dsl.TumblingWindows(time.Minute)).
		Count(dsl.Named("count"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.String())
	in.PipeAt("k", "a", time.Unix(120, 0))
	in.PipeAt("k", "late", time.Unix(10, 0)) // window [0, 60s) closed at 60s + no grace
	m := d.Metrics()
	late := streams.Drop{Node: "count", Reason: streams.DropLate}
	if m.Dropped[late] != 1 || m.DroppedTotal() != 1 {
		t.Errorf("dropped = %v, want %v: 1", m.Dropped, late)
	}
	if m.Processed != 2 {
		t.Errorf("processed = %d, want 2", m.Processed)
	}
}
