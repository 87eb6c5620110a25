package dsl_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// exampleTB stands in for the *testing.T a test passes to
// streamstest.New: an Example function has none. The driver calls only
// Helper, Cleanup and Fatalf.
type exampleTB struct {
	testing.TB // nil: the methods below are all the driver uses
	cleanups   []func()
}

func (*exampleTB) Helper()                        {}
func (tb *exampleTB) Cleanup(f func())            { tb.cleanups = append(tb.cleanups, f) }
func (*exampleTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// done runs the cleanups, last first, as a test's end would.
func (tb *exampleTB) done() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}

// Orders per customer per minute, each window's count once, when the
// window closes: the program most applications start from. The topology
// runs in the test driver (streamstest), as it would in a go test.
func Example() {
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]()).
		GroupByKey().
		WindowedBy(dsl.TumblingWindows(time.Minute).Grace(10 * time.Second)).
		Count(dsl.Named("orders-per-minute")).
		Suppress(dsl.UntilWindowCloses()).
		ToStream().
		To("final-order-counts")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	tb := &exampleTB{} // in a test: t
	defer tb.done()
	d := streamstest.New(tb, topo)
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	out := streamstest.CreateOutputTopic(d, "final-order-counts",
		dsl.WindowedSerde(serde.String(), time.Minute), serde.Int64())

	t0 := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	in.PipeAt("alice", Order{ID: "o1", Amount: 1200}, t0.Add(5*time.Second))
	in.PipeAt("bob", Order{ID: "o2", Amount: 300}, t0.Add(20*time.Second))
	in.PipeAt("alice", Order{ID: "o3", Amount: 4500}, t0.Add(50*time.Second))
	in.PipeAt("alice", Order{ID: "o4", Amount: 800}, t0.Add(65*time.Second))
	in.PipeAt("bob", Order{ID: "o5", Amount: 150}, t0.Add(58*time.Second))  // out of order, within the grace
	in.PipeAt("bob", Order{ID: "o6", Amount: 990}, t0.Add(71*time.Second))  // stream time passes 09:01:10: 09:00 closes
	in.PipeAt("alice", Order{ID: "o7", Amount: 10}, t0.Add(30*time.Second)) // late: its window has closed

	for _, kv := range out.ReadKeyValues() {
		fmt.Printf("%s-%s %s: %d orders\n", kv.Key.Window.Start.UTC().Format("15:04"),
			kv.Key.Window.End.UTC().Format("15:04"), kv.Key.Key, kv.Value)
	}
	fmt.Println("late records dropped:", d.Metrics().Dropped[streams.Drop{Node: "orders-per-minute", Reason: streams.DropLate}])
	// Output:
	// 09:00-09:01 alice: 2 orders
	// 09:00-09:01 bob: 2 orders
	// late records dropped: 1
}

// Stateless operations keep or change the key and value types: methods
// (Filter) keep them, package functions (MapValues) change them.
func ExampleMapValues() {
	b := dsl.NewBuilder()
	orders := dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]())
	big := orders.Filter(func(_ string, o Order) bool { return o.Amount >= 1000 })
	dsl.MapValues(big, func(o Order) string { return fmt.Sprintf("%s: %d.%02d", o.ID, o.Amount/100, o.Amount%100) }).
		To("big-orders", dsl.ValueSerde(serde.String()))
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	tb := &exampleTB{}
	defer tb.done()
	d := streamstest.New(tb, topo)
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	out := streamstest.CreateOutputTopic(d, "big-orders", serde.String(), serde.String())
	in.Pipe("alice", Order{ID: "o1", Amount: 1250})
	in.Pipe("bob", Order{ID: "o2", Amount: 999})
	in.Pipe("carol", Order{ID: "o3", Amount: 100000})
	for _, kv := range out.ReadKeyValues() {
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// alice o1: 12.50
	// carol o3: 1000.00
}

// A stream-stream left join: each order with the payment of the same key
// (order id) that came within a minute of it, or, once that minute and
// the grace have passed in stream time, without one.
func ExampleLeftJoin() {
	type Payment struct{ Amount int64 }
	b := dsl.NewBuilder()
	orders := dsl.Stream(b, "orders-by-id", serde.String(), serde.Msgpack[Order]())
	payments := dsl.Stream(b, "payments", serde.String(), serde.Msgpack[Payment]())
	dsl.LeftJoin(orders, payments, func(o Order, p *Payment) string {
		if p == nil {
			return "unpaid"
		}
		return fmt.Sprintf("paid %d", p.Amount)
	}, dsl.JoinWindowsOf(time.Minute).Grace(5*time.Second), dsl.Named("order-payment")).
		To("order-payments", dsl.ValueSerde(serde.String()))
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	tb := &exampleTB{}
	defer tb.done()
	d := streamstest.New(tb, topo)
	o := streamstest.CreateInputTopic(d, "orders-by-id", serde.String(), serde.Msgpack[Order]())
	p := streamstest.CreateInputTopic(d, "payments", serde.String(), serde.Msgpack[Payment]())
	out := streamstest.CreateOutputTopic(d, "order-payments", serde.String(), serde.String())
	t0 := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	o.PipeAt("o1", Order{ID: "o1", Amount: 500}, t0)
	o.PipeAt("o2", Order{ID: "o2", Amount: 700}, t0.Add(time.Second))
	p.PipeAt("o1", Payment{Amount: 500}, t0.Add(20*time.Second))
	// Stream time passes 09:01:06, o2's window end plus the grace.
	o.PipeAt("o3", Order{ID: "o3", Amount: 900}, t0.Add(2*time.Minute))
	for _, kv := range out.ReadKeyValues() {
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// o1 paid 500
	// o2 unpaid
}

// Builder.Build compiles the program into a topology; Describe shows its
// sub-topologies, stores and internal topics. A key change (Map, SelectKey)
// before a grouping repartitions through an internal topic.
func ExampleBuilder_Build() {
	b := dsl.NewBuilder()
	orders := dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]())
	byID := dsl.SelectKey(orders, func(_ string, o Order) string { return o.ID }, dsl.Named("by-id"))
	byID.GroupByKey().Count(dsl.Named("orders-per-id")).ToStream().To("counts-per-id")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(topo.Describe())
	// Output:
	// Topology
	//   Sub-topology 0
	//     Source: source-0001 (topics: orders) <string, dsl_test.Order>
	//       --> by-id
	//     Processor: by-id <string, dsl_test.Order>
	//       --> group-by-key-0003-sink
	//       <-- source-0001
	//     Sink: group-by-key-0003-sink (topic: <application>-group-by-key-0003-repartition) <string, dsl_test.Order>
	//       <-- by-id
	//   Sub-topology 1
	//     Source: group-by-key-0003-source (topics: <application>-group-by-key-0003-repartition) <string, dsl_test.Order>
	//       --> orders-per-id
	//     Processor: orders-per-id (stores: orders-per-id-store) <string, dsl.Change[int64]>
	//       --> to-stream-0005
	//       <-- group-by-key-0003-source
	//     Processor: to-stream-0005 <string, int64>
	//       --> sink-0006
	//       <-- orders-per-id
	//     Sink: sink-0006 (topic: counts-per-id) <string, int64>
	//       <-- to-stream-0005
	//   Stores
	//     orders-per-id-store (key-value, changelog: <application>-orders-per-id-store-changelog)
	//   Internal topics
	//     group-by-key-0003-repartition (repartition, partitions: as upstream)
}
