package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// Topics and window of the join workload.
const (
	joinOrdersTopic   = "join-orders"
	joinPaymentsTopic = "join-payments"
	joinOutputTopic   = "order-payments"
	joinWindow        = time.Minute
	// paymentDelay bounds how long after its order a payment comes.
	paymentDelay = 20 * time.Second
)

// payment pays one order; its key is the order id.
type payment struct {
	Amount int64
}

// paidOrder is the join's output: an order with its payment.
type paidOrder struct {
	OrderAmount   int64
	PaymentAmount int64
}

var (
	paymentSerde   = serde.Msgpack[payment]()
	paidOrderSerde = serde.Msgpack[paidOrder]()
)

// joinTopology joins orders with payments by order id within joinWindow,
// accepting records up to grace late.
func joinTopology(grace time.Duration) (*streams.Topology, error) {
	b := dsl.NewBuilder()
	os := dsl.Stream(b, joinOrdersTopic, serde.String(), orders.OrderSerde())
	ps := dsl.Stream(b, joinPaymentsTopic, serde.String(), paymentSerde)
	dsl.Join(os, ps, func(o orders.Order, p payment) paidOrder {
		return paidOrder{OrderAmount: o.Amount, PaymentAmount: p.Amount}
	}, dsl.JoinWindowsOf(joinWindow).Grace(grace), dsl.Named("order-payments")).
		To(joinOutputTopic, dsl.ValueSerde(paidOrderSerde))
	return b.Build()
}

// joinInput is the join's input, orders and payments interleaved in
// production order, and the amount each order id must come out with.
type joinInput struct {
	*input
	want map[string]int64
}

// genJoin makes cfg.JoinOrders orders keyed by order id, timestamps spread
// over cfg.Span, each followed by its payment (same amount) up to
// paymentDelay later in event time.
func genJoin(cfg pipelineConfig) (*joinInput, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x701))
	n := cfg.JoinOrders
	in := &input{topics: []string{joinOrdersTopic, joinPaymentsTopic}, keys: make([][]byte, n)}
	want := make(map[string]int64, n)
	step := float64(cfg.Span.Milliseconds()) / float64(n)
	s := orders.OrderSerde()
	for i := range n {
		id := fmt.Sprintf("order-%d", i)
		in.keys[i] = []byte(id)
		amount := 100 + rng.Int64N(10_000)
		want[id] = amount
		ts := benchEpoch + int64(float64(i)*step)
		ov, err := s.Serialize(joinOrdersTopic, orders.Order{ID: id, Amount: amount})
		if err != nil {
			return nil, err
		}
		pv, err := paymentSerde.Serialize(joinPaymentsTopic, payment{Amount: amount})
		if err != nil {
			return nil, err
		}
		in.add(0, uint32(i), ov, ts)
		in.add(1, uint32(i), pv, ts+rng.Int64N(paymentDelay.Milliseconds()+1))
	}
	return &joinInput{input: in, want: want}, nil
}

