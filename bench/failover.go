package main

// The failover workload: how long a replicated partition takes no
// acknowledged produce after its leader dies (SIGKILL) and after it is shut
// down (SIGTERM, a controlled shutdown), on a 3-node cluster of weir broker
// processes.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { workloads = append(workloads, newFailoverCmd) }

type failoverConfig struct {
	Rounds          int
	SessionTimeouts []time.Duration
	Fsync           string
}

func newFailoverCmd() *cobra.Command {
	cfg := failoverConfig{}
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "The longest a producer goes without an acknowledgement after a partition leader's SIGKILL (peer: SIGTERM)",
		Long: `Starts 3 weir broker processes (controller voters and brokers) built from the
working tree, creates a topic of one partition with replication factor 3
(min.insync.replicas 2), and runs a franz-go producer (idempotent, acks=all)
sending a record every 2ms. Each round kills the partition's leader
(SIGKILL) and measures the longest the producer then goes without an
acknowledgement (from the kill to the new leader's first one), restarts
it, waits for a full ISR, then shuts the leader down (SIGTERM: controlled
shutdown, the peer) and measures the same. Per --broker-session-timeout given (the first is the
default's, 9s), the median of the rounds and the ratio kill/shutdown.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFailover(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Rounds, "rounds", 3, "kills (and shutdowns) measured per session timeout")
	f.DurationSliceVar(&cfg.SessionTimeouts, "session-timeouts", []time.Duration{9 * time.Second, 3 * time.Second}, "--broker-session-timeout values to measure with, each on a fresh cluster")
	f.StringVar(&cfg.Fsync, "fsync", "group", "the brokers' --fsync policy")
	return cmd
}

type failoverResult struct {
	session        time.Duration
	kill, shutdown []time.Duration
}

func runFailover(ctx context.Context, cfg failoverConfig, out, progress io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	say := func(f string, a ...any) { fmt.Fprintf(progress, f+"\n", a...) }
	bins, err := buildBinaries("", say)
	if err != nil {
		return err
	}
	defer bins.cleanup()
	var results []failoverResult
	for _, st := range cfg.SessionTimeouts {
		r, err := failoverRun(ctx, bins.tree, st, cfg, say)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "broker session timeout\tSIGKILL: longest without an ack (median)\tall\tSIGTERM: longest without an ack (median)\tall\tkill/shutdown")
	for _, r := range results {
		k, s := medianDur(r.kill), medianDur(r.shutdown)
		fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%.1fx\n", r.session, k.Round(time.Millisecond), roundAll(r.kill),
			s.Round(time.Millisecond), roundAll(r.shutdown), float64(k)/float64(max(s, time.Millisecond)))
	}
	return tw.Flush()
}

func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

func roundAll(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(10*time.Millisecond).String())
	}
	return strings.Join(s, " ")
}

// failoverRun measures cfg.Rounds kills and shutdowns on one cluster whose
// brokers have session timeout st.
func failoverRun(ctx context.Context, bin string, st time.Duration, cfg failoverConfig, say func(string, ...any)) (failoverResult, error) {
	res := failoverResult{session: st}
	dir, err := os.MkdirTemp("", "weir-bench-failover-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	const nodes = 3
	var addrs, voters []string
	for i := range nodes {
		a, err := freeAddr()
		if err != nil {
			return res, err
		}
		c, err := freeAddr()
		if err != nil {
			return res, err
		}
		addrs, voters = append(addrs, a), append(voters, fmt.Sprintf("%d@%s", i+1, c))
	}
	procs := make([]*brokerProc, nodes)
	start := func(i int) error {
		args := []string{"broker", "--listen", addrs[i], "--data-dir", filepath.Join(dir, fmt.Sprintf("data-%d", i+1)),
			"--fsync", cfg.Fsync, "--log-level", "warn", "--node-id", strconv.Itoa(i + 1),
			"--controller-voters", strings.Join(voters, ","), "--broker-session-timeout", st.String()}
		p, err := startBroker(bin, args, filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1)))
		if err != nil {
			return err
		}
		p.addr = addrs[i]
		procs[i] = p
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return p.waitServing(wctx)
	}
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
	}()
	// NB: the nodes start together: each waits for a quorum of the others.
	errs := make(chan error, nodes)
	for i := range nodes {
		go func() { errs <- start(i) }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			return res, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitBrokers(wctx, addrs, nodes); err != nil {
		return res, err
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return res, err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	const topic = "failover"
	if err := createLogTopics(ctx, adm, 1, 3, topic); err != nil {
		return res, err
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		return res, err
	}
	defer prod.Close()
	var mu sync.Mutex
	var acks []time.Time // when each record was acknowledged
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for pctx.Err() == nil {
			<-tick.C
			prod.Produce(pctx, &kgo.Record{Value: []byte("x")}, func(_ *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acks = append(acks, time.Now())
					mu.Unlock()
				}
			})
		}
	}()
	defer func() {
		pcancel()
		<-done
	}()
	// stall waits until a record is acknowledged 2s after the leader's
	// process is gone and returns the longest time without an
	// acknowledgement from the fault (at) until then. After a SIGKILL that
	// is the time to the new leader's first acknowledgement; after a
	// SIGTERM the old leader acknowledges until its leadership has moved.
	stall := func(at, gone time.Time) (time.Duration, error) {
		settled := gone.Add(2 * time.Second)
		deadline := time.Now().Add(2*st + 30*time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ts := slices.Clone(acks)
			mu.Unlock()
			slices.SortFunc(ts, time.Time.Compare)
			last, longest := at, time.Duration(0)
			for _, a := range ts {
				if !a.After(at) {
					continue
				}
				longest = max(longest, a.Sub(last))
				last = a
				if a.After(settled) {
					return longest, nil
				}
			}
			time.Sleep(10 * time.Millisecond) // polling interval with a deadline
		}
		return 0, fmt.Errorf("bench: no produce acknowledged within %v of the fault", 2*st+30*time.Second)
	}
	// direct clients ask one node each: a restarted node answers from an
	// old image until it has caught up, so the leader is the one every
	// running node names.
	direct := make([]*kgo.Client, nodes)
	for i, a := range addrs {
		if direct[i], err = kgo.NewClient(kgo.SeedBrokers(a), kgo.RequestRetries(0)); err != nil {
			return res, err
		}
		defer direct[i].Close()
	}
	agreedLeader := func() (int, bool) {
		leader := int32(-2)
		for _, cl := range direct {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			resp, err := cl.SeedBrokers()[0].Request(rctx, req)
			cancel()
			if err != nil {
				return 0, false
			}
			md := resp.(*kmsg.MetadataResponse)
			if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
				return 0, false
			}
			p := md.Topics[0].Partitions[0]
			if p.Leader < 1 || len(p.ISR) != nodes || (leader != -2 && p.Leader != leader) {
				return 0, false
			}
			leader = p.Leader
		}
		return int(leader) - 1, true
	}
	leaderWithFullISR := func() (int, error) {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if i, ok := agreedLeader(); ok {
				return i, nil
			}
			time.Sleep(100 * time.Millisecond) // polling interval with a deadline
		}
		return 0, fmt.Errorf("bench: the nodes did not agree on a leader with a full ISR within 60s")
	}
	for r := range cfg.Rounds {
		for _, kill := range []bool{true, false} {
			i, err := leaderWithFullISR()
			if err != nil {
				return res, err
			}
			at := time.Now()
			if kill {
				_ = procs[i].cmd.Process.Signal(syscall.SIGKILL)
			} else {
				_ = procs[i].cmd.Process.Signal(syscall.SIGTERM)
			}
			<-procs[i].exited
			d, err := stall(at, time.Now())
			if err != nil {
				return res, err
			}
			what := "shutdown"
			if kill {
				res.kill = append(res.kill, d)
				what = "kill"
			} else {
				res.shutdown = append(res.shutdown, d)
			}
			say("bench: session timeout %v, round %d: leader %d %s, longest without an ack %v", st, r+1, i+1, what, d.Round(time.Millisecond))
			if err := start(i); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}
