package streamstest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// exampleTB stands in for the *testing.T a test passes to New: an Example
// function has none. The driver calls only Helper, Cleanup and Fatalf.
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

// countPerCustomer counts orders per customer (key) in the store
// "orders-per-customer" and writes every new count to "counts".
func countPerCustomer() *streams.Topology {
	b := dsl.NewBuilder()
	dsl.Stream(b, "orders", serde.String(), serde.Msgpack[Order]()).
		GroupByKey().
		Count(dsl.Named("orders-per-customer"), dsl.StoreName("orders-per-customer")).
		ToStream().
		To("counts")
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	return topo
}

// A test pipes records into input topics and reads what the topology wrote
// to output topics; each Pipe is processed, with everything it causes,
// before it returns. In a test, New takes the test's t and closes the
// driver when the test ends.
func Example() {
	tb := &exampleTB{} // in a test: t
	defer tb.done()
	d := streamstest.New(tb, countPerCustomer())
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order](),
		streamstest.AutoAdvance(time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC), time.Second))
	out := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.Int64())

	in.Pipe("alice", Order{ID: "o1"})
	in.Pipe("bob", Order{ID: "o2"})
	in.Pipe("alice", Order{ID: "o3"})
	for _, r := range out.ReadRecords() {
		fmt.Println(r.Timestamp.UTC().Format("15:04:05"), r.Key, r.Value)
	}
	fmt.Println("processed:", d.Metrics().Processed)
	// Output:
	// 09:00:00 alice 1
	// 09:00:01 bob 1
	// 09:00:02 alice 2
	// processed: 3
}

// GetKeyValueStore reads a table's store by name: a key is looked up in the
// task of its partition.
func ExampleGetKeyValueStore() {
	tb := &exampleTB{}
	defer tb.done()
	d := streamstest.New(tb, countPerCustomer(), streamstest.DefaultPartitions(4))
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	for i, c := range []string{"alice", "bob", "alice", "carol", "alice"} {
		in.Pipe(c, Order{ID: fmt.Sprintf("o%d", i+1)})
	}
	counts := streamstest.GetKeyValueStore(d, "orders-per-customer", serde.String(), serde.Int64())
	for _, c := range []string{"alice", "bob", "dave"} {
		n, ok, err := counts.Get(c)
		fmt.Println(c, n, ok, err)
	}
	// Output:
	// alice 3 true <nil>
	// bob 1 true <nil>
	// dave 0 false <nil>
}

// Restart drops the tasks and their stores as a crash would and starts
// them again: the stores come back from their changelog topics, and the
// counts go on from where they were.
func ExampleDriver_Restart() {
	tb := &exampleTB{}
	defer tb.done()
	d := streamstest.New(tb, countPerCustomer())
	in := streamstest.CreateInputTopic(d, "orders", serde.String(), serde.Msgpack[Order]())
	out := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.Int64())
	in.Pipe("alice", Order{ID: "o1"})
	in.Pipe("alice", Order{ID: "o2"})

	d.Restart()
	in.Pipe("alice", Order{ID: "o3"})
	for _, kv := range out.ReadKeyValues() {
		fmt.Println(kv.Key, kv.Value)
	}
	fmt.Println(d.Topics())
	// Output:
	// alice 1
	// alice 2
	// alice 3
	// [counts orders streamstest-orders-per-customer-changelog]
}
