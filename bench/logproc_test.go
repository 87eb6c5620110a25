package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7, 7, 1, 100, 2}, 7},
	} {
		in := slices.Clone(c.xs)
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", in, got, c.want)
		}
		if !slices.Equal(in, c.xs) {
			t.Errorf("median reordered its input: %v, was %v", c.xs, in)
		}
	}
}

func TestRoundOrder(t *testing.T) {
	targets := []string{"tree", "baseline", "cluster"}
	first := map[string]int{}
	for r := range 6 {
		order := roundOrder(targets, r)
		if got, want := slices.Sorted(slices.Values(order)), slices.Sorted(slices.Values(targets)); !slices.Equal(got, want) {
			t.Fatalf("round %d runs %v, want every target once", r, order)
		}
		first[order[0]]++
	}
	for _, name := range targets {
		if first[name] != 2 {
			t.Errorf("%s went first in %d of 6 rounds, want 2: %v", name, first[name], first)
		}
	}
	// Two targets alternate which goes first.
	pair := []string{"tree", "baseline"}
	for r := range 4 {
		if got, want := roundOrder(pair, r)[0], pair[r%2]; got != want {
			t.Errorf("round %d of a pair starts with %s, want %s", r, got, want)
		}
	}
	if roundOrder(nil, 3) != nil {
		t.Error("roundOrder of no targets is not empty")
	}
}

func TestMedianRatio(t *testing.T) {
	res := []logResult{
		{Round: 0, Size: 100, Target: "tree", ProduceRate: 90},
		{Round: 0, Size: 100, Target: "baseline", ProduceRate: 100},
		{Round: 1, Size: 100, Target: "baseline", ProduceRate: 50},
		{Round: 1, Size: 100, Target: "tree", ProduceRate: 100},
		{Round: 2, Size: 100, Target: "tree", ProduceRate: 110},
		{Round: 2, Size: 100, Target: "baseline", ProduceRate: 100},
		{Round: 3, Size: 100, Target: "tree", ProduceRate: 1000}, // no baseline this round: left out
		{Round: 0, Size: 1024, Target: "tree", ProduceRate: 1},
		{Round: 0, Size: 1024, Target: "baseline", ProduceRate: 4},
	}
	// Per-round ratios 0.9, 2 and 1.1: the median is 1.1, where the ratio of
	// the medians (100/100) would be 1.
	if got := medianRatio(res, 100, "tree", "baseline", produceRate); got != 1.1 {
		t.Errorf("median ratio at 100 bytes = %v, want 1.1", got)
	}
	if got := medianRatio(res, 1024, "tree", "baseline", produceRate); got != 0.25 {
		t.Errorf("median ratio at 1024 bytes = %v, want 0.25", got)
	}
}

// TestLogProcessRound runs one tiny round of the process targets: the
// working tree's broker, a baseline built at HEAD through a git worktree,
// and a 3-node cluster; every phase must see every record and the brokers'
// CPU must be measured.
func TestLogProcessRound(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two weir binaries and starts a 3-node cluster")
	}
	if err := exec.Command("git", "rev-parse", "HEAD").Run(); err != nil {
		t.Skipf("not in a git checkout (%v): the baseline is built at a git ref", err)
	}
	cfg := logConfig{
		Records: 300, Sizes: []int{100}, Partitions: 3, Rate: 1000, Fsync: "group", DataDir: t.TempDir(),
		Rounds: 1, BaselineRef: "HEAD", Cluster: 3, ReplicationFactor: 3, ProfileDir: t.TempDir(),
		Targets: []string{targetTree, targetBaseline, targetCluster, targetClusterRF1, targetClusterBaseline},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := runLog(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(res) != len(cfg.Targets) {
		t.Fatalf("got %d results, want one per target", len(res))
	}
	for _, r := range res {
		if r.ProduceRate <= 0 || r.ConsumeRate <= 0 {
			t.Errorf("%s: rates %v/%v, want positive", r.Target, r.ProduceRate, r.ConsumeRate)
		}
	}
	var out bytes.Buffer
	printLog(&out, cfg, res)
	for _, want := range []string{"tree/baseline", "cluster/tree", "cluster/cluster-rf1", "cluster/cluster-baseline", "broker processes' CPU"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report has no %q:\n%s", want, out.String())
		}
	}
	// Every broker process built from the tree wrote a CPU profile when
	// it stopped.
	for _, name := range []string{"log-100-tree-r1-node1", "log-100-cluster-r1-node3", "log-100-cluster-rf1-r1-node2"} {
		if fi, err := os.Stat(filepath.Join(cfg.ProfileDir, name+".pprof")); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", name, err)
		}
	}
	// The worktree the baseline was built in is gone.
	list, err := exec.Command("git", "worktree", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(list), "weir-bench-bin-") {
		t.Errorf("the baseline's git worktree was left behind:\n%s", list)
	}
}

// TestLogReplicationRefused: a replication factor the broker cannot give
// fails the run with a message naming the flag.
func TestLogReplicationRefused(t *testing.T) {
	cfg := logConfig{
		Records: 10, Sizes: []int{100}, Partitions: 1, Rate: 1000, Fsync: "group", DataDir: t.TempDir(),
		ReplicationFactor: 3, Targets: []string{"weir"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := runLog(ctx, cfg, new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "refused --replication-factor 3") {
		t.Fatalf("run with replication factor 3 on one broker: %v, want a refusal naming --replication-factor", err)
	}
}

// TestProcCPU: a busy child process's CPU time grows, measured finer than
// the 10 ms clock tick.
func TestProcCPU(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sh to spin: %v", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	pids := []int{cmd.Process.Pid}
	deadline := time.Now().Add(10 * time.Second)
	first := procCPU(pids)
	for procCPU(pids) == first {
		if time.Now().After(deadline) {
			t.Fatalf("a spinning process's CPU time stayed at %v for 10 s", first)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	if got := procCPU(pids); got%(10*time.Millisecond) == 0 {
		t.Errorf("CPU time %v is a whole number of clock ticks: not from schedstat?", got)
	}
}
