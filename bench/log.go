package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker"
)

func init() { workloads = append(workloads, newLogCmd) }

// logConfig describes one run of the log workload.
type logConfig struct {
	Records    int           // records per produce/consume phase
	Sizes      []int         // record value sizes in bytes
	Partitions int32         // partitions of each benchmark topic
	Rate       int           // records/s for the fixed-rate latency phase
	LatencyFor time.Duration // length of the fixed-rate phase
	Fsync      string        // Weir's fsync policy
	DataDir    string        // parent of Weir's data directory; "" = os.TempDir()
	Targets    []string      // "weir", "kfake"
	ProfileDir string        // where to write CPU profiles of the throughput phases; "" = none
	TraceDir   string        // where to write execution traces of the throughput phases; "" = none
	// ConsumeGCHeadroom, if positive, gives the collector the same
	// headroom over the live heap in every target's consume phase (see
	// measureTarget); 0 leaves GOGC's pacing.
	ConsumeGCHeadroomMiB int64

	Rounds            int      // times every target is measured, the order rotating each round
	BaselineRef       string   // git ref whose weir binary is the "baseline" target
	Cluster           int      // nodes of the "cluster" target (0: none)
	ReplicationFactor int16    // replication factor of the benchmark topics
	Brokers           []string // the "external" target's addresses: a broker already running
	bins              *binaries
	// procProfile, when set, makes every broker process of a target write a
	// CPU profile of its whole run to <procProfile>-node<i>.pprof.
	procProfile string
}

