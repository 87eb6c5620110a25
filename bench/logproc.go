package main

// Broker processes for the log workload: `weir broker` binaries built from
// the working tree and from a git ref, run as separate processes (one node,
// or a cluster of controller voters), and the round schedule that alternates
// them.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Process targets: "tree" is the working tree's weir binary as one node,
// "baseline" the binary built at --baseline-ref as one node, "cluster" the
// working tree's binary as --cluster N controller voters, and "cluster-rf1"
// the same cluster with topics of replication factor 1 (so that it and
// "cluster" differ by replication alone).
const (
	targetTree       = "tree"
	targetBaseline   = "baseline"
	targetCluster    = "cluster"
	targetClusterRF1 = "cluster-rf1"
)

// binaries are the weir binaries the process targets run.
type binaries struct {
	dir      string // temp dir holding them; removed by cleanup
	tree     string // built from the working tree
	baseline string // built at the baseline ref; "" without one
}

func (b *binaries) cleanup() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// moduleRoot returns the directory of the main module (the working tree).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("bench: find the module's directory (run from inside the Weir module): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// buildBinaries builds the working tree's weir binary and, when ref is not
// empty, the one at ref (checked out into a temporary git worktree that is
// removed once built). Both are built with -trimpath, so that packages the
// two trees share come from the build cache.
func buildBinaries(ref string, progress func(string, ...any)) (*binaries, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "weir-bench-bin-")
	if err != nil {
		return nil, err
	}
	b := &binaries{dir: dir, tree: filepath.Join(dir, "weir-tree")}
	progress("bench: building weir from the working tree %s...", root)
	if err := goBuild(root, b.tree); err != nil {
		b.cleanup()
		return nil, err
	}
	if ref == "" {
		return b, nil
	}
	src := filepath.Join(dir, "src")
	progress("bench: building weir at %s (git worktree %s)...", ref, src)
	if out, err := exec.Command("git", "-C", root, "worktree", "add", "--detach", src, ref).CombinedOutput(); err != nil {
		b.cleanup()
		return nil, fmt.Errorf("bench: --baseline-ref %s: git worktree add: %v\n%s", ref, err, out)
	}
	b.baseline = filepath.Join(dir, "weir-baseline")
	err = goBuild(src, b.baseline)
	if out, rmErr := exec.Command("git", "-C", root, "worktree", "remove", "--force", src).CombinedOutput(); rmErr != nil {
		progress("bench: git worktree remove %s: %v %s", src, rmErr, out)
	}
	if err != nil {
		b.cleanup()
		return nil, fmt.Errorf("bench: --baseline-ref %s: %w", ref, err)
	}
	return b, nil
}

func goBuild(dir, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/weir")
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/weir in %s: %v\n%s", dir, err, msg)
	}
	return nil
}

// brokerProc is one running `weir broker` process.
type brokerProc struct {
	cmd    *exec.Cmd
	addr   string
	log    string // file holding its output
	exited chan struct{}
	err    error // cmd.Wait's result, set before exited is closed
}

// startProcTarget starts nodes broker processes of bin (with cluster, as a
// cluster whose every node is a controller voter and a broker) in fresh
// data directories under cfg.DataDir, and waits until every node serves
// and, for a cluster, until every broker is in the metadata.
func startProcTarget(ctx context.Context, name, bin string, nodes int, cluster bool, cfg logConfig) (*target, error) {
	dir, err := os.MkdirTemp(cfg.DataDir, "weir-bench-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("bench: data dir: %w", err)
	}
	var addrs, voters []string
	for i := range nodes {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
		if cluster {
			c, err := freeAddr()
			if err != nil {
				return nil, err
			}
			voters = append(voters, fmt.Sprintf("%d@%s", i+1, c))
		}
	}
	var procs []*brokerProc
	stop := func() {
		for _, p := range procs {
			p.stop()
		}
		_ = os.RemoveAll(dir)
	}
	for i := range nodes {
		args := []string{"broker", "--listen", addrs[i], "--data-dir", filepath.Join(dir, fmt.Sprintf("data-%d", i+1)),
			"--fsync", cfg.Fsync, "--log-level", "warn"}
		if cluster {
			args = append(args, "--node-id", strconv.Itoa(i+1), "--controller-voters", strings.Join(voters, ","))
		}
		if cfg.procProfile != "" {
			args = append(args, "--cpu-profile", fmt.Sprintf("%s-node%d.pprof", cfg.procProfile, i+1))
		}
		p, err := startBroker(bin, args, filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1)))
		if err != nil {
			stop()
			return nil, err
		}
		p.addr = addrs[i]
		procs = append(procs, p)
	}
	t := &target{name: name, addrs: addrs, close: stop, pids: func() []int {
		var pids []int
		for _, p := range procs {
			pids = append(pids, p.cmd.Process.Pid)
		}
		return pids
	}}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, p := range procs {
		if err := p.waitServing(wctx); err != nil {
			stop()
			return nil, fmt.Errorf("bench: %s: %w", name, err)
		}
	}
	if cluster {
		if err := waitBrokers(wctx, addrs, nodes); err != nil {
			stop()
			return nil, fmt.Errorf("bench: %s: %w", name, err)
		}
	}
	return t, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: pick a port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startBroker(bin string, args []string, logPath string) (*brokerProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", bin, err)
	}
	p := &brokerProc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop asks the broker to stop (SIGTERM: a graceful stop) and kills it if
