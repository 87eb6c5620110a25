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
	// NB: a run on an existing state directory (or cluster) restores the
	// windows' stream time from the earlier run, which with -speedup may
	// be far ahead of the wall clock: the event clock goes on from there,
	// or every order would be dropped as late until it caught up.
	clock, err := eventClockStart(ctx, brokers)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "orders-per-minute: brokers %s, %g orders/s over %d customers, %.0f%% out of order; Ctrl-C stops\n",
		strings.Join(brokers, ","), cfg.rate, cfg.customers, cfg.outOfOrder*100)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var produced atomic.Int64
	wg.Add(2)
	go func() { defer wg.Done(); generate(runCtx, cl, cfg, clock, &produced) }()
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

// maxEarly is how far back in event time an out-of-order order may be
// stamped: some beyond the 10s grace period.
const maxEarly = 20 * time.Second

// eventClockStart returns when the generator's event clock starts: now, or
// later when the input topic already holds orders from an earlier run. Its
// last order per partition may be out of order, so the clock starts
// maxEarly after the latest of them: past every order of the earlier run.
func eventClockStart(ctx context.Context, brokers []string) (time.Time, error) {
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return start, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, orders.InputTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return start, fmt.Errorf("end offsets of %s: %w", orders.InputTopic, err)
	}
	last := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			last[o.Partition] = kgo.NewOffset().At(o.Offset - 1)
		}
	})
	if len(last) == 0 {
		return start, nil
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{orders.InputTopic: last}))
	if err != nil {
		return start, err
	}
	defer cons.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(last) > 0 {
		fs := cons.PollFetches(rctx)
		if rctx.Err() != nil {
			return start, fmt.Errorf("read the last orders of %s: %w", orders.InputTopic, rctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			delete(last, r.Partition)
			if t := r.Timestamp.Add(maxEarly); t.After(start) {
				start = t
			}
		})
	}
	return start, nil
}

// generate produces orders at cfg.rate until ctx ends. Event time starts
// at clock and runs cfg.speedup times faster than the wall clock; a share
// of orders is stamped up to maxEarly (event time) in the past.
func generate(ctx context.Context, cl *kgo.Client, cfg config, clock time.Time, produced *atomic.Int64) {
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
			ts := clock.Add(time.Duration(float64(elapsed) * cfg.speedup))
			if rng.Float64() < cfg.outOfOrder {
				ts = ts.Add(-time.Duration(rng.Int64N(int64(maxEarly))))
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