func newLogCmd() *cobra.Command {
	cfg := logConfig{}
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Produce and consume throughput, produce and end-to-end latency: Weir broker vs kfake",
		Long: `Runs franz-go producers and consumers (acks=all, idempotent, no compression)
against an in-process Weir broker and, in the same run, against franz-go's
in-memory kfake cluster, and prints both with the ratio Weir/kfake.

Per record size: produce N incompressible records as fast as the client can
(throughput), consume them back from the start (throughput), then produce at a
fixed rate while a consumer reads (produce-ack and end-to-end latency).

Builds of the broker can be compared as separate processes: the targets
"tree" (the working tree's weir binary, one node), "baseline" (the binary
at --baseline-ref, one node), "cluster" (the working tree's binary as
--cluster N nodes, each a controller voter and a broker), "cluster-rf1"
(the same cluster, its topics at replication factor 1) and
"cluster-baseline" (the --baseline-ref binary as that cluster). --baseline-ref or
--cluster alone selects tree, baseline and cluster as the targets. With
--rounds N every target is measured N times, the order rotating each round,
and the medians and the median of each round's ratios are printed; for
process targets the brokers' own CPU time is reported beside this
process's (the clients'). "kfakeproc" is kfake in a process of its own:
compared with "tree", neither broker shares the clients' heap (in-process
kfake holds every record on it, so the clients' garbage collector runs
less often beside it; the GC columns count the collections per phase).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("targets") && (cfg.BaselineRef != "" || cfg.Cluster > 0) {
				cfg.Targets = []string{targetTree}
				if cfg.BaselineRef != "" {
					cfg.Targets = append(cfg.Targets, targetBaseline)
				}
				if cfg.Cluster > 0 {
					cfg.Targets = append(cfg.Targets, targetCluster)
				}
			}
			res, err := runLog(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			printLog(cmd.OutOrStdout(), cfg, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Records, "records", 500_000, "records per throughput phase")
	f.IntSliceVar(&cfg.Sizes, "sizes", []int{100, 1024}, "record value sizes in bytes")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions per benchmark topic")
	f.IntVar(&cfg.Rate, "rate", 20_000, "records/s in the fixed-rate latency phase")
	f.DurationVar(&cfg.LatencyFor, "latency-for", 5*time.Second, "length of the fixed-rate latency phase")
	f.StringVar(&cfg.Fsync, "fsync", string(broker.FsyncGroup), "Weir's fsync policy: group, interval or never")
	f.StringVar(&cfg.DataDir, "data-dir", "", "where Weir's data directory is made (default: the system temp dir; use a real disk)")
	f.StringSliceVar(&cfg.Targets, "targets", []string{"weir", "kfake"}, "brokers to measure")
	f.StringVar(&cfg.ProfileDir, "profile-dir", "", "write a CPU profile of each throughput phase to this directory as log-<size>-<target>-<produce|consume>.pprof (this process: the clients, and an in-process broker), with its allocations (go tool pprof -base X.allocs-before X.allocs); broker processes write one of their whole run each, log-<size>-<target>-r<round>-node<i>.pprof")
	f.StringVar(&cfg.TraceDir, "trace-dir", "", "write an execution trace (runtime/trace) of each throughput phase to this directory as log-<size>-<target>-<produce|consume>.trace: when this process's goroutines ran, waited, blocked in system calls or stood runnable without a P (go tool trace)")
	f.Int64Var(&cfg.ConsumeGCHeadroomMiB, "consume-gc-headroom-mib", 256, "in the consume phase, collect garbage when the process's memory grows this much over its live heap at the phase's start, alike for every target (GOGC off, a memory limit); 0: the runtime's GOGC pacing, under which an in-process kfake's retained records raise the client's heap goal")
	f.IntVar(&cfg.Rounds, "rounds", 1, "times every target is measured, in rotating order")
	f.StringVar(&cfg.BaselineRef, "baseline-ref", "", "git ref to build the baseline weir binary at (target \"baseline\")")
	f.IntVar(&cfg.Cluster, "cluster", 0, "nodes of the \"cluster\" target: weir broker processes that are all controller voters")
	f.Int16Var(&cfg.ReplicationFactor, "replication-factor", 1, "replication factor of the benchmark topics (with --cluster, of targets cluster and cluster-baseline; single-node targets and cluster-rf1 beside them use 1)")
	f.StringSliceVar(&cfg.Brokers, "brokers", nil, "addresses of a broker already running, measured as target \"external\" (e.g. under strace); its topics bench-tput-<size> and bench-lat-<size> must not exist")
	return cmd
}

// logResult is what one target measured for one record size.
type logResult struct {
	Round       int
	Target      string
	Size        int
	ProduceRate float64 // records/s
	ConsumeRate float64 // records/s
	// ProduceCPU and ConsumeCPU are the process's CPU time (user +
	// system) per record in the throughput phases: broker and client
	// together, since both run in this process; the client's share is the
	// same for every target.
	ProduceCPU, ConsumeCPU time.Duration
	// ProduceGC and ConsumeGC are the garbage collections this process
	// ran during the throughput phases.
	ProduceGC, ConsumeGC uint64
	// BrokerProduceCPU and BrokerConsumeCPU are, for targets run as
	// processes, the broker processes' CPU time per record (all nodes
	// together); ProduceCPU and ConsumeCPU are then the clients' alone.
	BrokerProduceCPU, BrokerConsumeCPU time.Duration
	ProduceP50                         time.Duration
	ProduceP99                         time.Duration
	EndToEndP50                        time.Duration
	EndToEndP99                        time.Duration
	LatencyCount                       int // records measured in the fixed-rate phase
}

// target is a running broker to measure.
type target struct {
	name  string
	addrs []string
	close func()
	pids  func() []int // the broker processes; nil when in this process
}

func startTarget(ctx context.Context, name string, cfg logConfig) (*target, error) {
	if isProcTarget(name) && name != targetKfakeProc && cfg.bins == nil {
		return nil, fmt.Errorf("bench: target %s runs weir binaries, which only the log workload builds", name)
	}
	switch name {
	case targetTree:
		return startProcTarget(ctx, name, cfg.bins.tree, 1, false, cfg)
	case targetBaseline:
		if cfg.bins.baseline == "" {
			return nil, errors.New("bench: target baseline needs --baseline-ref")
		}
		return startProcTarget(ctx, name, cfg.bins.baseline, 1, false, cfg)
	case targetCluster, targetClusterRF1:
		if cfg.Cluster < 1 {
			return nil, fmt.Errorf("bench: target %s needs --cluster N", name)
		}
		return startProcTarget(ctx, name, cfg.bins.tree, cfg.Cluster, true, cfg)
	case targetClusterBaseline:
		if cfg.Cluster < 1 || cfg.bins.baseline == "" {
			return nil, errors.New("bench: target cluster-baseline needs --cluster N and --baseline-ref")
		}
		return startProcTarget(ctx, name, cfg.bins.baseline, cfg.Cluster, true, cfg)
	case "weir":
		dir, err := os.MkdirTemp(cfg.DataDir, "weir-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: data dir: %w", err)
		}
		b, err := broker.Open(broker.Options{
			Listen:  "127.0.0.1:0",
			DataDir: dir,
			Fsync:   broker.FsyncPolicy(cfg.Fsync),
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		return &target{name: name, addrs: []string{b.Addr()}, close: func() {
			_ = b.Close()
			_ = os.RemoveAll(dir)
		}}, nil
	case "external":
		if len(cfg.Brokers) == 0 {
			return nil, errors.New("bench: target external needs --brokers")
		}
		return &target{name: name, addrs: cfg.Brokers, close: func() {}}, nil
	case targetKfakeProc:
		return startKfakeProc(ctx, cfg)
	case "kfake":
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("bench: kfake: %w", err)
		}
		return &target{name: name, addrs: c.ListenAddrs(), close: c.Close}, nil
	default:
		return nil, fmt.Errorf("bench: unknown target %q (want weir, kfake, tree, baseline, cluster, cluster-rf1, cluster-baseline, kfakeproc or external)", name)
	}
}

// runLog measures every target for every size. Targets run one after the
// other, never at once, so that they do not share the machine.
func runLog(ctx context.Context, cfg logConfig, progress io.Writer) ([]logResult, error) {
	if cfg.Records < 1 || cfg.Partitions < 1 || cfg.Rate < 1 {
		return nil, errors.New("bench: --records, --partitions and --rate must be positive")
	}
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	if cfg.ReplicationFactor < 1 {
		cfg.ReplicationFactor = 1
	}
	for _, size := range cfg.Sizes {
		if size < 8 {
			return nil, fmt.Errorf("bench: record size %d below 8 bytes (the send time is stored in the value)", size)
		}
	}
	needBins := false
	for _, name := range cfg.Targets {
		needBins = needBins || isProcTarget(name)
	}
	if needBins && cfg.bins == nil {
		bins, err := buildBinaries(cfg.BaselineRef, func(f string, a ...any) { fmt.Fprintf(progress, f+"\n", a...) })
		if err != nil {
			return nil, err
		}
		defer bins.cleanup()
		cfg.bins = bins
	}
	var out []logResult
	for round := range cfg.Rounds {
		for _, size := range cfg.Sizes {
			for _, name := range roundOrder(cfg.Targets, round) {
				fmt.Fprintf(progress, "bench: round %d/%d, %s, %d-byte records...\n", round+1, cfg.Rounds, name, size)
				tcfg := cfg
				// NB: a baseline binary may predate weir broker --cpu-profile.
				if cfg.ProfileDir != "" && isProcTarget(name) && name != targetBaseline && name != targetClusterBaseline {
					tcfg.procProfile = filepath.Join(cfg.ProfileDir, fmt.Sprintf("log-%d-%s-r%d", size, name, round+1))
				}
				t, err := startTarget(ctx, name, tcfg)
				if err != nil {
					return nil, err
				}
				r, err := measureTarget(ctx, t, cfg, size)
				t.close()
				if err != nil {
					return nil, fmt.Errorf("bench: %s, %d-byte records: %w", name, size, err)
				}
				r.Round = round
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func measureTarget(ctx context.Context, t *target, cfg logConfig, size int) (logResult, error) {
	res := logResult{Target: t.name, Size: size}
	adm, err := kgo.NewClient(kgo.SeedBrokers(t.addrs...))
	if err != nil {
		return res, err
	}
	defer adm.Close()
	admin := kadm.NewClient(adm)
	tput, lat := fmt.Sprintf("bench-tput-%d", size), fmt.Sprintf("bench-lat-%d", size)
	rf := cfg.ReplicationFactor
	if cfg.Cluster > 0 && t.name != targetCluster && t.name != targetClusterBaseline {
		rf = 1 // a single node or cluster-rf1 beside the cluster: the replication factor is the cluster's alone
	}
	if err := createLogTopics(ctx, admin, cfg.Partitions, rf, tput, lat); err != nil {
		return res, err
	}

	values := randomValues(size, 4096)
	// phase runs one throughput phase, measuring its CPU per record and
	// profiling it when asked.
	//
	// Every phase starts from a collected heap, so that no phase pays for
	// the garbage of the one before. In one process the clients share the
	// collector with an in-process broker, and under GOGC the heap goal is
	// twice the live heap: beside kfake, which keeps every record produced
	// on the heap, the consumer's garbage is collected several times less
	// often than beside Weir, whose records are in files. The consume
	// phase therefore (by default) gives every target the same headroom:
	// GOGC off and a memory limit of the memory in use at the phase's
	// start plus ConsumeGCHeadroomMiB (neither broker's live heap grows
	// while it serves fetches). The produce phase keeps GOGC's pacing: a
	// broker that keeps its records on the heap pays for that there.
	phase := func(name string, gcs *uint64, run func() (float64, error)) (float64, time.Duration, time.Duration, error) {
		runtime.GC()
		if name == "consume" && cfg.ConsumeGCHeadroomMiB > 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			pct := debug.SetGCPercent(-1)
			limit := debug.SetMemoryLimit(int64(ms.Sys-ms.HeapReleased) + cfg.ConsumeGCHeadroomMiB<<20)
			defer func() {
				debug.SetMemoryLimit(limit)
				debug.SetGCPercent(pct)
			}()
		}
		if cfg.ProfileDir != "" {
			base := fmt.Sprintf("log-%d-%s-%s", size, t.name, name)
			stop, err := startProfile(cfg.ProfileDir, base)
			if err != nil {
				return 0, 0, 0, err
			}
			defer stop()
			// The phase's allocations: `go tool pprof -base X.allocs-before X.allocs`.
			if err := writeAllocs(filepath.Join(cfg.ProfileDir, base+".allocs-before")); err != nil {
				return 0, 0, 0, err
			}
			defer func() {
				runtime.GC() // the profile is as of the last collection
				_ = writeAllocs(filepath.Join(cfg.ProfileDir, base+".allocs"))
			}()
		}
		if cfg.TraceDir != "" {
			stop, err := startTrace(cfg.TraceDir, fmt.Sprintf("log-%d-%s-%s", size, t.name, name))
			if err != nil {
				return 0, 0, 0, err
			}
			defer stop()
		}
		var pids []int
		if t.pids != nil {
			pids = t.pids()
		}
		cpu, bcpu, gc := processCPU(), procCPU(pids), gcCycles()
		rate, err := run()
		n := time.Duration(cfg.Records)
		*gcs = gcCycles() - gc
		return rate, (processCPU() - cpu) / n, (procCPU(pids) - bcpu) / n, err
	}
	// One record to every partition first, untimed: a cluster may name a
	// partition's leader before that broker serves it, and the client then
	// waits out its metadata refresh (seconds) inside the timed phase.
	if err := warmPartitions(ctx, t.addrs, tput, cfg.Partitions, values[0]); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	res.ProduceRate, res.ProduceCPU, res.BrokerProduceCPU, err = phase("produce", &res.ProduceGC, func() (float64, error) {
		return produceAll(ctx, t.addrs, tput, cfg.Records, values)
	})
	if err != nil {
		return res, fmt.Errorf("produce: %w", err)
	}
	res.ConsumeRate, res.ConsumeCPU, res.BrokerConsumeCPU, err = phase("consume", &res.ConsumeGC, func() (float64, error) {
		return consumeAll(ctx, t.addrs, tput, cfg.Records+int(cfg.Partitions)) // the warm-up's records too
	})
	if err != nil {
		return res, fmt.Errorf("consume: %w", err)
	}
	if cfg.LatencyFor <= 0 {
		return res, nil
	}
	prod, e2e, err := fixedRate(ctx, t.addrs, lat, cfg.Rate, cfg.LatencyFor, values)
	if err != nil {
		return res, fmt.Errorf("fixed-rate phase: %w", err)
	}
	res.LatencyCount = len(e2e)
	res.ProduceP50, res.ProduceP99 = percentile(prod, 50), percentile(prod, 99)
	res.EndToEndP50, res.EndToEndP99 = percentile(e2e, 50), percentile(e2e, 99)
	return res, nil
}

// startTrace starts an execution trace written to dir/name.trace and
// returns the function that stops it.
func startTrace(dir, name string) (func(), error) {
	return startCapture(filepath.Join(dir, name+".trace"), "trace", trace.Start, trace.Stop)
}

// writeAllocs writes the process's allocation profile (every allocation
// since the start, sampled) to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	err = pprof.Lookup("allocs").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// randomValues returns n incompressible values of the given size.
func randomValues(size, n int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = make([]byte, size)
		_, _ = rand.Read(vs[i])
	}
	return vs
}

func producer(addrs []string) (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(addrs...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default, stated: idempotence needs it
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
}

// warmPartitions produces one record to each partition of topic and waits
// for every ack.
func warmPartitions(ctx context.Context, addrs []string, topic string, partitions int32, value []byte) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rs := make([]*kgo.Record, partitions)
	for p := range partitions {
		rs[p] = &kgo.Record{Topic: topic, Partition: p, Value: value}
	}
	return cl.ProduceSync(ctx, rs...).FirstErr()
}

// produceAll produces n records round-robin over the values as fast as one
// client can and returns records/s from the first Produce to the last ack.
func produceAll(ctx context.Context, addrs []string, topic string, n int, values [][]byte) (float64, error) {
	cl, err := producer(addrs)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := range n {
		r := &kgo.Record{Topic: topic, Value: values[i%len(values)]}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return 0, *p
	}
	return float64(n) / elapsed.Seconds(), nil
}

// consumeAll reads n records of topic from the start with a fresh client and
// returns records/s from the first poll to the n-th record.
func consumeAll(ctx context.Context, addrs []string, topic string, n int) (float64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	got := 0
	start := time.Now()
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("after %d of %d records: %w", got, n, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return 0, fmt.Errorf("fetch %s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		got += fs.NumRecords()
	}
	if got != n {
		return 0, fmt.Errorf("consumed %d records, produced %d", got, n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// fixedRate produces at rate records/s for d while one consumer reads the
// same topic, and returns every record's produce-to-ack latency and
// produce-to-consume latency. The send time travels in the first 8 bytes of
// the value, in nanoseconds, since record timestamps are milliseconds.
func fixedRate(ctx context.Context, addrs []string, topic string, rate int, d time.Duration, values [][]byte) (prod, e2e []time.Duration, err error) {
	total := int(float64(rate) * d.Seconds())
	if total < 1 {
		return nil, nil, errors.New("rate × duration is below one record")
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	defer cons.Close()
	cl, err := producer(addrs)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(ctx, d+2*time.Minute)
	defer cancel()
	consumed := make(chan error, 1)
	e2e = make([]time.Duration, 0, total)
	go func() {
		for len(e2e) < total {
			fs := cons.PollFetches(ctx)
			now := time.Now()
			if ctx.Err() != nil {
				consumed <- fmt.Errorf("consumer: after %d of %d records: %w", len(e2e), total, ctx.Err())
				return
			}
			if errs := fs.Errors(); len(errs) > 0 {
				consumed <- fmt.Errorf("consumer: %w", errs[0].Err)
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))
				e2e = append(e2e, now.Sub(sent))
			})
		}
		consumed <- nil
	}()

	var mu sync.Mutex
	prod = make([]time.Duration, 0, total)
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	// A tick every millisecond releases the records due by then, so that the
	// rate holds without a timer per record.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for sent < total {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case now := <-tick.C:
			due := min(total, int(now.Sub(start).Seconds()*float64(rate)))
			for ; sent < due; sent++ {
				v := slices.Clone(values[sent%len(values)])
				at := time.Now()
				binary.BigEndian.PutUint64(v, uint64(at.UnixNano()))
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, func(_ *kgo.Record, err error) {
					lat := time.Since(at)
					if err != nil {
						firstErr.CompareAndSwap(nil, &err)
					}
					mu.Lock()
					prod = append(prod, lat)
					mu.Unlock()
					wg.Done()
				})
			}
		}
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, nil, *p
	}
	if err := <-consumed; err != nil {
		return nil, nil, err
	}
	return prod, e2e, nil
}

// percentile returns the p-th percentile of ds (nearest rank); it sorts ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := (len(ds)*p + 99) / 100
	return ds[max(0, min(len(ds)-1, i-1))]
}

func printLog(w io.Writer, cfg logConfig, res []logResult) {
	fmt.Fprintf(w, "log workload: %d records per throughput phase, %d partitions, replication factor %d, acks=all, idempotent, no compression, Weir fsync=%s; latency at %d records/s for %v; %d round(s)\n",
		cfg.Records, cfg.Partitions, max(1, cfg.ReplicationFactor), cfg.Fsync, cfg.Rate, cfg.LatencyFor, max(1, cfg.Rounds))
	if cfg.ConsumeGCHeadroomMiB > 0 {
		fmt.Fprintf(w, "consume phase: the collector's headroom %d MiB over the live heap for every target (--consume-gc-headroom-mib 0: GOGC's pacing)\n", cfg.ConsumeGCHeadroomMiB)
	} else {
		fmt.Fprintln(w, "consume phase: GOGC's pacing (an in-process kfake's retained records raise the client's heap goal)")
	}
	if cfg.BaselineRef != "" {
		fmt.Fprintf(w, "baseline: weir built at %s; tree: weir built from the working tree", cfg.BaselineRef)
		if cfg.Cluster > 0 {
			fmt.Fprintf(w, "; cluster: %d tree nodes, each a controller voter and a broker", cfg.Cluster)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	procs := false
	for _, r := range res {
		procs = procs || r.BrokerProduceCPU > 0 || r.BrokerConsumeCPU > 0
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "round\tsize\ttarget\tproduce rec/s\tconsume rec/s\tproduce CPU/rec\tconsume CPU/rec\tproduce GCs\tconsume GCs\t"
	if procs {
		head += "broker produce CPU/rec\tbroker consume CPU/rec\t"
	}
	fmt.Fprintln(tw, head+"produce p50\tproduce p99\te2e p50\te2e p99\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%.0f\t%.0f\t%v\t%v\t%d\t%d\t", r.Round+1, r.Size, r.Target, r.ProduceRate, r.ConsumeRate, r.ProduceCPU, r.ConsumeCPU, r.ProduceGC, r.ConsumeGC)
		if procs {
			fmt.Fprintf(tw, "%v\t%v\t", r.BrokerProduceCPU, r.BrokerConsumeCPU)
		}
		fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t\n",
			r.ProduceP50.Round(10*time.Microsecond), r.ProduceP99.Round(10*time.Microsecond),
			r.EndToEndP50.Round(10*time.Microsecond), r.EndToEndP99.Round(10*time.Microsecond))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	if cfg.Rounds > 1 {
		fmt.Fprintln(w, "medians over the rounds:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "size\ttarget\tproduce rec/s\tconsume rec/s\tproduce CPU/rec\tconsume CPU/rec\tbroker produce CPU/rec\tbroker consume CPU/rec\t")
		for _, size := range cfg.Sizes {
			for _, name := range cfg.Targets {
				m := func(f func(logResult) float64) float64 { return median(collect(res, size, name, f)) }
				fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%v\t%v\t%v\t%v\t\n", size, name,
					m(produceRate), m(consumeRate), dur(m(produceCPU)), dur(m(consumeCPU)),
					dur(m(brokerProduceCPU)), dur(m(brokerConsumeCPU)))
			}
		}
		_ = tw.Flush()
		fmt.Fprintln(w)
	}
	for _, size := range cfg.Sizes {
		for _, pair := range ratioPairs {
			num, den := pair[0], pair[1]
			if !slices.Contains(cfg.Targets, num) || !slices.Contains(cfg.Targets, den) {
				continue
			}
			label := num + "/" + den
			if num == "weir" {
				label = "Weir/" + den
			}
			ratio := func(f func(logResult) float64) float64 { return medianRatio(res, size, num, den, f) }
			what := "in the run"
			if cfg.Rounds > 1 {
				what = fmt.Sprintf("median of %d rounds' ratios", cfg.Rounds)
			}
			fmt.Fprintf(w, "%d-byte records, %s (%s): produce %.2fx, consume %.2fx", size, label, what, ratio(produceRate), ratio(consumeRate))
			if cfg.LatencyFor > 0 {
				fmt.Fprintf(w, ", produce p99 %.2fx, e2e p99 %.2fx (latency ratios: lower is better)", ratio(produceP99), ratio(e2eP99))
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "%d-byte records, %s process CPU per record (client included for in-process brokers; lower is better): produce %.2fx, consume %.2fx\n",
				size, label, ratio(produceCPU), ratio(consumeCPU))
			if isProcTarget(num) && isProcTarget(den) {
				fmt.Fprintf(w, "%d-byte records, %s broker processes' CPU per record (lower is better): produce %.2fx, consume %.2fx\n",
					size, label, ratio(brokerProduceCPU), ratio(brokerConsumeCPU))
			}
		}
	}
}

func isProcTarget(name string) bool {
	switch name {
	case targetTree, targetBaseline, targetCluster, targetClusterRF1, targetClusterBaseline, targetKfakeProc:
		return true
	}
	return false
}

// ratioPairs are the targets compared in the report, numerator first.
var ratioPairs = [][2]string{
	{"weir", "kfake"}, {targetTree, targetBaseline}, {targetCluster, targetTree}, {targetCluster, targetClusterRF1}, {targetCluster, targetClusterBaseline}, {targetTree, "kfake"}, {targetTree, targetKfakeProc},
}

func produceRate(r logResult) float64      { return r.ProduceRate }
func consumeRate(r logResult) float64      { return r.ConsumeRate }
func produceCPU(r logResult) float64       { return float64(r.ProduceCPU) }
func consumeCPU(r logResult) float64       { return float64(r.ConsumeCPU) }
func brokerProduceCPU(r logResult) float64 { return float64(r.BrokerProduceCPU) }
func brokerConsumeCPU(r logResult) float64 { return float64(r.BrokerConsumeCPU) }
func produceP99(r logResult) float64       { return float64(r.ProduceP99) }
func e2eP99(r logResult) float64           { return float64(r.EndToEndP99) }

func dur(ns float64) time.Duration { return time.Duration(ns) }

// collect returns f of every result of target at size, in round order.
func collect(res []logResult, size int, target string, f func(logResult) float64) []float64 {
	var out []float64
	for _, r := range res {
		if r.Size == size && r.Target == target {
			out = append(out, f(r))
		}
	}
	return out
}

// medianRatio returns the median over the rounds of f(num)/f(den), each
// ratio taken within one round; rounds missing either side, or whose
// denominator is zero, are left out.
func medianRatio(res []logResult, size int, num, den string, f func(logResult) float64) float64 {
	byRound := map[int][2]*logResult{}
	for i := range res {
		r := &res[i]
		if r.Size != size {
			continue
		}
		p := byRound[r.Round]
		switch r.Target {
		case num:
			p[0] = r
		case den:
			p[1] = r
		}
		byRound[r.Round] = p
	}
	var ratios []float64
	for _, p := range byRound {
		if p[0] != nil && p[1] != nil && f(*p[1]) != 0 {
			ratios = append(ratios, f(*p[0])/f(*p[1]))
		}
	}
	return median(ratios)
}

// gcCycles returns the garbage collections this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
