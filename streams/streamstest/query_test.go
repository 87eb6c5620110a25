package streamstest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams/streamstest"
)

// TestQueryViews reads a key-value, a window and a session store through
// the typed query views the runtime also serves, across 4 partitions, and
// compares with counts kept by the test.
func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestQueryViews(t *testing.T) {
	b := dsl.NewBuilder()
	orders := dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]())
	orders.GroupByKey().Count(dsl.StoreName("per-customer"))
	orders.GroupByKey().WindowedBy(dsl.TumblingWindows(time.Minute).Grace(time.Hour)).Count(dsl.StoreName("per-minute"))
	orders.GroupByKey().WindowedBySession(dsl.SessionWindowsWithGap(time.Minute).Grace(time.Hour)).Count(dsl.StoreName("sessions"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, streamstest.DefaultPartitions(4))
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	want := map[string]int64{}
	perMinute := map[string]map[int64]int64{}
	base := time.UnixMilli(1_000_000_000_000)
	for i := range 40 {
		c := fmt.Sprintf("c%02d", i%13)
		at := base.Add(time.Duration(i) * 7 * time.Second)
		in.PipeAt(c, Order{ID: fmt.Sprint(i)}, at)
		want[c]++
		if perMinute[c] == nil {
			perMinute[c] = map[int64]int64{}
		}
		perMinute[c][at.UnixMilli()/60_000*60_000]++
	}
	ctx := context.Background()

	kv := streamstest.QueryKeyValue(d, "per-customer", serde.String(), serde.Int64())
	for c, n := range want {
		got, ok, err := kv.Get(ctx, c)
		if err != nil || !ok || got != n {
			t.Errorf("Get(%q) = %d, %v, %v; want %d", c, got, ok, err, n)
		}
	}
	if _, ok, err := kv.Get(ctx, "nobody"); ok || err != nil {
		t.Errorf("Get(nobody) = %v, %v", ok, err)
	}
	var all []string
	for e, err := range kv.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Value != want[e.Key] {
			t.Errorf("All: %s = %d, want %d", e.Key, e.Value, want[e.Key])
		}
		all = append(all, e.Key)
	}
	// All merges the four partitions in key order.
	var wantKeys []string
	for i := range 13 {
		wantKeys = append(wantKeys, fmt.Sprintf("c%02d", i))
	}
	if d := cmp.Diff(wantKeys, all); d != "" {
		t.Errorf("All keys (-want +got):\n%s", d)
	}
	var some []string
	for e, err := range kv.Range(ctx, "c03", "c06") {
		if err != nil {
			t.Fatal(err)
		}
		some = append(some, e.Key)
	}
	if d := cmp.Diff([]string{"c03", "c04", "c05"}, some); d != "" {
		t.Errorf("Range keys (-want +got):\n%s", d)
	}

	ws := streamstest.QueryWindow(d, "per-minute", serde.String(), serde.Int64())
	for c, byStart := range perMinute {
		got := map[int64]int64{}
		for e, err := range ws.Fetch(ctx, c, base.Add(-time.Hour), base.Add(time.Hour)) {
			if err != nil {
				t.Fatal(err)
			}
			got[e.Start.UnixMilli()] = e.Value
		}
		if d := cmp.Diff(byStart, got); d != "" {
			t.Errorf("windows of %s (-want +got):\n%s", c, d)
		}
	}

	// Records of one customer are 91 s apart: with a one-minute gap each
	// is a session of its own.
	ss := streamstest.QuerySession(d, "sessions", serde.String(), serde.Int64())
	n := 0
	for e, err := range ss.Fetch(ctx, "c00") {
		if err != nil {
			t.Fatal(err)
		}
		if e.Value != 1 || !e.Start.Equal(e.End) {
			t.Errorf("session %v..%v = %d, want a single record", e.Start, e.End, e.Value)
		}
		n++
	}
	if n != int(want["c00"]) {
		t.Errorf("%d sessions of c00, want %d", n, want["c00"])
	}

	// Bad input: an unknown store, and a view of the wrong kind.
	if _, _, err := streamstest.QueryKeyValue(d, "nope", serde.String(), serde.Int64()).Get(ctx, "a"); !errorsIs(err, state.ErrUnknownStore) {
		t.Errorf("unknown store: err %v", err)
	}
	if _, _, err := streamstest.QueryKeyValue(d, "per-minute", serde.String(), serde.Int64()).Get(ctx, "c00"); err == nil {
		t.Errorf("key-value view of a window store: no error")
	}
}

// TestQueryAllPages reads more keys than a view copies per read (256), so
// that All continues page after page in every partition and still yields
// each key once, in order.
func TestQueryAllPages(t *testing.T) {
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]()).GroupByKey().Count(dsl.StoreName("per-customer"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo, streamstest.DefaultPartitions(3))
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	const n = 1100
	for i := range n {
		in.Pipe(fmt.Sprintf("k%05d", i), Order{})
	}
	i := 0
	for e, err := range streamstest.QueryKeyValue(d, "per-customer", serde.String(), serde.Int64()).All(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("k%05d", i); e.Key != want || e.Value != 1 {
			t.Fatalf("entry %d: %s = %d, want %s = 1", i, e.Key, e.Value, want)
		}
		i++
	}
	if i != n {
		t.Fatalf("All yielded %d keys, want %d", i, n)
	}
}
