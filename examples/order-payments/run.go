package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/examples/internal/demo"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// Topics.
const (
	OrdersTopic   = "orders-by-id"
	PaymentsTopic = "payments"
	OutputTopic   = "order-payments"
)

// Order is keyed by order id.
type Order struct {
	Customer string
	Cents    int64
}

// Payment is keyed by the id of the order it pays.
type Payment struct {
	Cents int64
}

// Result is one order with its payment, if any came within the window.
type Result struct {
	Order   Order
	Paid    bool
	Payment Payment
}

// Topology left-joins orders with payments by order id within Window.
func Topology() (*streams.Topology, error) {
	b := dsl.NewBuilder()
	orders := dsl.Stream(b, OrdersTopic, serde.String(), serde.Msgpack[Order]())
	payments := dsl.Stream(b, PaymentsTopic, serde.String(), serde.Msgpack[Payment]())
	joined := dsl.LeftJoin(orders, payments, func(o Order, p *Payment) Result {
		r := Result{Order: o}
		if p != nil {
			r.Paid, r.Payment = true, *p
		}
		return r
	}, dsl.JoinWindowsOf(Window).Grace(Grace), dsl.Named("order-payment"))
	joined.To(OutputTopic, dsl.ValueSerde(serde.Msgpack[Result]()))
	return b.Build()
}

const partitions = 3

func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.rate <= 0 || cfg.speedup <= 0 || cfg.unpaid < 0 || cfg.unpaid > 1 {
		return errors.New("rate and speedup must be > 0, unpaid in [0, 1]")
	}
	topo, err := Topology()
	if err != nil {
		return err
	}
	opts := []runtime.Option{
		runtime.ApplicationID("order-payments"),
		runtime.StateDir(cfg.stateDir),
		runtime.Logger(cfg.logger),
	}
	if cfg.brokers != "" {
		opts = append(opts, runtime.Brokers(strings.Split(cfg.brokers, ",")...))
	}
	app, err := runtime.New(topo, opts...)
	if err != nil {
		return err
	}
	defer app.Close()
	brokers := app.Brokers()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range []string{OrdersTopic, PaymentsTopic, OutputTopic} {
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	// NB: a run on an existing state directory (or cluster) restores the
	// join windows' stream time from the earlier run, which with -speedup
	// may be far ahead of the wall clock: the event clock goes on past the
	// earlier run's records, or its orders would all be late.
	clock := time.Now()
	last, ok, err := demo.LastTimestamp(ctx, brokers, OrdersTopic, PaymentsTopic)
	if err != nil {
		return err
	}
	// A partition's last payment may be stamped up to Window/2 before the
	// latest payment of the run.
	if after := last.Add(Window / 2); ok && after.After(clock) {
		clock = after
	}
	run := runID(time.Now())
	fmt.Fprintf(out, "order-payments: brokers %s, %g orders/s, %.0f%% never paid, order ids order-%s-*; state in %s; Ctrl-C stops\n",
		strings.Join(brokers, ","), cfg.rate, cfg.unpaid*100, run, app.StateDir())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); generate(runCtx, cl, cfg, run, clock) }()
	go func() { defer wg.Done(); printResults(runCtx, brokers, out) }()
	err = app.Run(runCtx)
	cancel()
	wg.Wait()
	if cerr := app.Close(); err == nil {
		err = cerr
	}
	fmt.Fprintln(out, "order-payments: stopped")
	return err
}

// runID names one run of the program: its start time in milliseconds,
// base 36 (8 characters until the year 2059). Order ids start with it, so
// that a run's orders never join with an earlier run's payments or stand
// for its orders in the output.
func runID(start time.Time) string { return strconv.FormatInt(start.UnixMilli(), 36) }

// generate produces orders, with ids order-<run>-<n>, and, for most of
// them, a payment a little later in event time (within the join window).
// Event time starts at clock.
func generate(ctx context.Context, cl *kgo.Client, cfg config, run string, clock time.Time) {
	os, ps := serde.Msgpack[Order](), serde.Msgpack[Payment]()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	start := time.Now()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var n int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		elapsed := time.Since(start)
		for due := int64(elapsed.Seconds() * cfg.rate); n < due; n++ {
			ts := clock.Add(time.Duration(float64(elapsed) * cfg.speedup))
			id := fmt.Sprintf("order-%s-%06d", run, n)
			o := Order{Customer: fmt.Sprintf("customer-%02d", rng.IntN(50)), Cents: 100 + rng.Int64N(10000)}
			ob, err := os.Serialize(OrdersTopic, o)
			if err != nil {
				return
			}
			cl.Produce(ctx, &kgo.Record{Topic: OrdersTopic, Key: []byte(id), Value: ob, Timestamp: ts}, nil)
			if rng.Float64() < cfg.unpaid {
				continue
			}
			pb, err := ps.Serialize(PaymentsTopic, Payment{Cents: o.Cents})
			if err != nil {
				return
			}
			later := ts.Add(time.Duration(rng.Int64N(int64(Window / 2))))
			cl.Produce(ctx, &kgo.Record{Topic: PaymentsTopic, Key: []byte(id), Value: pb, Timestamp: later}, nil)
		}
	}
}

// printResults prints each joined order.
func printResults(ctx context.Context, brokers []string, out io.Writer) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(OutputTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return
	}
	defer cl.Close()
	rs := serde.Msgpack[Result]()
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			res, err := rs.Deserialize(r.Topic, r.Value)
			if err != nil {
				return
			}
			if res.Paid {
				fmt.Fprintf(out, "paid    %s  %s  %d.%02d\n", r.Key, res.Order.Customer, res.Payment.Cents/100, res.Payment.Cents%100)
			} else {
				fmt.Fprintf(out, "UNPAID  %s  %s  %d.%02d  (no payment within %v)\n", r.Key, res.Order.Customer, res.Order.Cents/100, res.Order.Cents%100, Window)
			}
		})
	}
}
