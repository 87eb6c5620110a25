// Package orders is the orders-per-minute application's topology and data:
// orders keyed by customer id, counted per customer per one-minute tumbling
// window. The example program and the runtime's tests share it.
package orders

import (
	"time"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// Topic names.
const (
	// InputTopic carries orders, keyed by customer id.
	InputTopic = "orders"
	// UpdatesTopic carries every update of a window's count.
	UpdatesTopic = "order-counts-per-minute"
	// FinalTopic carries each window's count once, when the window closes.
	FinalTopic = "final-order-counts"
)

// CountStore is the window store holding the counts (key: customer id,
// value: int64), queryable through the runtime's query views.
const CountStore = "orders-per-minute-store"

// Window is the window size of Topology; Grace how long a window accepts
// out-of-order records after it ends (in stream time). The example program
// counts per smaller windows by default (see TopologyWith).
const (
	Window = time.Minute
	Grace  = 10 * time.Second
)

// Order is one order. Its key is the customer id.
type Order struct {
	ID     string
	Amount int64
}

// OrderSerde serializes orders (msgpack).
func OrderSerde() serde.Serde[Order] { return serde.Msgpack[Order]() }

// CountKeySerde serializes the windowed keys of Topology's output topics.
func CountKeySerde() serde.Serde[dsl.Windowed[string]] { return CountKeySerdeWith(Window) }

// CountKeySerdeWith serializes the windowed keys of the output topics of
// TopologyWith(window, ...).
func CountKeySerdeWith(window time.Duration) serde.Serde[dsl.Windowed[string]] {
	return dsl.WindowedSerde(serde.String(), window)
}

// Topology counts orders per customer per minute (Window, Grace). It
// writes every update to UpdatesTopic and, when finals is true, each
// window's final count to FinalTopic.
func Topology(finals bool) (*streams.Topology, error) { return TopologyWith(Window, Grace, finals) }

// TopologyWith is Topology with tumbling windows of size window that
// accept out-of-order orders for grace after they end.
func TopologyWith(window, grace time.Duration, finals bool) (*streams.Topology, error) {
	b := dsl.NewBuilder()
	in := dsl.Stream(b, InputTopic, serde.String(), OrderSerde())
	counts := in.GroupByKey().
		WindowedBy(dsl.TumblingWindows(window).Grace(grace)).
		Count(dsl.Named("orders-per-minute"), dsl.StoreName(CountStore))
	counts.ToStream().To(UpdatesTopic)
	if finals {
		counts.Suppress(dsl.UntilWindowCloses()).ToStream().To(FinalTopic)
	}
	return b.Build()
}

// WindowKey names one customer's window.
type WindowKey struct {
	Customer string
	Start    int64 // unix ms
}

// Of returns the window key of an order at ts.
func Of(customer string, ts time.Time) WindowKey {
	ms := ts.UnixMilli()
	return WindowKey{Customer: customer, Start: ms - ms%Window.Milliseconds()}
}
