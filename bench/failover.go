package main

// The failover workload: how long a replicated partition takes no
// acknowledged produce after its leader dies (SIGKILL) and after it is shut
// down (SIGTERM, a controlled shutdown), on a 3-node cluster of weir broker
// processes. The kills alternate between the node that is also the active
// controller (the metadata quorum must elect another first) and another
// node.

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
working tree, creates a topic of 3 partitions with replication factor 3
(min.insync.replicas 2), and runs a franz-go producer (idempotent, acks=all)
sending a record every 2ms, to each partition in turn. Each round kills
(SIGKILL) the node that is the active controller, then another node, each
the leader of a partition, and measures the longest that partition's
records then go without an acknowledgement (from the kill to the new
leader's first one); after each it restarts the node and waits for full
ISRs; then it shuts a leader down (SIGTERM: controlled shutdown, the peer)
and measures the same. The brokers run with --leader-rebalance-interval 1s
so that a restarted node leads again soon. Per --broker-session-timeout
given (the first is the default's, 9s), the median of the rounds and the
ratio kill/shutdown.`,
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
	session time.Duration
	// killCtl: kills of the active controller's node; kill: of another.
	killCtl, kill, shutdown []time.Duration
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
	fmt.Fprintln(tw, "broker session timeout\tSIGKILL of the controller's node (median)\tall\tSIGKILL of another node (median)\tall\tSIGTERM (median)\tall\tworst kill/shutdown")
	for _, r := range results {
		kc, k, s := medianDur(r.killCtl), medianDur(r.kill), medianDur(r.shutdown)
		fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\t%v\t%.1fx\n", r.session, kc.Round(time.Millisecond), roundAll(r.killCtl),
			k.Round(time.Millisecond), roundAll(r.kill), s.Round(time.Millisecond), roundAll(r.shutdown),
			float64(max(kc, k))/float64(max(s, time.Millisecond)))
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
			"--controller-voters", strings.Join(voters, ","), "--broker-session-timeout", st.String(),
			"--leader-rebalance-interval", "1s"}
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
	const parts = nodes // one partition led by each node
	if err := createLogTopics(ctx, adm, parts, 3, topic); err != nil {
		return res, err
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	if err != nil {
		return res, err
	}
	defer prod.Close()
	var mu sync.Mutex
	var acks [parts][]time.Time // when each record of each partition was acknowledged
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := int32(0); pctx.Err() == nil; i++ {
			<-tick.C
			prod.Produce(pctx, &kgo.Record{Value: []byte("x"), Partition: i % parts}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acks[r.Partition] = append(acks[r.Partition], time.Now())
					mu.Unlock()
				}
			})
		}
	}()
	defer func() {
		pcancel()
		<-done
	}()
	// stall waits until a record of partition p is acknowledged 2s after
	// its leader's process is gone and returns the longest time without an
	// acknowledgement from the fault (at) until then. After a SIGKILL that
	// is the time to the new leader's first acknowledgement; after a
	// SIGTERM the old leader acknowledges until its leadership has moved.
	stall := func(p int32, at, gone time.Time) (time.Duration, error) {
		settled := gone.Add(2 * time.Second)
		deadline := time.Now().Add(2*st + 30*time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ts := slices.Clone(acks[p])
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
	// agreed returns the leader of each partition (node index) and the
	// active controller's node index, when every node names the same ones
	// and every partition has a full ISR.
	agreed := func() ([parts]int, int, bool) {
		var leaders [parts]int
		ctl := -2
		for n, cl := range direct {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			resp, err := cl.SeedBrokers()[0].Request(rctx, req)
			cancel()
			if err != nil {
				return leaders, 0, false
			}
			md := resp.(*kmsg.MetadataResponse)
			if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != parts || md.ControllerID < 1 ||
				(ctl != -2 && int(md.ControllerID)-1 != ctl) {
				return leaders, 0, false
			}
			ctl = int(md.ControllerID) - 1
			for _, p := range md.Topics[0].Partitions {
				l := int(p.Leader) - 1
				if p.Leader < 1 || len(p.ISR) != nodes || p.Partition < 0 || p.Partition >= parts || (n > 0 && leaders[p.Partition] != l) {
					return leaders, 0, false
				}
				leaders[p.Partition] = l
			}
		}
		return leaders, ctl, true
	}
	// target waits until the nodes agree, with full ISRs, and a node
	// that the active controller is (ctl) or is not (!ctl) leads a
	// partition; it returns the node and the partition.
	target := func(ctl bool) (int, int32, error) {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if leaders, c, ok := agreed(); ok {
				for p, l := range leaders {
					if (l == c) == ctl {
						return l, int32(p), nil
					}
				}
			}
			time.Sleep(100 * time.Millisecond) // polling interval with a deadline
		}
		return 0, 0, fmt.Errorf("bench: within 60s, the nodes did not agree on full ISRs with a partition led by a node that is (%v) the controller", ctl)
	}
	type fault struct {
		name   string
		sig    syscall.Signal
		ctl    bool
		record *[]time.Duration
	}
	faults := []fault{
		{"kill (controller's node)", syscall.SIGKILL, true, &res.killCtl},
		{"kill (another node)", syscall.SIGKILL, false, &res.kill},
		{"shutdown", syscall.SIGTERM, false, &res.shutdown},
	}
	for r := range cfg.Rounds {
		for _, f := range faults {
			i, p, err := target(f.ctl)
			if err != nil {
				return res, err
			}
			at := time.Now()
			_ = procs[i].cmd.Process.Signal(f.sig)
			<-procs[i].exited
			d, err := stall(p, at, time.Now())
			if err != nil {
				return res, err
			}
			*f.record = append(*f.record, d)
			say("bench: session timeout %v, round %d: %s: node %d, leader of partition %d, longest without an ack %v", st, r+1, f.name, i+1, p, d.Round(time.Millisecond))
			if err := start(i); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}