// it has not exited within 10 s.
func (p *brokerProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *brokerProc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitServing polls the broker with ApiVersions until it answers.
func (p *brokerProc) waitServing(ctx context.Context) error {
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("broker on %s exited (%v) before serving; its output:\n%s", p.addr, p.err, p.tail())
		default:
		}
		err := pingBroker(ctx, p.addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker on %s not serving: %v; its output:\n%s", p.addr, err, p.tail())
		case <-time.After(50 * time.Millisecond): // polling interval
		}
	}
}

func pingBroker(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = cl.SeedBrokers()[0].Request(rctx, kmsg.NewPtrApiVersionsRequest())
	return err
}

// waitBrokers polls Metadata until it lists n brokers and a controller.
func waitBrokers(ctx context.Context, addrs []string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	var last string
	for {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		switch {
		case err != nil:
			last = err.Error()
		case len(resp.Brokers) < n || resp.ControllerID < 0:
			last = fmt.Sprintf("metadata lists %d brokers, controller %d", len(resp.Brokers), resp.ControllerID)
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster of %d not formed: %s", n, last)
		case <-time.After(100 * time.Millisecond): // polling interval
		}
	}
}

// procCPU returns the CPU time the processes' threads have run, in
// nanoseconds from /proc/PID/task/*/schedstat (the first field), which is
// finer than /proc/PID/stat's clock ticks; a thread that has exited is no
// longer counted (Go's threads seldom exit).
func procCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				continue
			}
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// roundOrder returns the order in which round r (from 0) runs the targets:
// the targets rotated by r, so that each target runs in every position
// equally often over len(targets) rounds and a pair of targets alternates
// which one goes first.
func roundOrder(targets []string, r int) []string {
	n := len(targets)
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, targets[(i+r)%n])
	}
	return out
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none; it does not change xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// createLogTopics creates the benchmark topics, retrying while a cluster's
// controller is not ready; a refused replication factor is reported as such.
func createLogTopics(ctx context.Context, admin *kadm.Client, partitions int32, rf int16, topics ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		created, err := admin.CreateTopics(ctx, partitions, rf, nil, topics...)
		if err == nil {
			err = created.Error()
		}
		switch {
		case err == nil:
			return waitLeaders(ctx, admin, partitions, topics...)
		case errors.Is(err, kerr.InvalidReplicationFactor):
			return fmt.Errorf("create topics: the broker refused --replication-factor %d: %w", rf, err)
		case !kerr.IsRetriable(err) && !errors.Is(err, kerr.TopicAlreadyExists):
			return fmt.Errorf("create topics: %w", err)
		}
		// A retried creation may find the topics made by the attempt
		// that timed out: that is success.
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return waitLeaders(ctx, admin, partitions, topics...)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create topics: %w", err)
		case <-time.After(100 * time.Millisecond): // retry interval
		}
	}
}

// waitLeaders polls the metadata until every partition of topics has a
// leader, so that a phase's clock does not start on a topic not yet placed.
func waitLeaders(ctx context.Context, admin *kadm.Client, partitions int32, topics ...string) error {
	var last string
	for {
		md, err := admin.Metadata(ctx, topics...)
		if err == nil {
			last = ""
			for _, topic := range topics {
				td, ok := md.Topics[topic]
				if !ok || td.Err != nil || int32(len(td.Partitions)) != partitions {
					last = fmt.Sprintf("topic %s not yet in the metadata", topic)
					continue
				}
				for _, p := range td.Partitions {
					if p.Leader < 0 || p.Err != nil {
						last = fmt.Sprintf("%s[%d] has no leader", topic, p.Partition)
					}
				}
			}
			if last == "" {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create topics: %s", last)
		case <-time.After(50 * time.Millisecond): // polling interval
		}
	}
}
