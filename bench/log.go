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
fixed rate while a consumer reads (produce-ack and end-to-end latency).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	f.StringVar(&cfg.ProfileDir, "profile-dir", "", "write a CPU profile of each throughput phase to this directory as log-<size>-<target>-<produce|consume>.pprof")
	return cmd
}

// logResult is what one target measured for one record size.
type logResult struct {
	Target      string
	Size        int
	ProduceRate float64 // records/s
	ConsumeRate float64 // records/s
	// ProduceCPU and ConsumeCPU are the process's CPU time (user +
	// system) per record in the throughput phases: broker and client
	// together, since both run in this process; the client's share is the
	// same for every target.
	ProduceCPU, ConsumeCPU time.Duration
	ProduceP50             time.Duration
	ProduceP99             time.Duration
	EndToEndP50            time.Duration
	EndToEndP99            time.Duration
	LatencyCount           int // records measured in the fixed-rate phase
}

// target is a running broker to measure.
type target struct {
	name  string
	addrs []string
	close func()
}

func startTarget(name string, cfg logConfig) (*target, error) {
	switch name {
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
	case "kfake":
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("bench: kfake: %w", err)
		}
		return &target{name: name, addrs: c.ListenAddrs(), close: c.Close}, nil
	default:
		return nil, fmt.Errorf("bench: unknown target %q (want weir or kfake)", name)
	}
}

// runLog measures every target for every size. Targets run one after the
// other, never at once, so that they do not share the machine.
func runLog(ctx context.Context, cfg logConfig, progress io.Writer) ([]logResult, error) {
	if cfg.Records < 1 || cfg.Partitions < 1 || cfg.Rate < 1 {
		return nil, errors.New("bench: --records, --partitions and --rate must be positive")
	}
	var out []logResult
	for _, size := range cfg.Sizes {
		if size < 8 {
			return nil, fmt.Errorf("bench: record size %d below 8 bytes (the send time is stored in the value)", size)
		}
		for _, name := range cfg.Targets {
			fmt.Fprintf(progress, "bench: %s, %d-byte records...\n", name, size)
			t, err := startTarget(name, cfg)
			if err != nil {
				return nil, err
			}
			r, err := measureTarget(ctx, t, cfg, size)
			t.close()
			if err != nil {
				return nil, fmt.Errorf("bench: %s, %d-byte records: %w", name, size, err)
			}
			out = append(out, r)
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
	created, err := admin.CreateTopics(ctx, cfg.Partitions, 1, nil, tput, lat)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		return res, fmt.Errorf("create topics: %w", err)
	}

	values := randomValues(size, 4096)
	// phase runs one throughput phase, measuring its CPU per record and
	// profiling it when asked.
	phase := func(name string, run func() (float64, error)) (float64, time.Duration, error) {
		if cfg.ProfileDir != "" {
			stop, err := startProfile(cfg.ProfileDir, fmt.Sprintf("log-%d-%s-%s", size, t.name, name))
			if err != nil {
				return 0, 0, err
			}
			defer stop()
		}
		cpu := processCPU()
		rate, err := run()
		return rate, (processCPU() - cpu) / time.Duration(cfg.Records), err
	}
	res.ProduceRate, res.ProduceCPU, err = phase("produce", func() (float64, error) {
		return produceAll(ctx, t.addrs, tput, cfg.Records, values)
	})
	if err != nil {
		return res, fmt.Errorf("produce: %w", err)
	}
	res.ConsumeRate, res.ConsumeCPU, err = phase("consume", func() (float64, error) {
		return consumeAll(ctx, t.addrs, tput, cfg.Records)
	})
	if err != nil {
		return res, fmt.Errorf("consume: %w", err)
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
	fmt.Fprintf(w, "log workload: %d records per throughput phase, %d partitions, acks=all, idempotent, no compression, Weir fsync=%s; latency at %d records/s for %v\n\n",
		cfg.Records, cfg.Partitions, cfg.Fsync, cfg.Rate, cfg.LatencyFor)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\ttarget\tproduce rec/s\tconsume rec/s\tproduce CPU/rec\tconsume CPU/rec\tproduce p50\tproduce p99\te2e p50\te2e p99\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%v\t%v\t%v\t%v\t%v\t%v\t\n", r.Size, r.Target, r.ProduceRate, r.ConsumeRate,
			r.ProduceCPU, r.ConsumeCPU,
			r.ProduceP50.Round(10*time.Microsecond), r.ProduceP99.Round(10*time.Microsecond),
			r.EndToEndP50.Round(10*time.Microsecond), r.EndToEndP99.Round(10*time.Microsecond))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, size := range cfg.Sizes {
		var weir, peer *logResult
		for i := range res {
			switch {
			case res[i].Size == size && res[i].Target == "weir":
				weir = &res[i]
			case res[i].Size == size && res[i].Target == "kfake":
				peer = &res[i]
			}
		}
		if weir == nil || peer == nil {
			continue
		}
		fmt.Fprintf(w, "%d-byte records, Weir/kfake: produce %.2fx, consume %.2fx, produce p99 %.2fx, e2e p99 %.2fx (latency ratios: lower is better)\n",
			size, weir.ProduceRate/peer.ProduceRate, weir.ConsumeRate/peer.ConsumeRate,
			weir.ProduceP99.Seconds()/peer.ProduceP99.Seconds(), weir.EndToEndP99.Seconds()/peer.EndToEndP99.Seconds())
		fmt.Fprintf(w, "%d-byte records, Weir/kfake process CPU per record (client included; lower is better): produce %.2fx, consume %.2fx\n",
			size, weir.ProduceCPU.Seconds()/peer.ProduceCPU.Seconds(), weir.ConsumeCPU.Seconds()/peer.ConsumeCPU.Seconds())
	}
}
