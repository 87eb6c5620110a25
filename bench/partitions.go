package main

// The partitions workload: what a broker costs as its partition count
// grows. One weir broker process per count; a topic of that many
// partitions gets one record batch per partition per second plus a steady
// load, and the workload reads the process's resident memory and open
// descriptors from /proc, then times its start-up after a clean stop
// (SIGTERM) and after a SIGKILL taken under load.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { workloads = append(workloads, newPartitionsCmd) }

type partitionsConfig struct {
	Counts       []int
	For          time.Duration
	SegmentBytes int
	RecordBytes  int
	Fsync        string
	DataDir      string
	BaselineRef  string
}

func newPartitionsCmd() *cobra.Command {
	cfg := partitionsConfig{}
	cmd := &cobra.Command{
		Use:   "partitions",
		Short: "A broker's throughput, memory, open files and start-up time at 100, 1,000 and 10,000 partitions",
		Long: `Per partition count: starts a weir broker process (built from the working
tree) on a fresh data directory, creates a topic of that many partitions
(replication factor 1, segment.bytes --segment-bytes so the load rolls
segments), and for --for sends one record batch to every partition each
second (a ticker producer, manual partitioner) beside a steady load (100-byte
records, as fast as acks=all allows, spread over the partitions). It
reports the steady load's records/s, the broker's resident memory (VmRSS)
before the topic, with the topic idle and at the end of the load, and its
open file descriptors at the end (/proc/PID/fd), then the sealed segments
on disk. Then it stops the broker (SIGTERM), restarts it and times the
start-up until every partition takes a produce; loads it again briefly,
SIGKILLs it under load, and times that start-up the same way.

The peer is the smallest count measured in the same run: per-partition
figures are differences against it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPartitions(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&cfg.Counts, "counts", []int{100, 1000, 10000}, "partition counts, one broker each")
	f.DurationVar(&cfg.For, "for", 15*time.Second, "how long each count is loaded")
	f.IntVar(&cfg.SegmentBytes, "segment-bytes", 16<<10, "the topic's segment.bytes (small, so the load seals many segments)")
	f.IntVar(&cfg.RecordBytes, "record-bytes", 100, "value size of the steady load's records")
	f.StringVar(&cfg.Fsync, "fsync", "group", "the broker's --fsync policy")
	f.StringVar(&cfg.DataDir, "data-dir", "", "where the broker's data directory goes (default: the system temp dir)")
	f.StringVar(&cfg.BaselineRef, "baseline-ref", "", "also measure the weir built at this git ref (e.g. main), each count right after the working tree's")
	return cmd
}

type partitionsResult struct {
	build                     string
	partitions                int
	recPerSec                 float64
	tickBatches               int64
	rssBase, rssIdle, rssLoad int64 // bytes
	fds, fdsBase              int
	segments                  int // .log files on disk
	cleanStart, killStart     time.Duration
	stop                      time.Duration // SIGTERM to exit
	stopKilled                bool          // did not exit within 5 minutes: killed
	err                       error         // the run failed (the row says where)
	killSegments              int
}

func runPartitions(ctx context.Context, cfg partitionsConfig, out, progress io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	say := func(f string, a ...any) { fmt.Fprintf(progress, f+"\n", a...) }
	bins, err := buildBinaries(cfg.BaselineRef, say)
	if err != nil {
		return err
	}
	defer bins.cleanup()
	builds := []struct{ name, bin string }{{"tree", bins.tree}}
	if bins.baseline != "" {
		builds = append(builds, struct{ name, bin string }{cfg.BaselineRef, bins.baseline})
	}
	var results []partitionsResult
	for _, n := range cfg.Counts {
		for _, b := range builds {
			say("bench: %s, partitions %d...", b.name, n)
			r, err := partitionsRun(ctx, b.bin, n, cfg, say)
			if err != nil {
				// Keep the other runs' figures.
				say("bench: %s, partitions %d: %v", b.name, n, err)
				r.err = err
			}
			r.build = b.name
			results = append(results, r)
		}
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "build\tpartitions\tsteady rec/s\ttick batches\tRSS no topic\tRSS idle\tRSS loaded\tfds before\tfds loaded\tsegments\tstop\tstart after stop\tstart after kill")
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t%d\tfailed: %.120s\n", r.build, r.partitions, strings.ReplaceAll(r.err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%v\t%v\n", r.build, r.partitions, r.recPerSec, r.tickBatches,
			mib(r.rssBase), mib(r.rssIdle), mib(r.rssLoad), r.fdsBase, r.fds, r.segments, stopText(r),
			r.cleanStart.Round(time.Millisecond), r.killStart.Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, b := range builds {
		var mine []partitionsResult
		for _, r := range results {
			if r.build == b.name && r.err == nil {
				mine = append(mine, r)
			}
		}
		if len(mine) < 2 {
			continue
		}
		p := mine[0]
		fmt.Fprintf(out, "%s:\n", b.name)
		for _, r := range mine[1:] {
			dn := float64(r.partitions - p.partitions)
			fmt.Fprintf(out, "%d vs %d partitions: steady rec/s %.2fx; idle RSS per added partition %.1f KiB; start after stop %.1fx, after kill %.1fx\n",
				r.partitions, p.partitions, r.recPerSec/p.recPerSec,
				float64((r.rssIdle-r.rssBase)-(p.rssIdle-p.rssBase))/dn/1024,
				float64(r.cleanStart)/float64(max(p.cleanStart, time.Millisecond)),
				float64(r.killStart)/float64(max(p.killStart, time.Millisecond)))
		}
	}
	return nil
}

func stopText(r partitionsResult) string {
	if r.stopKilled {
		return fmt.Sprintf("killed after %v", r.stop.Round(time.Second))
	}
	return r.stop.Round(time.Millisecond).String()
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func partitionsRun(ctx context.Context, bin string, n int, cfg partitionsConfig, say func(string, ...any)) (partitionsResult, error) {
	res := partitionsResult{partitions: n}
	dir, err := os.MkdirTemp(cfg.DataDir, "weir-bench-partitions-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	addr, err := freeAddr()
	if err != nil {
		return res, err
	}
	data := filepath.Join(dir, "data")
	var p *brokerProc
	start := func(name string) (time.Duration, error) {
		args := []string{"broker", "--listen", addr, "--data-dir", data, "--fsync", cfg.Fsync, "--log-level", "warn",
			"--auto-create=false", "--max-partitions-per-topic", strconv.Itoa(max(n, 10000))}
		t0 := time.Now()
		var err error
		if p, err = startBroker(bin, args, filepath.Join(dir, name+".log")); err != nil {
			return 0, err
		}
		p.addr = addr
		wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		if err := p.waitServing(wctx); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	defer func() {
		if p != nil {
			p.stop()
		}
	}()
	if _, err := start("first"); err != nil {
		return res, err
	}
	time.Sleep(time.Second) // let the fresh process settle before reading its RSS
	res.rssBase, res.fdsBase = procRSS(p.cmd.Process.Pid), procFDs(p.cmd.Process.Pid)

	// NB: creating 10,000 partitions may take the broker minutes.
	admin, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestTimeoutOverhead(5*time.Minute))
	if err != nil {
		return res, err
	}
	adm := kadm.NewClient(admin)
	const topic = "scale"
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	adm.SetTimeoutMillis(int32((5 * time.Minute).Milliseconds()))
	created, err := adm.CreateTopics(cctx, int32(n), 1, map[string]*string{"segment.bytes": kadm.StringPtr(strconv.Itoa(cfg.SegmentBytes))}, topic)
	if err == nil {
		err = created.Error()
	}
	if err == nil {
		err = waitLeaders(cctx, adm, int32(n), topic)
	}
	cancel()
	admin.Close()
	if err != nil {
		return res, err
	}
	// Every partition takes a first batch, so each has written its files.
	if _, err := produceEach(ctx, addr, topic, n); err != nil {
		return res, err
	}
	time.Sleep(2 * time.Second) // idle
	res.rssIdle = procRSS(p.cmd.Process.Pid)

	say("bench:   load for %v", cfg.For)
	recs, ticks, err := partitionsLoad(ctx, addr, topic, n, cfg, cfg.For)
	if err != nil {
		return res, err
	}
	res.recPerSec, res.tickBatches = float64(recs)/cfg.For.Seconds(), ticks
	res.rssLoad, res.fds = procRSS(p.cmd.Process.Pid), procFDs(p.cmd.Process.Pid)
	res.segments = countSegments(data)

	say("bench:   clean stop and start")
	t0 := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
		res.stopKilled = true
	}
	res.stop = time.Since(t0)
	p = nil
	serve, err := start("clean")
	if err != nil {
		return res, err
	}
	ready, err := produceEach(ctx, addr, topic, n)
	if err != nil {
		return res, err
	}
	res.cleanStart = serve + ready
	say("bench:   load, kill and start")
	lctx, lcancel := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		_, _, _ = partitionsLoad(lctx, addr, topic, n, cfg, time.Hour)
	}()
	time.Sleep(3 * time.Second) // under load
	_ = p.cmd.Process.Kill()
	<-p.exited
	lcancel()
	<-loadDone
	p = nil
	res.killSegments = countSegments(data)
	serve, err = start("killed")
	if err != nil {
		return res, err
	}
	ready, err = produceEach(ctx, addr, topic, n)
	if err != nil {
		return res, err
	}
	res.killStart = serve + ready
	return res, nil
}

// produceEach sends one record to every partition of topic and returns how
// long it took until every one was acknowledged, retrying while partitions
// are still being opened.
func produceEach(ctx context.Context, addr, topic string, n int) (time.Duration, error) {
	t0 := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordDeliveryTimeout(5*time.Minute),
		kgo.RequestTimeoutOverhead(time.Minute),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Partition: int32(i), Value: []byte("ready")}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return time.Since(t0), firstErr
}

// partitionsLoad runs the ticker (one batch to every partition each second)
// and the steady load for d or until ctx ends; it returns the steady load's
// acknowledged records and the ticker's acknowledged batches.
func partitionsLoad(ctx context.Context, addr, topic string, n int, cfg partitionsConfig, d time.Duration) (int64, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0),
		// A batch must fit in a segment.
		kgo.ProducerBatchMaxBytes(int32(min(cfg.SegmentBytes/2, 1<<20)))}
	ticker, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return 0, 0, err
	}
	defer ticker.Close()
	steady, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))...)
	if err != nil {
		return 0, 0, err
	}
	defer steady.Close()
	var recs, ticks atomic.Int64
	var failed atomic.Pointer[error]
	note := func(err error) {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kgo.ErrClientClosed) {
			failed.CompareAndSwap(nil, &err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			for i := range n {
				ticker.Produce(ctx, &kgo.Record{Partition: int32(i), Value: []byte("tick")}, func(_ *kgo.Record, err error) {
					if err == nil {
						ticks.Add(1)
					}
					note(err)
				})
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	go func() {
		defer wg.Done()
		val := make([]byte, cfg.RecordBytes)
		for i := range val {
			val[i] = byte(i*131 + 7)
		}
		for ctx.Err() == nil {
			steady.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
				if err == nil {
					recs.Add(1)
				}
				note(err)
			})
		}
	}()
	wg.Wait()
	if e := failed.Load(); e != nil && !errors.Is(*e, kerr.RequestTimedOut) {
		return recs.Load(), ticks.Load(), *e
	}
	return recs.Load(), ticks.Load(), nil
}

// procRSS returns the process's resident memory in bytes (VmRSS).
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procFDs returns how many file descriptors the process holds open.
func procFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// countSegments counts the segment (.log) files under dir.
func countSegments(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") && len(filepath.Base(path)) == 24 {
			n++
		}
		return nil
	})
	return n
}
