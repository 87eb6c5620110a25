package dsl_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// The join tests replay the example of the Kafka Streams join semantics
// reference, record by record: every record has the same key, "null" is a
// tombstone (tables) or a record typed streams cannot carry (streams), and
// results are written "left - right".

type step struct {
	ts    int64
	left  bool
	value string // "" for null
}

var semanticsInput = []step{
	{1, true, ""}, {2, false, ""}, {3, true, "A"}, {4, false, "a"}, {5, true, "B"}, {6, false, "b"},
	{7, true, ""}, {8, false, ""}, {9, true, "C"}, {10, false, "c"}, {11, false, ""}, {12, true, ""},
	{13, false, ""}, {14, false, "d"}, {15, true, "D"},
}

type result struct {
	TS    int64
	Value string // "<tombstone>" for a deletion
}

func show(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

// runJoin builds a topology with build (reading "left" and "right",
// writing "out"), pipes steps and returns what "out" received. Null stream
// values are skipped when tables is false.
func runJoin(t *testing.T, steps []step, tables bool, build func(b *dsl.Builder)) []result {
	t.Helper()
	b := dsl.NewBuilder()
	build(b)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	left := streamstest.CreateInputTopic(d, "left", serde.String(), serde.String())
	right := streamstest.CreateInputTopic(d, "right", serde.String(), serde.String())
	out := streamstest.CreateOutputTopic(d, "out", serde.String(), dsl.NullableSerde(serde.String()))
	for _, s := range steps {
		in := right
		if s.left {
			in = left
		}
		ts := time.UnixMilli(s.ts)
		if s.value == "" {
			if !tables {
				continue
			}
			if err := in.PipeRaw([]byte("k"), nil, ts); err != nil {
				t.Fatal(err)
			}
			continue
		}
		in.PipeAt("k", s.value, ts)
	}
	var got []result
	for _, r := range out.ReadRecords() {
		v := "<tombstone>"
		if r.Value.Valid {
			v = r.Value.Value
		}
		got = append(got, result{TS: r.Timestamp.UnixMilli(), Value: v})
	}
	return got
}

func streamStreamProgram(kind string, w dsl.JoinWindows) func(b *dsl.Builder) {
	return func(b *dsl.Builder) {
		l := dsl.Stream(b, "left", serde.String(), serde.String())
		r := dsl.Stream(b, "right", serde.String(), serde.String())
		var j dsl.KStream[string, string]
		switch kind {
		case "inner":
			j = dsl.Join(l, r, func(a, b string) string { return a + " - " + b }, w)
		case "left":
			j = dsl.LeftJoin(l, r, func(a string, b *string) string { return a + " - " + show(b) }, w)
		case "outer":
			j = dsl.OuterJoin(l, r, func(a, b *string) string { return show(a) + " - " + show(b) }, w)
		}
		dsl.MapValues(j, func(v string) dsl.Nullable[string] { return dsl.Some(v) }).To("out", dsl.ValueSerde(dsl.NullableSerde(serde.String())))
	}
}

func TestStreamStreamJoinSemantics(t *testing.T) {
	// All records fall in one window: every pair joins, for all three kinds.
	all := []result{
		{4, "A - a"}, {5, "B - a"}, {6, "A - b"}, {6, "B - b"}, {9, "C - a"}, {9, "C - b"},
		{10, "A - c"}, {10, "B - c"}, {10, "C - c"}, {14, "A - d"}, {14, "B - d"}, {14, "C - d"},
		{15, "D - a"}, {15, "D - b"}, {15, "D - c"}, {15, "D - d"},
	}
	// Then, with a 10ms window: unmatched records are emitted once their
	// window has closed, never before (no spurious left/outer results).
	later := []step{{40, true, "E"}, {60, true, "F"}, {80, false, "f"}, {100, true, "G"}}
	for _, tc := range []struct {
		kind  string
		later []result
	}{
		{"inner", nil},
		{"left", []result{{40, "E - null"}, {60, "F - null"}}},
		{"outer", []result{{40, "E - null"}, {60, "F - null"}, {80, "null - f"}}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			got := runJoin(t, semanticsInput, false, streamStreamProgram(tc.kind, dsl.JoinWindowsOf(100*time.Millisecond)))
			if diff := cmp.Diff(all, got); diff != "" {
				t.Errorf("one window (-want +got):\n%s", diff)
			}
			got = runJoin(t, later, false, streamStreamProgram(tc.kind, dsl.JoinWindowsOf(10*time.Millisecond)))
			if diff := cmp.Diff(tc.later, got); diff != "" {
				t.Errorf("closing windows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStreamStreamJoinerMayKeepPointers: the pointers LeftJoin's and
// OuterJoin's joiners are given stay theirs. The join reuses one variable
// per side for the values of Join's joiner (and LeftJoin's left value),
// which copy them; a pointer a joiner sees must not be such a variable, or
// a joiner that keeps it would see it change under it with the next match.
func TestStreamStreamJoinerMayKeepPointers(t *testing.T) {
	for _, kind := range []string{"left", "outer"} {
		t.Run(kind, func(t *testing.T) {
			type kept struct{ l, r *string }
			var all []kept
			var said []string
			got := runJoin(t, semanticsInput, false, func(b *dsl.Builder) {
				l := dsl.Stream(b, "left", serde.String(), serde.String())
				r := dsl.Stream(b, "right", serde.String(), serde.String())
				join := func(a, b *string) string {
					all = append(all, kept{a, b})
					v := show(a) + " - " + show(b)
					said = append(said, v)
					return v
				}
				var j dsl.KStream[string, string]
				if kind == "left" {
					j = dsl.LeftJoin(l, r, func(a string, b *string) string { return join(&a, b) }, dsl.JoinWindowsOf(100*time.Millisecond))
				} else {
					j = dsl.OuterJoin(l, r, join, dsl.JoinWindowsOf(100*time.Millisecond))
				}
				dsl.MapValues(j, func(v string) dsl.Nullable[string] { return dsl.Some(v) }).To("out", dsl.ValueSerde(dsl.NullableSerde(serde.String())))
			})
			if len(got) == 0 || len(all) != len(said) {
				t.Fatalf("%d results, %d joiner calls", len(got), len(all))
			}
			for i, k := range all {
				if now := show(k.l) + " - " + show(k.r); now != said[i] {
					t.Errorf("joiner call %d was given %q; its pointers now say %q", i, said[i], now)
				}
			}
		})
	}
}

func TestStreamStreamJoinAsymmetricWindowAndGrace(t *testing.T) {
	// Left joins right records up to 5ms before and 0ms after it; records
	// later than window end + grace are dropped and counted.
	b := dsl.NewBuilder()
	l := dsl.Stream(b, "left", serde.String(), serde.String())
	r := dsl.Stream(b, "right", serde.String(), serde.String())
	dsl.Join(l, r, func(a, b string) string { return a + b }, dsl.JoinWindowsOf(0).Before(5*time.Millisecond).Grace(2*time.Millisecond), dsl.Named("j")).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := streamstest.New(t, topo)
	li := streamstest.CreateInputTopic(d, "left", serde.String(), serde.String())
	ri := streamstest.CreateInputTopic(d, "right", serde.String(), serde.String())
	out := streamstest.CreateOutputTopic(d, "out", serde.String(), serde.String())
	ri.PipeAt("k", "a", time.UnixMilli(10))
	li.PipeAt("k", "X", time.UnixMilli(12)) // a is 2ms before X: joins
	li.PipeAt("k", "Y", time.UnixMilli(16)) // a is 6ms before Y: no
	ri.PipeAt("k", "b", time.UnixMilli(17)) // b is after X and Y: no
	li.PipeAt("k", "Z", time.UnixMilli(20)) // b is 3ms before Z: joins
	ri.PipeAt("k", "c", time.UnixMilli(9))  // stream time 20 > 9+5+2: late, dropped
	want := []dsl.KeyValue[string, string]{{Key: "k", Value: "Xa"}, {Key: "k", Value: "Zb"}}
	if diff := cmp.Diff(want, out.ReadKeyValues()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := d.Metrics().Dropped[streams.Drop{Node: "j-right", Reason: streams.DropLate}]; got != 1 {
		t.Errorf("late = %d, want 1 (%v)", got, d.Metrics().Dropped)
	}
}

func TestStreamTableJoinSemantics(t *testing.T) {
	for _, tc := range []struct {
		kind string
		want []result
	}{
		{"inner", []result{{5, "B - a"}, {15, "D - d"}}},
		{"left", []result{{3, "A - null"}, {5, "B - a"}, {9, "C - null"}, {15, "D - d"}}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			// Stream nulls cannot be typed; table tombstones are piped raw.
			steps := make([]step, 0, len(semanticsInput))
			for _, s := range semanticsInput {
				if s.left && s.value == "" {
					continue
				}
				steps = append(steps, s)
			}
			got := runJoin(t, steps, true, func(b *dsl.Builder) {
				s := dsl.Stream(b, "left", serde.String(), serde.String())
				tb := dsl.Table(b, "right", serde.String(), serde.String())
				var j dsl.KStream[string, string]
				if tc.kind == "inner" {
					j = dsl.JoinTable(s, tb, func(a, b string) string { return a + " - " + b })
				} else {
					j = dsl.LeftJoinTable(s, tb, func(a string, b *string) string { return a + " - " + show(b) })
				}
				dsl.MapValues(j, dsl.Some[string]).To("out", dsl.ValueSerde(dsl.NullableSerde(serde.String())))
			})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTableTableJoinSemantics(t *testing.T) {
	const tomb = "<tombstone>"
	for _, tc := range []struct {
		kind string
		want []result
	}{
		{"inner", []result{{4, "A - a"}, {5, "B - a"}, {6, "B - b"}, {7, tomb}, {10, "C - c"}, {11, tomb}, {15, "D - d"}}},
		{"left", []result{{3, "A - null"}, {4, "A - a"}, {5, "B - a"}, {6, "B - b"}, {7, tomb}, {9, "C - null"},
			{10, "C - c"}, {11, "C - null"}, {12, tomb}, {15, "D - d"}}},
		{"outer", []result{{3, "A - null"}, {4, "A - a"}, {5, "B - a"}, {6, "B - b"}, {7, "null - b"}, {8, tomb},
			{9, "C - null"}, {10, "C - c"}, {11, "C - null"}, {12, tomb}, {14, "null - d"}, {15, "D - d"}}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			got := runJoin(t, semanticsInput, true, func(b *dsl.Builder) {
				l := dsl.Table(b, "left", serde.String(), serde.String())
				r := dsl.Table(b, "right", serde.String(), serde.String())
				var j dsl.KTable[string, string]
				switch tc.kind {
				case "inner":
					j = dsl.JoinTables(l, r, func(a, b string) string { return a + " - " + b })
				case "left":
					j = dsl.LeftJoinTables(l, r, func(a string, b *string) string { return a + " - " + show(b) })
				case "outer":
					j = dsl.OuterJoinTables(l, r, func(a, b *string) string { return show(a) + " - " + show(b) })
				}
				j.To("out")
			})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestGlobalTableJoin(t *testing.T) {
	b := dsl.NewBuilder()
	orders := dsl.Stream(b, "orders", serde.String(), serde.String()) // key: order id, value: customer id
	customers := dsl.GlobalTable(b, "customers", serde.String(), serde.String())
	byCustomer := func(_ string, customer string) string { return customer }
	dsl.JoinGlobal(orders, customers, byCustomer, func(c, name string) string { return c + "=" + name }).To("inner")
	dsl.LeftJoinGlobal(orders, customers, byCustomer, func(c string, name *string) string { return c + "=" + show(name) }).To("left")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	// The global topic has 3 partitions and the stream 2: no co-partitioning
	// is needed.
	d := streamstest.New(t, topo, streamstest.Partitions("customers", 3), streamstest.Partitions("orders", 2))
	cust := streamstest.CreateInputTopic(d, "customers", serde.String(), serde.String())
	ord := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.String())
	inner := streamstest.CreateOutputTopic(d, "inner", serde.String(), serde.String())
	left := streamstest.CreateOutputTopic(d, "left", serde.String(), serde.String())
	for _, c := range []string{"c1", "c2", "c3", "c4"} {
		cust.Pipe(c, "name-"+c)
	}
	ord.Pipe("o1", "c3")
	ord.Pipe("o2", "c9")
	ord.Pipe("o3", "c1")
	if diff := cmp.Diff(map[string]string{"o1": "c3=name-c3", "o3": "c1=name-c1"}, streamstest.ReadKeyValuesToMap(inner)); diff != "" {
		t.Errorf("inner (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"o1": "c3=name-c3", "o2": "c9=null", "o3": "c1=name-c1"}, streamstest.ReadKeyValuesToMap(left)); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
}

func TestJoinRecordsCopartitioning(t *testing.T) {
	b := dsl.NewBuilder()
	l := dsl.Stream(b, "left", serde.String(), serde.String())
	r := dsl.Stream(b, "right", serde.String(), serde.String())
	dsl.Join(l, r, func(a, b string) string { return a + b }, dsl.JoinWindowsOf(time.Second)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"left", "right"}}, topo.CopartitionGroups()); diff != "" {
		t.Errorf("co-partition groups (-want +got):\n%s", diff)
	}
	err = topo.CheckCopartitioning(func(tp string) int { return map[string]int{"left": 4, "right": 3}[tp] })
	if !errors.Is(err, streams.ErrCopartitioning) {
		t.Fatalf("CheckCopartitioning(4 vs 3 partitions) = %v, want ErrCopartitioning", err)
	}
	if err := topo.CheckCopartitioning(func(string) int { return 4 }); err != nil {
		t.Errorf("CheckCopartitioning(4, 4) = %v", err)
	}
}
