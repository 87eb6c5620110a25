package dsl_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// perMinute counts each key's records per minute in a typed window store
// and forwards, for each record, the key's counts of the last three
// minutes.
type perMinute struct {
	handle dsl.WindowHandle[string, int64]
	ctx    streams.ProcessorContext[string, string]
	store  *state.TypedWindow[string, int64]
}

func (p *perMinute) Init(ctx streams.ProcessorContext[string, string]) (err error) {
	p.ctx = ctx
	p.store, err = p.handle.Open(ctx)
	return err
}

func (p *perMinute) Process(r streams.Record[string, string]) error {
	start := r.Timestamp.Truncate(time.Minute)
	n, _, err := p.store.Get(r.Key, start)
	if err != nil {
		return err
	}
	if err := p.store.Put(r.Key, start, n+1); err != nil {
		return err
	}
	var parts []string
	for e, err := range p.store.Fetch(r.Key, start.Add(-2*time.Minute), start) {
		if err != nil {
			return err
		}
		parts = append(parts, e.Start.UTC().Format("15:04")+"="+strconv.FormatInt(e.Value, 10))
	}
	return p.ctx.Forward(streams.WithValue(r, strings.Join(parts, " ")))
}

func (p *perMinute) Close() error { return nil }

func TestTypedWindowStoreInProcessor(t *testing.T) {
	b := dsl.NewBuilder()
	counts := dsl.WindowStore(b, "per-minute", serde.String(), serde.Int64(), time.Hour, dsl.InMemory())
	dsl.Process(dsl.Stream(b, "in", serde.String(), serde.String()),
		func() streams.Processor[string, string, string, string] { return &perMinute{handle: counts} },
		dsl.Stores(counts)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, m := range []time.Duration{0, 30 * time.Second, 1 * time.Minute, 3 * time.Minute, 3*time.Minute + time.Second} {
		in.PipeAt("k", "x", t0.Add(m))
	}
	got := streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String()).ReadKeyValues()
	want := []dsl.KeyValue[string, string]{
		{Key: "k", Value: "10:00=1"},
		{Key: "k", Value: "10:00=2"},
		{Key: "k", Value: "10:00=2 10:01=1"},
		{Key: "k", Value: "10:01=1 10:03=1"}, // 10:00 is outside [10:01, 10:03]
		{Key: "k", Value: "10:01=1 10:03=2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fetched windows (-want +got):\n%s", diff)
	}
	// The driver reads the same store.
	ws := streamstest.GetWindowStore(d, "per-minute", serde.String(), serde.Int64())
	vals, err := ws.Fetch("k", t0.UnixMilli(), t0.Add(time.Hour).UnixMilli())
	if err != nil || len(vals) != 3 {
		t.Errorf("driver's view: %v, %v; want 3 windows", vals, err)
	}
}

// sessions keeps per key the session [first, last] of records less than
// gap apart, in a typed session store, and forwards the session each
// record lands in.
type sessions struct {
	handle dsl.SessionHandle[string, int64]
	ctx    streams.ProcessorContext[string, string]
	store  *state.TypedSession[string, int64]
}

func (p *sessions) Init(ctx streams.ProcessorContext[string, string]) (err error) {
	p.ctx = ctx
	p.store, err = p.handle.Open(ctx)
	return err
}

func (p *sessions) Process(r streams.Record[string, string]) error {
	const gap = time.Minute
	start, end, n := r.Timestamp, r.Timestamp, int64(1)
	var merged []state.SessionEntry[string, int64]
	for e, err := range p.store.FindSessions(r.Key, r.Timestamp.Add(-gap), r.Timestamp.Add(gap)) {
		if err != nil {
			return err
		}
		merged = append(merged, e)
	}
	for _, e := range merged {
		if e.Start.Before(start) {
			start = e.Start
		}
		if e.End.After(end) {
			end = e.End
		}
		n += e.Value
		if err := p.store.Remove(r.Key, e.Start, e.End); err != nil {
			return err
		}
	}
	if err := p.store.Put(r.Key, start, end, n); err != nil {
		return err
	}
	v := start.UTC().Format("15:04:05") + "-" + end.UTC().Format("15:04:05") + " n=" + strconv.FormatInt(n, 10)
	return p.ctx.Forward(streams.WithValue(r, v))
}

func (p *sessions) Close() error { return nil }

func TestTypedSessionStoreInProcessor(t *testing.T) {
	b := dsl.NewBuilder()
	store := dsl.SessionStore(b, "sessions", serde.String(), serde.Int64(), time.Hour)
	dsl.Process(dsl.Stream(b, "in", serde.String(), serde.String()),
		func() streams.Processor[string, string, string, string] { return &sessions{handle: store} },
		dsl.Stores(store)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	in := streamstest.CreateInputTopic(d, "in", serde.String(), serde.String())
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, s := range []time.Duration{0, 40 * time.Second, 5 * time.Minute, 80 * time.Second} {
		in.PipeAt("k", "x", t0.Add(s))
	}
	got := streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String()).ReadKeyValues()
	want := []dsl.KeyValue[string, string]{
		{Key: "k", Value: "10:00:00-10:00:00 n=1"},
		{Key: "k", Value: "10:00:00-10:00:40 n=2"},
		{Key: "k", Value: "10:05:00-10:05:00 n=1"},
		{Key: "k", Value: "10:00:00-10:01:20 n=3"}, // within a minute of 10:00:40
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
}

// A processor opening a store it is not connected to gets an error naming
// the store; iteration stops where the loop breaks.
func TestTypedStoreNotConnected(t *testing.T) {
	b := dsl.NewBuilder()
	kv := dsl.KeyValueStore(b, "kv", serde.String(), serde.Int64())
	other := dsl.KeyValueStore(b, "other", serde.String(), serde.Int64())
	var openErr error
	dsl.Process(dsl.Stream(b, "in", serde.String(), serde.String()),
		func() streams.Processor[string, string, string, string] {
			return streams.ProcessorFunc[string, string, string, string](func(ctx streams.ProcessorContext[string, string], r streams.Record[string, string]) error {
				_, openErr = other.Open(ctx)
				return nil
			}).Supplier()()
		},
		dsl.Stores(kv)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	streamstest.CreateInputTopic(d, "in", serde.String(), serde.String()).Pipe("k", "v")
	if openErr == nil || !strings.Contains(openErr.Error(), `"other"`) {
		t.Errorf("opening an unconnected store: %v, want an error naming it", openErr)
	}
}
