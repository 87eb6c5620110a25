package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// partitions is the partition count of the topics the program creates.
const partitions = 6

// run runs the application, the generator and the printer until ctx ends.
func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.rate <= 0 || cfg.customers <= 0 || cfg.speedup <= 0 || cfg.outOfOrder < 0 || cfg.outOfOrder > 1 {
		return errors.New("rate, customers and speedup must be > 0, out-of-order in [0, 1]")
	}
	topo, err := orders.Topology(true)
	if err != nil {
		return err
	}
	opts := []runtime.Option{
		runtime.ApplicationID("orders-per-minute"),
		runtime.StateDir(cfg.stateDir),
		runtime.Logger(cfg.logger),
	}
	if cfg.brokers != "" {
		opts = append(opts, runtime.Brokers(strings.Split(cfg.brokers, ",")...))
	}
	if cfg.metricsAddr != "" {
		opts = append(opts, runtime.MetricsAddr(cfg.metricsAddr))
	}
	app, err := runtime.New(topo, opts...)
	if err != nil {
		return err
	}
	defer app.Close()
	brokers := app.Brokers()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(orders.InputTopic),
		kgo.ProducerLinger(10*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := createTopics(ctx, kadm.NewClient(cl)); err != nil {
		return err
	}
	fmt.Fprintf(out, "orders-per-minute: brokers %s, %g orders/s over %d customers, %.0f%% out of order; Ctrl-C stops\n",
		strings.Join(brokers, ","), cfg.rate, cfg.customers, cfg.outOfOrder*100)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var produced atomic.Int64
	wg.Add(2)
	go func() { defer wg.Done(); generate(runCtx, cl, cfg, &produced) }()
	go func() { defer wg.Done(); printFinals(runCtx, brokers, out) }()
	wg.Add(1)
	go func() { defer wg.Done(); progress(runCtx, cfg.progressEvery, app, &produced, out) }()

	err = app.Run(runCtx)
	cancel()
	wg.Wait()
	if cerr := app.Close(); err == nil {
		err = cerr
	}
	fmt.Fprintln(out, "orders-per-minute: stopped")
	return err
}

func createTopics(ctx context.Context, adm *kadm.Client) error {
	for _, t := range []string{orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic} {
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	return nil
}

// generate produces orders at cfg.rate until ctx ends. Event time starts
// now and runs cfg.speedup times faster than the wall clock; a share of
// orders is stamped up to 20s (event time) in the past, some beyond the
// 10s grace period.
func generate(ctx context.Context, cl *kgo.Client, cfg config, produced *atomic.Int64) {
	s := orders.OrderSerde()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := time.Now()
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var n int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		elapsed := time.Since(start)
		due := int64(elapsed.Seconds() * cfg.rate)
		for ; n < due; n++ {
			ts := start.Add(time.Duration(float64(elapsed) * cfg.speedup))
			if rng.Float64() < cfg.outOfOrder {
				ts = ts.Add(-time.Duration(rng.Int64N(int64(20 * time.Second))))
			}
			v, err := s.Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprintf("o%d", n), Amount: rng.Int64N(10000)})
			if err != nil {
				return
			}
			key := fmt.Sprintf("customer-%03d", rng.IntN(cfg.customers))
			cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: v, Timestamp: ts}, func(_ *kgo.Record, err error) {
				if err == nil {
					produced.Add(1)
				}
			})
		}
	}
}

// printFinals prints every final window count as it arrives.
func printFinals(ctx context.Context, brokers []string, out io.Writer) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(orders.FinalTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return
	}
	defer cl.Close()
	ks, vs := orders.CountKeySerde(), serde.Int64()
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			k, err1 := ks.Deserialize(r.Topic, r.Key)
			v, err2 := vs.Deserialize(r.Topic, r.Value)
			if err1 != nil || err2 != nil {
				return
			}
			fmt.Fprintf(out, "window %s-%s  %s  %d orders\n",
				k.Window.Start.UTC().Format("15:04:05"), k.Window.End.UTC().Format("15:04:05"), k.Key, v)
		})
	}
}

// progress prints records/s, lag and late drops every interval.
func progress(ctx context.Context, every time.Duration, app *runtime.Application, produced *atomic.Int64, out io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastProcessed float64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m := sumMetrics(app.Metrics())
			rate := (m["weir_records_processed_total"] - lastProcessed) / now.Sub(last).Seconds()
			lastProcessed, last = m["weir_records_processed_total"], now
			fmt.Fprintf(out, "progress: produced %d, processed %.0f (%.0f/s), lag %.0f, late dropped %.0f, tasks %.0f\n",
				produced.Load(), m["weir_records_processed_total"], rate, m["weir_consumer_lag_records"],
				m["weir_dropped_records_total"], m["weir_active_tasks"])
		}
	}
}

// sumMetrics sums every series of each metric family.
func sumMetrics(g prometheus.Gatherer) map[string]float64 {
	out := map[string]float64{}
	fams, err := g.Gather()
	if err != nil {
		return out
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				out[f.GetName()] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[f.GetName()] += m.GetGauge().GetValue()
			}
		}
	}
	return out
}