// newJoinVerifier checks the join's output: every order id joined exactly
// once, with its own order's and payment's amounts.
func newJoinVerifier(want map[string]int64) *verifier {
	seen := make(map[string]bool, len(want))
	v := &verifier{topic: joinOutputTopic}
	v.apply = func(r *kgo.Record) error {
		id := string(r.Key)
		amount, ok := want[id]
		if !ok {
			return fmt.Errorf("output has order id %q, which is not in the input", id)
		}
		if seen[id] {
			return fmt.Errorf("order %q joined twice (at %s[%d]@%d)", id, r.Topic, r.Partition, r.Offset)
		}
		p, err := paidOrderSerde.Deserialize(r.Topic, r.Value)
		if err != nil {
			return fmt.Errorf("output value at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if p.OrderAmount != amount || p.PaymentAmount != amount {
			return fmt.Errorf("order %q joined as %+v, want both amounts %d", id, p, amount)
		}
		seen[id] = true
		return nil
	}
	v.complete = func() bool { return len(seen) == len(want) }
	v.diff = func() string {
		var lines []string
		for id := range want {
			if !seen[id] {
				lines = append(lines, id+": not joined")
			}
		}
		return fmt.Sprintf("%d of %d orders not joined:\n%s", len(lines), len(want), sortedDiff(lines))
	}
	return v
}

// measureJoin runs the join on target name over in.
func measureJoin(ctx context.Context, cfg pipelineConfig, name string, in *joinInput) (pipelineResult, error) {
	m := measured{cfg: cfg, workload: "join", target: name, in: in.input,
		topics: []string{joinOrdersTopic, joinPaymentsTopic, joinOutputTopic},
		verify: newJoinVerifier(in.want)}
	switch name {
	case "weir":
		m.start = func(t *target, dir string) (processor, error) {
			return startWeir(int(cfg.Partitions), func() (*runtime.Application, error) {
				topo, err := joinTopology(cfg.joinGrace())
				if err != nil {
					return nil, err
				}
				return runtime.New(topo, weirOptions(cfg, t, "bench-order-payments", dir)...)
			})
		}
	case "baseline":
		m.start = func(t *target, _ string) (processor, error) { return startJoinBaseline(cfg, t.addrs) }
	}
	r, err := m.run(ctx)
	r.Workload = "join"
	return r, err
}

// pendingSide is a record of one side of the baseline join still waiting
// for its partner.
type pendingSide struct {
	amount int64
	ts     int64
}

// startJoinBaseline starts the baseline of the join: decode each order and
// payment, keep it in a Go map by order id until its partner arrives, and
// then produce the joined record if the two are within the join window. It
// needs no grace handling: every order has exactly one payment, and its
// maps only shrink as partners meet.
func startJoinBaseline(cfg pipelineConfig, addrs []string) (*baseline, error) {
	b, err := newBaseline(cfg, addrs, false, "bench-baseline-join", joinOrdersTopic, joinPaymentsTopic)
	if err != nil {
		return nil, err
	}
	os := orders.OrderSerde()
	waitingOrders := map[string]pendingSide{}
	waitingPayments := map[string]pendingSide{}
	window := joinWindow.Milliseconds()
	b.process = func(_ context.Context, r *kgo.Record) error {
		var mine, others map[string]pendingSide
		var own pendingSide
		switch r.Topic {
		case joinOrdersTopic:
			o, err := os.Deserialize(r.Topic, r.Value)
			if err != nil {
				return fmt.Errorf("baseline: order at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			own, mine, others = pendingSide{amount: o.Amount, ts: r.Timestamp.UnixMilli()}, waitingOrders, waitingPayments
		default:
			p, err := paymentSerde.Deserialize(r.Topic, r.Value)
			if err != nil {
				return fmt.Errorf("baseline: payment at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			own, mine, others = pendingSide{amount: p.Amount, ts: r.Timestamp.UnixMilli()}, waitingPayments, waitingOrders
		}
		id := string(r.Key)
		other, ok := others[id]
		if !ok {
			mine[id] = own
			return nil
		}
		delete(others, id)
		if d := own.ts - other.ts; d > window || d < -window {
			return nil
		}
		po := paidOrder{OrderAmount: own.amount, PaymentAmount: other.amount}
		if r.Topic == joinPaymentsTopic {
			po.OrderAmount, po.PaymentAmount = other.amount, own.amount
		}
		v, err := paidOrderSerde.Serialize(joinOutputTopic, po)
		if err != nil {
			return err
		}
		b.produce(&kgo.Record{Topic: joinOutputTopic, Key: r.Key, Value: v,
			Timestamp: time.UnixMilli(max(own.ts, other.ts))})
		return nil
	}
	b.flush = func(context.Context) error { return nil }
	b.start()
	return b, nil
}
