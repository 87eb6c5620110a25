package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
)

func init() { workloads = append(workloads, newPipelineCmd) }

// pipelineConfig describes one run of the pipeline workload.
type pipelineConfig struct {
	Orders     int           // orders through the windowed count
	Customers  int           // distinct customer ids (the keys)
	Partitions int32         // partitions of every topic
	Span       time.Duration // event time the orders cover
	OutOfOrder float64       // share of orders stamped up to Lateness earlier
	Lateness   time.Duration // how far back an out-of-order order may be (below orders.Grace)
	JoinOrders int           // orders (and as many payments) through the join; 0 skips it
	JoinGrace  time.Duration // grace of the join window; 0 = Span (no record can be late)
	Commit     time.Duration // commit interval of both the runtime and the baseline
	Fsync      string        // Weir's fsync policy
	DataDir    string        // parent of the broker and state directories
	Targets    []string      // "weir", "baseline"
	Timeout    time.Duration // bound on each measured run
	Seed       uint64        // input generator seed
	ProfileDir string        // where to write a CPU profile of each measured run; "" = none
	Progress   bool          // print the processor's counters every 250ms while measuring
	// Rounds is how many times every target is measured (0: once), the
	// targets' order rotating from round to round; the ratios are
	// reported per round and as the median of the rounds'.
	Rounds int
	// round is the round being measured (1-based), for the profiles' names.
	round int
	// ExactlyOnce measures, beside Weir at-least-once, Weir's ExactlyOnce
	// and the baseline as a transactional franz-go loop (count only).
	ExactlyOnce bool
	// Instances, when set, runs only the windowed count, once per count of
	// application instances (pipeline_instances.go).
	Instances []int
}

