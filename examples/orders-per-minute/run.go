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

	"github.com/weir-dev/weir/examples/internal/demo"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

// partitions is the partition count of the topics the program creates.
const partitions = 6

// run runs the application, the generator and the printer until ctx ends.
func run(ctx context.Context, cfg config, out io.Writer) error {
	var bad []string
	if cfg.rate <= 0 || cfg.customers <= 0 || cfg.speedup <= 0 {
		bad = append(bad, "rate, customers and speedup must be > 0")
	}
	if cfg.outOfOrder < 0 || cfg.outOfOrder > 1 {
		bad = append(bad, "out-of-order must be in [0, 1]")
	}
	if cfg.window < time.Millisecond || cfg.grace < 0 {
		bad = append(bad, "window must be at least 1ms, grace not negative")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	topo, err := orders.TopologyWith(cfg.window, cfg.grace, true)
	if err != nil {
		return err
	}
	opts := []runtime.Option{
		runtime.ApplicationID("orders-per-minute"),
		runtime.StateDir(cfg.stateDir),
		runtime.Logger(cfg.logger),
	}
	if cfg.memoryMiB > 0 {
		opts = append(opts, runtime.MemoryBudget(cfg.memoryMiB<<20))
	}
	if cfg.commitInterval > 0 {
		opts = append(opts, runtime.CommitInterval(cfg.commitInterval))
	}
	if cfg.brokers != "" {
		opts = append(opts, runtime.Brokers(strings.Split(cfg.brokers, ",")...))
	}
	if cfg.metricsAddr != "" {
		opts = append(opts, runtime.MetricsAddr(cfg.metricsAddr))
	}
	if cfg.queryAddr != "" {
		opts = append(opts, runtime.QueryAddr(cfg.queryAddr),
			runtime.QueryStore(orders.CountStore, serde.String(), serde.Int64()))
	}
	app, err := runtime.New(topo, opts...)
	if err != nil {
		return err
	}
	defer app.Close()
	brokers := app.Brokers()
	if cfg.brokers == "" {
		fmt.Fprintf(out, "orders-per-minute: embedded Weir broker on %s; data (broker log and state stores) in %s: stop, then delete it to start afresh\n",
			strings.Join(brokers, ","), app.StateDir())
	} else {
		fmt.Fprintf(out, "orders-per-minute: brokers %s; state stores in %s\n", strings.Join(brokers, ","), app.StateDir())
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(orders.InputTopic),
		kgo.ProducerLinger(10*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := createTopics(ctx, adm); err != nil {
		return err
	}
	// The printer reads the final counts from the end the topic has now,
	// before any order of this run is produced, so it misses none.
	finalEnds, err := adm.ListEndOffsets(ctx, orders.FinalTopic)
	if err == nil {
		err = finalEnds.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", orders.FinalTopic, err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	// Run's end (a fatal error) ends runCtx, as ctx's (Ctrl-C) does.
	go func() { ran <- app.Run(runCtx); cancel() }()
	var wg sync.WaitGroup
	// stop ends the run: it stops the goroutines and the application and
	// returns the first error of err, Run's and Close's.
	stop := func(err error) error {
		cancel()
		err = errors.Join(err, <-ran)
		wg.Wait()
		if cerr := app.Close(); err == nil {
			err = cerr
		}
		fmt.Fprintln(out, "orders-per-minute: stopped")
		return err
	}
	// The event clock starts once the instance runs its tasks, so that the
	// first window closes when the first screen says, however long the
	// start took.
	if !waitForTasks(runCtx, app) {
		return stop(nil)
	}
	// NB: a run on an existing state directory (or cluster) restores the
	// windows' stream time from the earlier run, which with -speedup may
	// be far ahead of the wall clock: the event clock goes on from there,
	// or every order would be dropped as late until it caught up.
	early := maxEarly(cfg)
	clock, err := eventClockStart(runCtx, brokers, cfg.now(), cfg.window, early)
	if err != nil {
		return stop(err)
	}
	introduce(out, cfg, clock, early)

	var produced atomic.Int64
	wg.Add(3)
	go func() { defer wg.Done(); generate(runCtx, cl, cfg, clock, early, &produced) }()
	go func() { defer wg.Done(); printFinals(runCtx, brokers, finalEnds, cfg.window, out) }()
	go func() { defer wg.Done(); progress(runCtx, cfg.progressEvery, app, &produced, out) }()
	<-runCtx.Done()
	return stop(nil)
}

// waitForTasks returns true once app runs tasks, or after 10 s (another
// instance of the application may hold them all), and false when ctx
// ends first (the application stopped, or the program was stopped).
func waitForTasks(ctx context.Context, app *runtime.Application) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(10 * time.Second)
	for len(app.Tasks()) == 0 {
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			return true
		case <-t.C:
		}
	}
	return true
}

// introduce prints what the program does, when its first window closes and
// what the progress line says.
func introduce(out io.Writer, cfg config, clock time.Time, early time.Duration) {
	first := clock.Add(cfg.window)
	closes := first.Add(cfg.grace)
	wait := time.Duration(float64(closes.Sub(clock)) / cfg.speedup).Round(100 * time.Millisecond)
	fmt.Fprintf(out, "orders-per-minute: %g orders/s over %d customers, counted per customer per %v window (%v grace)",
		cfg.rate, cfg.customers, cfg.window, cfg.grace)
	if cfg.speedup != 1 {
		fmt.Fprintf(out, ", event time %gx the wall clock", cfg.speedup)
	}
	fmt.Fprintln(out, "; Ctrl-C stops")
	fmt.Fprintf(out, "orders-per-minute: the first window, %s-%s (event time), closes in about %v, once an order stamped %s (its end plus the grace) arrives;\n",
		hms(clock), hms(first), wait, hms(closes))
	fmt.Fprintf(out, "  then a \"window\" line per customer with an order in it prints each time a window closes\n")
	fmt.Fprintf(out, "orders-per-minute: %.0f%% of the orders are stamped up to %v in the past; \"late dropped\" counts those that arrived after their window had closed (more than the %v grace behind the newest order), as in real life\n",
		cfg.outOfOrder*100, early, cfg.grace)
}

func hms(t time.Time) string { return t.UTC().Format("15:04:05") }

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
// stamped: twice the grace period, so that some are beyond it.
func maxEarly(cfg config) time.Duration {
	if cfg.grace > 0 {
		return 2 * cfg.grace
	}
	return cfg.window / 2
}

// eventClockStart returns when the generator's event clock starts: at the
// start of the window now falls in, so that the first window is a full one
// and closes a window plus the grace after the start; or, when the input
// topic already holds orders from an earlier run, at the first window
// boundary past every one of them. An earlier run's last order per
// partition may be out of order (up to early behind its clock).
func eventClockStart(ctx context.Context, brokers []string, now time.Time, window, early time.Duration) (time.Time, error) {
	w := window.Milliseconds()
	ms := now.UnixMilli()
	start := time.UnixMilli(ms - ms%w)
	last, ok, err := demo.LastTimestamp(ctx, brokers, orders.InputTopic)
	if err != nil || !ok {
		return start, err
	}
	if after := last.Add(early).UnixMilli(); after >= start.UnixMilli() {
		start = time.UnixMilli(after - after%w + w)
	}
	return start, nil
}

// generate produces orders at cfg.rate until ctx ends. Event time starts
// at clock and runs cfg.speedup times faster than cfg.now; a share of
// orders is stamped up to early (event time) in the past, but not before
// clock.
func generate(ctx context.Context, cl *kgo.Client, cfg config, clock time.Time, early time.Duration, produced *atomic.Int64) {
	s := orders.OrderSerde()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := cfg.now()
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
		elapsed := cfg.now().Sub(start)
		due := int64(elapsed.Seconds() * cfg.rate)
		for ; n < due; n++ {
			ts := clock.Add(time.Duration(float64(elapsed) * cfg.speedup))
			if rng.Float64() < cfg.outOfOrder {
				// NB: never before the clock's start, which would make
				// a partial window before the first one.
				if ts = ts.Add(-time.Duration(rng.Int64N(int64(early)))); ts.Before(clock) {
					ts = clock
				}
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

// printFinals prints every final window count as it arrives, from the
// offsets from.
func printFinals(ctx context.Context, brokers []string, from kadm.ListedOffsets, window time.Duration, out io.Writer) {
	offsets := map[int32]kgo.Offset{}
	from.Each(func(o kadm.ListedOffset) { offsets[o.Partition] = kgo.NewOffset().At(o.Offset) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{orders.FinalTopic: offsets}))
	if err != nil {
		return
	}
	defer cl.Close()
	ks, vs := orders.CountKeySerdeWith(window), serde.Int64()
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
