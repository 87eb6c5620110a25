package main

// Instances: the windowed count with 1, 2 and 4 application instances in
// one process (one consumer group), beside as many hand-written loops in
// one group; and, for Weir, the time the group takes to give a joining
// instance its share of the tasks.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// instancesResult is one measured run of n instances.
type instancesResult struct {
	pipelineResult
	instances int
	// rebalance is the time from a further instance's start until every
	// task is owned and the newcomer owns its share (Weir only).
	rebalance time.Duration
	// tasksAfter is how many tasks each instance owned then.
	tasksAfter []int
}

// group is n processors of one application (one consumer group): ready
// once every input partition is owned and every member owns some, so that
// no partition moves while the input is produced.
type group struct {
	members    []processor
	owned      func(p processor) int
	partitions int
}

func (g *group) ready() bool {
	total := 0
	for _, m := range g.members {
		n := g.owned(m)
		if n == 0 {
			return false
		}
		total += n
	}
	return total == g.partitions
}

func (g *group) failed() error {
	for _, m := range g.members {
		if err := m.failed(); err != nil {
			return err
		}
	}
	return nil
}

func (g *group) stop() error {
	var first error
	for _, m := range g.members {
		if err := m.stop(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (g *group) describe() string {
	s := ""
	for i, m := range g.members {
		s += fmt.Sprintf("instance %d: %s\n", i, m.describe())
	}
	return s
}

func weirTasks(p processor) int { return len(p.(*weirApp).app.Tasks()) }

func baselineOwned(p processor) int { return int(p.(*baseline).assigned.Load()) }

// measureInstances runs the windowed count with n instances of target name
// ("weir" or "baseline") over in.
func measureInstances(ctx context.Context, cfg pipelineConfig, name string, n int, in *countInput) (instancesResult, error) {
	res := instancesResult{instances: n}
	m := measured{cfg: cfg, workload: "count", target: fmt.Sprintf("%s x%d", name, n), in: in.input,
		topics: []string{orders.InputTopic, orders.UpdatesTopic},
		verify: newCountVerifier(in.want)}
	newWeir := func(t *target, dir string, i int) (*weirApp, error) {
		stateDir := filepath.Join(dir, fmt.Sprintf("instance-%d", i))
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return nil, err
		}
		// tasks 0: the group, not the instance, says when it is ready.
		return startWeir(0, func() (*runtime.Application, error) {
			topo, err := orders.Topology(false)
			if err != nil {
				return nil, err
			}
			return runtime.New(topo, weirOptions(cfg, t, "bench-orders-per-minute", stateDir)...)
		})
	}
	switch name {
	case "weir":
		m.start = func(t *target, dir string) (processor, error) {
			g := &group{owned: weirTasks, partitions: int(cfg.Partitions)}
			for i := range n {
				w, err := newWeir(t, dir, i)
				if err != nil {
					_ = g.stop()
					return nil, err
				}
				g.members = append(g.members, w)
			}
			return g, nil
		}
		m.afterComplete = func(ctx context.Context, t *target, dir string, p processor) error {
			g := p.(*group)
			t0 := time.Now()
			w, err := newWeir(t, dir, n)
			if err != nil {
				return err
			}
			g.members = append(g.members, w)
			share := int(cfg.Partitions) / (n + 1)
			err = waitUntil(ctx, func() (bool, error) {
				total := 0
				for _, x := range g.members {
					total += weirTasks(x)
				}
				return total == int(cfg.Partitions) && weirTasks(w) >= share, g.failed()
			})
			res.rebalance = time.Since(t0)
			for _, x := range g.members {
				res.tasksAfter = append(res.tasksAfter, weirTasks(x))
			}
			return err
		}
	case "baseline":
		m.start = func(t *target, _ string) (processor, error) {
			g := &group{owned: baselineOwned, partitions: int(cfg.Partitions)}
			for range n {
				b, err := startCountBaseline(cfg, t.addrs, false)
				if err != nil {
					_ = g.stop()
					return nil, err
				}
				g.members = append(g.members, b)
			}
			return g, nil
		}
	default:
		return res, fmt.Errorf("bench: --instances measures targets weir and baseline, not %q", name)
	}
	r, err := m.run(ctx)
	r.Workload = "count"
	res.pipelineResult = r
	return res, err
}

// runInstances measures each instance count for each target.
func runInstances(ctx context.Context, cfg pipelineConfig, out, progress io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	fmt.Fprintf(progress, "bench: generating %d orders over %d customers...\n", cfg.Orders, cfg.Customers)
	in, err := genOrders(cfg)
	if err != nil {
		return err
	}
	var res []instancesResult
	for _, n := range cfg.Instances {
		for _, name := range cfg.Targets {
			fmt.Fprintf(progress, "bench: windowed count, %s, %d instances...\n", name, n)
			r, err := measureInstances(ctx, cfg, name, n, in)
			if err != nil {
				return fmt.Errorf("bench: windowed count, %s x%d: %w", name, n, err)
			}
			fmt.Fprintf(progress, "bench: windowed count, %s x%d: %.0f records/s\n", name, n, r.Rate())
			res = append(res, r)
		}
	}
	fmt.Fprintf(out, "pipeline instances: windowed count, %d orders over %d customers, %d partitions, commit interval %v, Weir fsync=%s; instances in one process\n\n",
		cfg.Orders, cfg.Customers, cfg.Partitions, cfg.Commit, cfg.Fsync)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tinstances\tend to end\trecords/s\trecords/s per instance\tCPU µs/record\tone more joins: rebalance\ttasks after\t")
	for _, r := range res {
		reb, after := "-", "-"
		if r.rebalance > 0 {
			reb, after = r.rebalance.Round(time.Millisecond).String(), fmt.Sprint(r.tasksAfter)
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%.0f\t%.0f\t%.2f\t%s\t%s\t\n", r.Target, r.instances, r.Elapsed.Round(time.Millisecond), r.Rate(),
			r.Rate()/float64(r.instances), float64(r.CPU.Microseconds())/float64(r.Input), reb, after)
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	for _, n := range cfg.Instances {
		var w, b *instancesResult
		for i := range res {
			if res[i].instances == n && res[i].Target == fmt.Sprintf("weir x%d", n) {
				w = &res[i]
			}
			if res[i].instances == n && res[i].Target == fmt.Sprintf("baseline x%d", n) {
				b = &res[i]
			}
		}
		if w != nil && b != nil {
			fmt.Fprintf(out, "%d instances: Weir/baseline %.2fx (end-to-end records/s)\n", n, w.Rate()/b.Rate())
		}
	}
	return nil
}