func newPipelineCmd() *cobra.Command {
	cfg := pipelineConfig{}
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "End to end: orders-per-minute windowed count and an orders⋈payments join, Weir runtime vs a hand-written franz-go loop",
		Long: `Produces orders keyed by customer id to a topic on an in-process Weir broker
and measures, from the first produce until the output is complete, in one run:

- weir: the orders-per-minute topology (Stream → GroupByKey → tumbling 1 min
  windows with grace → Count → ToStream → To) run by Weir's runtime;
- baseline: a hand-written franz-go consume → count per (customer, minute) in
  a Go map → produce loop with the same commit discipline (flush the output,
  then commit the input offsets) and the same output records.

"Complete" means: the last count read from the output topic for every
(customer, minute) window equals the count computed directly from the input.
The end time is when the verifying consumer reads the record that makes this
true; afterwards the application is closed, the output is read to its end and
checked again. A wrong count fails the run.

Then the same for an orders ⋈ payments stream-stream windowed join by order id
(every order has one payment, a few seconds later): complete when every order
id has been joined exactly once.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(cfg.Instances) > 0 {
				return runInstances(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if cfg.ExactlyOnce {
				if !cmd.Flags().Changed("targets") {
					cfg.Targets = []string{"weir", "weir-eos", "baseline-eos"}
				}
				cfg.JoinOrders = 0
			}
			res, err := runPipeline(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			printPipeline(cmd.OutOrStdout(), cfg, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Orders, "orders", 2_000_000, "orders through the windowed count")
	f.IntVar(&cfg.Customers, "customers", 10_000, "distinct customers (keys)")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions of every topic")
	f.DurationVar(&cfg.Span, "span", 20*time.Minute, "event time the orders cover (windows per customer = span/1m)")
	f.Float64Var(&cfg.OutOfOrder, "out-of-order", 0.02, "share of orders stamped up to --lateness earlier than their place")
	f.DurationVar(&cfg.Lateness, "lateness", 5*time.Second, "how much earlier an out-of-order order may be (must stay below the 10s grace)")
	f.IntVar(&cfg.JoinOrders, "join-orders", 500_000, "orders (and as many payments) through the join; 0 skips the join")
	f.DurationVar(&cfg.JoinGrace, "join-grace", 0, "grace of the join window (0: --span, so that no record can be late whatever order the two topics are read in; with a shorter grace, records of one topic read more than the grace behind the other in event time are dropped as late and the run fails)")
	f.DurationVar(&cfg.Commit, "commit-interval", time.Second, "commit interval of the Weir runtime and of the baseline")
	f.StringVar(&cfg.Fsync, "fsync", string(broker.FsyncGroup), "Weir's fsync policy: group, interval or never")
	f.StringVar(&cfg.DataDir, "data-dir", "", "where the broker's and the application's directories are made (default: the system temp dir)")
	f.StringSliceVar(&cfg.Targets, "targets", []string{"weir", "baseline"}, "what to measure")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "bound on each measured run")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the input generator")
	f.StringVar(&cfg.ProfileDir, "profile-dir", "", "write a CPU profile of each measured run (first produce to complete output) to this directory as <workload>-<target>.pprof, with its allocations (go tool pprof -base X.allocs-before X.allocs)")
	f.BoolVar(&cfg.ExactlyOnce, "exactly-once", false, "measure the windowed count exactly-once: targets weir (at-least-once), weir-eos (runtime.ExactlyOnce) and baseline-eos (the hand-written loop in franz-go transactions, a GroupTransactSession), outputs read at read_committed for the last two; the join is skipped")
	f.IntSliceVar(&cfg.Instances, "instances", nil, "measure the windowed count only, with each of these numbers of application instances in this process (one group; the baseline as as many loops in one group), and for Weir the time until one more instance has its share of the tasks, e.g. --instances 1,2,4 --partitions 24")
	f.IntVar(&cfg.Rounds, "rounds", 1, "measure every target this many times, the targets' order rotating each round; ratios per round and their medians")
	f.BoolVar(&cfg.Progress, "progress", false, "print the processor's counters to stderr every 250ms while measuring")
	return cmd
}

// pipelineResult is one measured run.
type pipelineResult struct {
	Workload string // "count" or "join"
	Target   string // "weir" or "baseline"
	Round    int    // 1-based
	Input    int    // input records (orders, plus payments for the join)
	Output   int    // output records read up to the end time
	Produce  time.Duration
	Elapsed  time.Duration // first produce → output complete
	// CPU is the process's CPU time (user + system) over Elapsed: the
	// processor, the broker, the input producer and the verifier together.
	CPU time.Duration
}

// Rate is input records per second end to end.
func (r pipelineResult) Rate() float64 { return float64(r.Input) / r.Elapsed.Seconds() }

func (c pipelineConfig) validate() error {
	switch {
	case c.Orders < 1 || c.Customers < 1 || c.Partitions < 1 || c.JoinOrders < 0:
		return errors.New("bench: --orders, --customers and --partitions must be positive, --join-orders not negative")
	case c.Span < time.Minute:
		return errors.New("bench: --span must be at least a minute")
	case c.OutOfOrder < 0 || c.OutOfOrder > 1:
		return errors.New("bench: --out-of-order is a share between 0 and 1")
	case c.Lateness < 0 || c.Lateness >= orders.Grace:
		return fmt.Errorf("bench: --lateness must be in [0, %v) so that no order is dropped as late", orders.Grace)
	case c.JoinGrace < 0:
		return errors.New("bench: --join-grace must not be negative")
	case c.Rounds < 0:
		return errors.New("bench: --rounds must not be negative")
	case c.Commit <= 0 || c.Timeout <= 0:
		return errors.New("bench: --commit-interval and --timeout must be positive")
	}
	for _, t := range c.Targets {
		switch t {
		case "weir", "baseline":
		case "weir-eos", "baseline-eos":
			if c.JoinOrders > 0 {
				return fmt.Errorf("bench: target %q measures the windowed count only: give --join-orders 0 (or --exactly-once)", t)
			}
		default:
			return fmt.Errorf("bench: unknown target %q (want weir, baseline, weir-eos or baseline-eos)", t)
		}
	}
	return nil
}

// joinGrace is the join window's grace: JoinGrace, or Span when unset.
func (c pipelineConfig) joinGrace() time.Duration {
	if c.JoinGrace > 0 {
		return c.JoinGrace
	}
	return c.Span
}

// runPipeline runs the count, then the join, for every target, one run at
// a time, each on a fresh broker.
func runPipeline(ctx context.Context, cfg pipelineConfig, progress io.Writer) ([]pipelineResult, error) {
	cfg.Rounds = max(cfg.Rounds, 1)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench: generating %d orders over %d customers...\n", cfg.Orders, cfg.Customers)
	in, err := genOrders(cfg)
	if err != nil {
		return nil, err
	}
	out, err := measureRounds(cfg, "windowed count", progress, func(cfg pipelineConfig, name string) (pipelineResult, error) {
		return measureCount(ctx, cfg, name, in)
	})
	if err != nil || cfg.JoinOrders == 0 {
		return out, err
	}
	in = nil // let the count's input go before the join's is made
	fmt.Fprintf(progress, "bench: generating %d orders and payments...\n", cfg.JoinOrders)
	jin, err := genJoin(cfg)
	if err != nil {
		return nil, err
	}
	joins, err := measureRounds(cfg, "join", progress, func(cfg pipelineConfig, name string) (pipelineResult, error) {
		return measureJoin(ctx, cfg, name, jin)
	})
	return append(out, joins...), err
}

// measureRounds measures every target with measure, cfg.Rounds times, in
// each round's order.
func measureRounds(cfg pipelineConfig, workload string, progress io.Writer, measure func(pipelineConfig, string) (pipelineResult, error)) ([]pipelineResult, error) {
	var out []pipelineResult
	for round := range cfg.Rounds {
		cfg.round = round + 1
		for _, name := range roundOrder(cfg.Targets, round) {
			fmt.Fprintf(progress, "bench: %s, %s%s...\n", workload, name, cfg.roundLabel())
			r, err := measure(cfg, name)
			if err != nil {
				return nil, fmt.Errorf("bench: %s, %s%s: %w", workload, name, cfg.roundLabel(), err)
			}
			r.Round = cfg.round
			fmt.Fprintf(progress, "bench: %s, %s%s: %.0f records/s\n", workload, name, cfg.roundLabel(), r.Rate())
			out = append(out, r)
		}
	}
	return out, nil
}

// roundLabel names the round being measured in progress lines and
// profiles, when there are several.
func (c pipelineConfig) roundLabel() string {
	if c.Rounds <= 1 {
		return ""
	}
	return fmt.Sprintf(" round %d/%d", c.round, c.Rounds)
}

// profileName is the base name of a measured run's profiles.
func (c pipelineConfig) profileName(workload, target string) string {
	if c.Rounds <= 1 || c.round == 0 {
		return workload + "-" + target
	}
	return fmt.Sprintf("%s-%s-r%d", workload, target, c.round)
}

// input is a pre-generated set of records: record i is key keys[keyOf[i]],
// value slab[ends[i-1]:ends[i]], timestamp ts[i] (unix ms), to topic
// topics[topicOf[i]]. Generating first keeps the generator out of the
// measurement.
type input struct {
	topics  []string
	topicOf []uint8
	keys    [][]byte
	keyOf   []uint32
	slab    []byte
	ends    []uint32
	ts      []int64
}

func (in *input) len() int { return len(in.ts) }

func (in *input) add(topic uint8, key uint32, value []byte, ts int64) {
	in.topicOf = append(in.topicOf, topic)
	in.keyOf = append(in.keyOf, key)
	in.slab = append(in.slab, value...)
	in.ends = append(in.ends, uint32(len(in.slab)))
	in.ts = append(in.ts, ts)
}

func (in *input) record(i int) *kgo.Record {
	start := uint32(0)
	if i > 0 {
		start = in.ends[i-1]
	}
	return &kgo.Record{
		Topic: in.topics[in.topicOf[i]], Key: in.keys[in.keyOf[i]],
		Value: in.slab[start:in.ends[i]:in.ends[i]], Timestamp: time.UnixMilli(in.ts[i]),
	}
}

// benchEpoch is the event time the generated input starts at.
var benchEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// countInput is the windowed count's input and its expected output.
type countInput struct {
	*input
	want map[orders.WindowKey]int64
}

// genOrders makes cfg.Orders orders, customers drawn uniformly, timestamps
// spread evenly over cfg.Span with a share moved up to cfg.Lateness back,
// and counts them per window.
func genOrders(cfg pipelineConfig) (*countInput, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	in := &input{topics: []string{orders.InputTopic}, keys: make([][]byte, cfg.Customers)}
	for c := range in.keys {
		in.keys[c] = fmt.Appendf(nil, "customer-%05d", c)
	}
	want := map[orders.WindowKey]int64{}
	s := orders.OrderSerde()
	step := float64(cfg.Span.Milliseconds()) / float64(cfg.Orders)
	for i := range cfg.Orders {
		ts := benchEpoch + int64(float64(i)*step)
		if cfg.Lateness > 0 && rng.Float64() < cfg.OutOfOrder {
			ts -= rng.Int64N(cfg.Lateness.Milliseconds() + 1)
		}
		c := rng.IntN(cfg.Customers)
		v, err := s.Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprintf("order-%d", i), Amount: 100 + rng.Int64N(10_000)})
		if err != nil {
			return nil, err
		}
		in.add(0, uint32(c), v, ts)
		want[orders.Of(string(in.keys[c]), time.UnixMilli(ts))]++
	}
	return &countInput{input: in, want: want}, nil
}

// pipelineQuietLogger discards the runtime's log lines unless
// WEIR_BENCH_LOG is set.
func pipelineQuietLogger() *slog.Logger {
	if os.Getenv("WEIR_BENCH_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// createTopics creates topics with cfg.Partitions partitions each.
func createTopics(ctx context.Context, addrs []string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	created, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	return nil
}

// processor is the thing measured: started before the input is produced,
// ready once it owns its input partitions, stopped after the output is
// complete.
type processor interface {
	// ready reports whether the processor is assigned all its input.
	ready() bool
	// failed returns the error that stopped it early, if any.
	failed() error
	// stop stops it gracefully and returns what Run or the loop returned.
	stop() error
	// describe summarizes its progress, for errors.
	describe() string
}

// weirApp runs a topology with Weir's runtime against addrs.
type weirApp struct {
	app   *runtime.Application
	tasks int
	done  chan error
	err   atomic.Pointer[error]
}

func startWeir(tasks int, build func() (*runtime.Application, error)) (*weirApp, error) {
	app, err := build()
	if err != nil {
		return nil, err
	}
	w := &weirApp{app: app, tasks: tasks, done: make(chan error, 1)}
	go func() {
		err := app.Run(context.Background())
		if err != nil {
			w.err.Store(&err)
		}
		w.done <- err
	}()
	return w, nil
}

func (w *weirApp) ready() bool { return len(w.app.Tasks()) >= w.tasks }

func (w *weirApp) failed() error {
	if p := w.err.Load(); p != nil {
		return fmt.Errorf("runtime stopped: %w", *p)
	}
	// A record dropped as late can never be counted or joined: the output
	// will not become complete, so say why now instead of at --timeout.
	if n := w.droppedLate(); n > 0 {
		return fmt.Errorf("runtime dropped %.0f records as late (their window had closed: the inputs were read further apart in event time than the grace); the output cannot become complete: rerun with a larger --join-grace (0: --span)", n)
	}
	return nil
}

// droppedLate is the runtime's count of records dropped as late.
func (w *weirApp) droppedLate() float64 {
	mfs, err := w.app.Metrics().Gather()
	if err != nil {
		return 0
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "weir_dropped_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && (l.GetValue() == "late" || strings.HasSuffix(l.GetValue(), ": late")) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func (w *weirApp) stop() error {
	if err := w.app.Close(); err != nil {
		return err
	}
	return <-w.done
}

// describe sums the runtime's counters: records processed, dropped (by
// reason) and commits.
func (w *weirApp) describe() string {
	mfs, err := w.app.Metrics().Gather()
	if err != nil {
		return "metrics: " + err.Error()
	}
	sums := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" || l.GetName() == "phase" {
					name += "{" + l.GetValue() + "}"
				}
			}
			switch {
			case m.Counter != nil:
				sums[name] += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sums[name] += m.GetGauge().GetValue()
			}
		}
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	s := "runtime:"
	for _, n := range names {
		if strings.Contains(n, "_seconds_total") {
			s += fmt.Sprintf(" %s=%.2f", n, sums[n])
			continue
		}
		s += fmt.Sprintf(" %s=%.0f", n, sums[n])
	}
	return s
}

func weirOptions(cfg pipelineConfig, t *target, id, stateDir string) []runtime.Option {
	return []runtime.Option{
		runtime.ApplicationID(id),
		runtime.Brokers(t.addrs...),
		runtime.StateDir(stateDir),
		runtime.CommitInterval(cfg.Commit),
		runtime.Logger(pipelineQuietLogger()),
	}
}

// measured runs one processor over one input: start a fresh broker, create
// the topics, start the processor, wait until it owns its input, then
// produce everything and wait for the verifier to call the output complete.
type measured struct {
	cfg      pipelineConfig
	workload string
	target   string
	topics   []string // created with cfg.Partitions partitions
	in       *input
	start    func(t *target, dir string) (processor, error)
	verify   *verifier
	// afterComplete, when set, runs once the output is complete, before
	// the processor is stopped.
	afterComplete func(ctx context.Context, t *target, dir string, p processor) error
}

func (m measured) run(ctx context.Context) (pipelineResult, error) {
	res := pipelineResult{Target: m.target, Input: m.in.len()}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	t, err := startTarget(ctx, "weir", logConfig{Fsync: m.cfg.Fsync, DataDir: m.cfg.DataDir})
	if err != nil {
		return res, err
	}
	defer t.close()
	dir, err := os.MkdirTemp(m.cfg.DataDir, "weir-bench-app-")
	if err != nil {
		return res, fmt.Errorf("state dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := createTopics(ctx, t.addrs, m.cfg.Partitions, m.topics...); err != nil {
		return res, err
	}
	p, err := m.start(t, dir)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = p.stop()
		}
	}()
	if err := waitUntil(ctx, func() (bool, error) { return p.ready(), p.failed() }); err != nil {
		return res, fmt.Errorf("waiting for the input assignment: %w", err)
	}

	vctx, vcancel := context.WithCancel(ctx)
	defer vcancel()
	vdone := make(chan error, 1)
	go func() { vdone <- m.verify.follow(vctx, t.addrs) }()

	prod, err := producer(t.addrs)
	if err != nil {
		return res, err
	}
	defer prod.Close()
	if m.cfg.ProfileDir != "" {
		base := filepath.Join(m.cfg.ProfileDir, m.cfg.profileName(m.workload, m.target))
		// The run's allocations: `go tool pprof -base X.allocs-before X.allocs`.
		if err := writeAllocs(base + ".allocs-before"); err != nil {
			return res, fmt.Errorf("profile: %w", err)
		}
		stop, err := startProfile(m.cfg.ProfileDir, m.cfg.profileName(m.workload, m.target))
		if err != nil {
			return res, err
		}
		defer stop()
	}
	var firstErr atomic.Pointer[error]
	var acked atomic.Int64
	var wg sync.WaitGroup
	n := m.in.len()
	wg.Add(n)
	cpu0 := processCPU()
	start := time.Now()
	if m.cfg.Progress {
		tctx, tcancel := context.WithCancel(ctx)
		defer tcancel()
		go func() {
			tk := time.NewTicker(250 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-tctx.Done():
					return
				case <-tk.C:
					fmt.Fprintf(os.Stderr, "progress %6.2fs input acknowledged=%d %s\n", time.Since(start).Seconds(), acked.Load(), p.describe())
				}
			}
		}()
	}
	for i := range n {
		prod.Produce(ctx, m.in.record(i), func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
			acked.Add(1)
			wg.Done()
		})
	}
	wg.Wait()
	res.Produce = time.Since(start)
	if p := firstErr.Load(); p != nil {
		return res, fmt.Errorf("produce: %w", *p)
	}
	// Wait for the verifier, watching for the processor's failure.
	if err := waitVerifier(vdone, p); err != nil {
		return res, fmt.Errorf("%w\n%s", err, p.describe())
	}
	end := m.verify.completeAt()
	res.CPU = processCPU() - cpu0
	if m.cfg.ProfileDir != "" {
		pprof.StopCPUProfile()
		if err := writeAllocs(filepath.Join(m.cfg.ProfileDir, m.cfg.profileName(m.workload, m.target)+".allocs")); err != nil {
			return res, fmt.Errorf("profile: %w", err)
		}
	}
	res.Elapsed = end.Sub(start)
	res.Output = m.verify.outputAtComplete()
	if m.afterComplete != nil {
		if err := m.afterComplete(ctx, t, dir, p); err != nil {
			return res, fmt.Errorf("after the output was complete: %w\n%s", err, p.describe())
		}
	}

	stopped = true
	if err := p.stop(); err != nil {
		return res, fmt.Errorf("stop: %w", err)
	}
	// The output must stay right: read it to its end and check again.
	if err := m.verify.recheck(ctx, t.addrs); err != nil {
		return res, fmt.Errorf("output after stop: %w", err)
	}
	return res, nil
}

// processCPU returns the CPU time (user + system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startProfile starts a CPU profile into dir/name.pprof; the returned
// function stops it (if still running) and closes the file.
func startProfile(dir, name string) (func(), error) {
	return startCapture(filepath.Join(dir, name+".pprof"), "profile", pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startCapture creates path and starts writing a capture (a CPU profile,
// an execution trace) to it; the returned function stops the capture and
// closes the file. kind names the capture in errors.
func startCapture(path, kind string, start func(io.Writer) error, stop func()) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	return func() {
		stop()
		_ = f.Close()
	}, nil
}

// waitVerifier waits for the verifier's verdict, checking every 100ms
// whether the processor stopped with an error.
func waitVerifier(vdone <-chan error, p processor) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-vdone:
			if err != nil {
				return fmt.Errorf("output: %w", err)
			}
			return nil
		case <-tick.C:
			if err := p.failed(); err != nil {
				return err
			}
		}
	}
}

// waitUntil polls cond every 20ms until it is true or fails, or ctx ends.
func waitUntil(ctx context.Context, cond func() (bool, error)) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// measureCount runs the windowed count on target name over in.
func measureCount(ctx context.Context, cfg pipelineConfig, name string, in *countInput) (pipelineResult, error) {
	m := measured{cfg: cfg, workload: "count", target: name, in: in.input,
		topics: []string{orders.InputTopic, orders.UpdatesTopic},
		verify: newCountVerifier(in.want)}
	switch name {
	case "weir", "weir-eos":
		eos := name == "weir-eos"
		m.verify.committed = eos
		m.start = func(t *target, dir string) (processor, error) {
			return startWeir(int(cfg.Partitions), func() (*runtime.Application, error) {
				topo, err := orders.Topology(false)
				if err != nil {
					return nil, err
				}
				opts := weirOptions(cfg, t, "bench-orders-per-minute", dir)
				if eos {
					opts = append(opts, runtime.ExactlyOnce())
				}
				return runtime.New(topo, opts...)
			})
		}
	case "baseline", "baseline-eos":
		eos := name == "baseline-eos"
		m.verify.committed = eos
		m.start = func(t *target, _ string) (processor, error) { return startCountBaseline(cfg, t.addrs, eos) }
	}
	r, err := m.run(ctx)
	r.Workload = "count"
	return r, err
}

func printPipeline(w io.Writer, cfg pipelineConfig, res []pipelineResult) {
	rounds := max(cfg.Rounds, 1)
	fmt.Fprintf(w, "pipeline workload: %d orders over %d customers, %d partitions, %v of event time, %.0f%% up to %v out of order; join: %d orders + %d payments, grace %v; commit interval %v, Weir fsync=%s; %d round(s)\n\n",
		cfg.Orders, cfg.Customers, cfg.Partitions, cfg.Span, cfg.OutOfOrder*100, cfg.Lateness, cfg.JoinOrders, cfg.JoinOrders, cfg.joinGrace(), cfg.Commit, cfg.Fsync, rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tworkload\ttarget\tinput records\toutput records\tproduce\tend to end\trecords/s\tprocess CPU\tCPU µs/record\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%v\t%v\t%.0f\t%v\t%.2f\t\n", max(r.Round, 1), r.Workload, r.Target, r.Input, r.Output,
			r.Produce.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond), r.Rate(),
			r.CPU.Round(time.Millisecond), r.cpuPerRecord())
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, wl := range []string{"count", "join"} {
		ratio := func(label, a, b string) {
			// The rounds' ratios, each of two runs of the same round.
			var rates, cpus []float64
			for round := 1; round <= rounds; round++ {
				var x, y *pipelineResult
				for i := range res {
					r := &res[i]
					if r.Workload == wl && max(r.Round, 1) == round {
						switch r.Target {
						case a:
							x = r
						case b:
							y = r
						}
					}
				}
				if x != nil && y != nil {
					rates = append(rates, x.Rate()/y.Rate())
					cpus = append(cpus, x.cpuPerRecord()/y.cpuPerRecord())
				}
			}
			switch {
			case len(rates) == 0:
			case rounds == 1:
				fmt.Fprintf(w, "%s, %s: %.2fx (end-to-end records/s); CPU per input record %.2fx\n", wl, label, rates[0], cpus[0])
			default:
				fmt.Fprintf(w, "%s, %s (median of %d rounds' ratios): %.2fx (end-to-end records/s; rounds %s); CPU per input record %.2fx (%s)\n",
					wl, label, len(rates), median(rates), ratioList(rates), median(cpus), ratioList(cpus))
			}
		}
		ratio("Weir/baseline", "weir", "baseline")
		ratio("Weir exactly-once/Weir at-least-once", "weir-eos", "weir")
		ratio("Weir exactly-once/baseline exactly-once", "weir-eos", "baseline-eos")
	}
}

// cpuPerRecord is the process's CPU time per input record, in µs.
func (r pipelineResult) cpuPerRecord() float64 {
	return float64(r.CPU.Microseconds()) / float64(r.Input)
}

// ratioList renders ratios in round order.
func ratioList(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}

// sortedDiff renders up to 10 lines of differences, sorted.
func sortedDiff(lines []string) string {
	sort.Strings(lines)
	extra := ""
	if len(lines) > 10 {
		extra = fmt.Sprintf("  ... and %d more\n", len(lines)-10)
		lines = lines[:10]
	}
	s := ""
	for _, l := range lines {
		s += "  " + l + "\n"
	}
	return s + extra
}

// countKeySerde and countValueSerde are the output topic's serdes, shared
// by the Weir topology and the baseline.
var (
	countKeySerde   = orders.CountKeySerde()
	countValueSerde = serde.Int64()
)

func windowedKey(customer string, start int64) dsl.Windowed[string] {
	return dsl.Windowed[string]{Key: customer, Window: dsl.Window{
		Start: time.UnixMilli(start), End: time.UnixMilli(start + orders.Window.Milliseconds())}}
}
