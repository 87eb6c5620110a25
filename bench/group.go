package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { workloads = append(workloads, newGroupCmd) }

// groupConfig describes one run of the group workload.
type groupConfig struct {
	Records    int
	Size       int
	Partitions int32
	Heartbeat  time.Duration
	DataDir    string
	Targets    []string
	// Trace prints, for the absorb phase, each member's group requests
	// (JoinGroup, SyncGroup, Heartbeat) and group log lines with their
	// times since the fourth member started.
	Trace bool
}

func newGroupCmd() *cobra.Command {
	cfg := groupConfig{}
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Consumer groups: group consume throughput and time to absorb a 4th member, Weir vs kfake",
		Long: `Against an in-process Weir broker and, in the same run, franz-go's kfake:

- group consume: three members of one group (cooperative-sticky) read N records
  of a 6-partition topic; records/s from the first poll to the last record;
- absorb: a stable three-member group is joined by a fourth; the time from the
  fourth member's start until it owns partitions and the group's assignment
  covers every partition exactly once.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runGroup(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			printGroup(cmd.OutOrStdout(), cfg, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Records, "records", 300_000, "records the group consumes")
	f.IntVar(&cfg.Size, "size", 100, "record value size in bytes")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions of the topic")
	f.DurationVar(&cfg.Heartbeat, "heartbeat", time.Second, "members' heartbeat interval (how soon they hear of a rebalance)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "where Weir's data directory is made (default: the system temp dir)")
	f.StringSliceVar(&cfg.Targets, "targets", []string{"weir", "kfake"}, "brokers to measure")
	f.BoolVar(&cfg.Trace, "trace", false, "print the absorb phase's group requests and client group logs to stderr")
	return cmd
}

// groupResult is what one target measured.
type groupResult struct {
	Target      string
	ConsumeRate float64       // records/s through a three-member group
	Absorb      time.Duration // fourth member start → settled assignment
}

func runGroup(ctx context.Context, cfg groupConfig, progress io.Writer) ([]groupResult, error) {
	if cfg.Records < 1 || cfg.Partitions < 4 || cfg.Size < 1 {
		return nil, errors.New("bench: --records and --size must be positive and --partitions at least 4")
	}
	var out []groupResult
	for _, name := range cfg.Targets {
		fmt.Fprintf(progress, "bench: group workload on %s...\n", name)
		t, err := startTarget(ctx, name, logConfig{Fsync: "group", DataDir: cfg.DataDir})
		if err != nil {
			return nil, err
		}
		r, err := measureGroup(ctx, t, cfg, progress)
		t.close()
		if err != nil {
			return nil, fmt.Errorf("bench: group workload on %s: %w", name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func measureGroup(ctx context.Context, t *target, cfg groupConfig, progress io.Writer) (groupResult, error) {
	res := groupResult{Target: t.name}
	adm, err := kgo.NewClient(kgo.SeedBrokers(t.addrs...))
	if err != nil {
		return res, err
	}
	defer adm.Close()
	const topic = "bench-group"
	created, err := kadm.NewClient(adm).CreateTopics(ctx, cfg.Partitions, 1, nil, topic)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		return res, fmt.Errorf("create topic: %w", err)
	}
	if _, err := produceAll(ctx, t.addrs, topic, cfg.Records, randomValues(cfg.Size, 1024)); err != nil {
		return res, fmt.Errorf("produce: %w", err)
	}
	if res.ConsumeRate, err = groupConsume(ctx, t.addrs, topic, cfg); err != nil {
		return res, fmt.Errorf("group consume: %w", err)
	}
	var tr *groupTrace
	if cfg.Trace {
		tr = &groupTrace{w: progress}
	}
	if res.Absorb, err = absorbFourth(ctx, t.addrs, topic, cfg, tr); err != nil {
		return res, fmt.Errorf("absorb a fourth member: %w", err)
	}
	return res, nil
}

func member(addrs []string, group, topic string, hb time.Duration, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(hb),
		kgo.DisableAutoCommit(),
	}, extra...)
	return kgo.NewClient(opts...)
}

// groupConsume runs three members of a fresh group until together they have
// read every record, and returns records/s from the first record fetched to
// the last (the group's initial rebalance delay is not throughput). Records a
// rebalance hands to a second member are counted once: each partition is read
// in order from offset 0, so its distinct records are its highest offset + 1.
func groupConsume(ctx context.Context, addrs []string, topic string, cfg groupConfig) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var mu sync.Mutex
	next := map[int32]int64{} // partition → highest offset read + 1
	got := 0
	var first time.Time
	done := make(chan struct{})
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	for range 3 {
		cl, err := member(addrs, "bench-consume", topic, cfg.Heartbeat)
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for {
				fs := cl.PollFetches(ctx)
				select {
				case <-done:
					return
				default:
				}
				if ctx.Err() != nil {
					errc <- ctx.Err()
					return
				}
				if errs := fs.Errors(); len(errs) > 0 {
					errc <- errs[0].Err
					return
				}
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					if first.IsZero() {
						first = time.Now()
					}
					if n := r.Offset + 1; n > next[r.Partition] {
						got += int(n - next[r.Partition])
						next[r.Partition] = n
					}
				})
				if got >= cfg.Records {
					select {
					case <-done:
					default:
						close(done)
					}
				}
				mu.Unlock()
			}
		}()
	}
	var err error
	select {
	case <-done:
	case err = <-errc:
	}
	end := time.Now()
	cancel()
	wg.Wait()
	if err != nil {
		return 0, fmt.Errorf("after %d of %d records: %w", got, cfg.Records, err)
	}
	if got != cfg.Records {
		return 0, fmt.Errorf("group read %d records, %d were produced", got, cfg.Records)
	}
	return float64(cfg.Records) / end.Sub(first).Seconds(), nil
}

// assignments tracks which member owns which partitions, from the members'
// own assign and revoke callbacks.
type assignments struct {
	mu      sync.Mutex
	owned   map[int]map[int32]bool // member → partitions
	changed chan struct{}          // receives after every change (buffered 1)
}

func (a *assignments) hooks(m int) []kgo.Opt {
	apply := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			a.mu.Lock()
			for _, p := range ps {
				for _, part := range p {
					if a.owned[m] == nil {
						a.owned[m] = map[int32]bool{}
					}
					if add {
						a.owned[m][part] = true
					} else {
						delete(a.owned[m], part)
					}
				}
			}
			a.mu.Unlock()
			select {
			case a.changed <- struct{}{}:
			default:
			}
		}
	}
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(apply(true)),
		kgo.OnPartitionsRevoked(apply(false)),
		kgo.OnPartitionsLost(apply(false)),
	}
}

// settled reports whether members 0..n-1 each own at least one partition
// and together own each of parts partitions exactly once.
func (a *assignments) settled(n int, parts int32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[int32]int{}
	for m := range n {
		if len(a.owned[m]) == 0 {
			return false
		}
		for p := range a.owned[m] {
			seen[p]++
		}
	}
	if int32(len(seen)) != parts {
		return false
	}
	for _, c := range seen {
		if c != 1 {
			return false
		}
	}
	return true
}

// absorbFourth waits for a three-member group to settle, starts a fourth
// member and returns how long the group took to settle again with it.
func absorbFourth(ctx context.Context, addrs []string, topic string, cfg groupConfig, tr *groupTrace) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	a := &assignments{owned: map[int]map[int32]bool{}, changed: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	startMember := func(m int) error {
		opts := a.hooks(m)
		if tr != nil {
			opts = append(opts, tr.opts(m)...)
		}
		cl, err := member(addrs, "bench-absorb", topic, cfg.Heartbeat, opts...)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for ctx.Err() == nil {
				cl.PollFetches(ctx) // records are not the point; polling keeps the member live
			}
		}()
		return nil
	}
	waitSettled := func(n int) error {
		for !a.settled(n, cfg.Partitions) {
			select {
			case <-a.changed:
			case <-ctx.Done():
				return fmt.Errorf("%d members never settled: %w", n, ctx.Err())
			}
		}
		return nil
	}
	for m := range 3 {
		if err := startMember(m); err != nil {
			return 0, err
		}
	}
	if err := waitSettled(3); err != nil {
		return 0, err
	}
	start := time.Now()
	tr.begin(start)
	if err := startMember(3); err != nil {
		return 0, err
	}
	if err := waitSettled(4); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// groupTrace prints the absorb phase's group traffic, once the fourth
// member starts; a nil *groupTrace prints nothing.
type groupTrace struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time // zero until the fourth member starts
}

func (t *groupTrace) begin(at time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.start = at
	t.mu.Unlock()
}

func (t *groupTrace) printf(m int, at time.Time, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.start.IsZero() {
		return
	}
	fmt.Fprintf(t.w, "%8.1fms m%d %s\n", float64(at.Sub(t.start).Microseconds())/1000, m, fmt.Sprintf(format, args...))
}

func (t *groupTrace) opts(m int) []kgo.Opt {
	return []kgo.Opt{
		kgo.WithHooks(traceHook{t: t, m: m}),
		kgo.WithLogger(traceLogger{t: t, m: m}),
	}
}

// traceHook prints group requests: when each was written and when its
// response was read.
type traceHook struct {
	t *groupTrace
	m int
}

func (h traceHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	name := map[int16]string{11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup"}[key]
	if name == "" {
		return
	}
	end := time.Now()
	h.t.printf(h.m, end.Add(-e2e.DurationE2E()), "%s sent", name)
	h.t.printf(h.m, end, "%s answered after %v", name, e2e.DurationE2E().Round(10*time.Microsecond))
}

// traceLogger prints the client's group log lines.
type traceLogger struct {
	t *groupTrace
	m int
}

func (l traceLogger) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l traceLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	if level > kgo.LogLevelInfo && !strings.Contains(msg, "heartbeat") && !strings.Contains(msg, "join") && !strings.Contains(msg, "sync") {
		return
	}
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "group" {
			continue
		}
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	l.t.printf(l.m, time.Now(), "log: %s", b.String())
}

func printGroup(w io.Writer, cfg groupConfig, res []groupResult) {
	fmt.Fprintf(w, "group workload: %d records of %d bytes, %d partitions, cooperative-sticky, heartbeat %v\n\n",
		cfg.Records, cfg.Size, cfg.Partitions, cfg.Heartbeat)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tgroup consume rec/s\tabsorb 4th member\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t\n", r.Target, r.ConsumeRate, r.Absorb.Round(time.Millisecond))
	}
	_ = tw.Flush()
	var weir, peer *groupResult
	for i := range res {
		switch res[i].Target {
		case "weir":
			weir = &res[i]
		case "kfake":
			peer = &res[i]
		}
	}
	if weir != nil && peer != nil {
		fmt.Fprintf(w, "\nWeir/kfake: group consume %.2fx, absorb time %.2fx (lower is better)\n",
			weir.ConsumeRate/peer.ConsumeRate, weir.Absorb.Seconds()/peer.Absorb.Seconds())
	}
}
