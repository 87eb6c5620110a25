package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestLogWorkloadSmall runs the log workload end to end on a tiny input
// against both targets, so that the benchmark cannot rot unnoticed. It checks
// that every phase saw every record, not how fast.
func TestLogWorkloadSmall(t *testing.T) {
	cfg := logConfig{
		Records: 3000, Sizes: []int{100}, Partitions: 3, Rate: 2000,
		LatencyFor: 250 * time.Millisecond, Fsync: "group", DataDir: t.TempDir(),
		Targets: []string{"weir", "kfake"}, ProfileDir: t.TempDir(), TraceDir: t.TempDir(), ConsumeGCHeadroomMiB: 64,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	limit, pct := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	debug.SetGCPercent(pct)
	res, err := runLog(ctx, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	// The consume phase's equal headroom is undone after it.
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("memory limit %d after the run, want %d as before", got, limit)
	}
	if got := debug.SetGCPercent(pct); got != pct {
		t.Errorf("GOGC %d after the run, want %d as before", got, pct)
	}
	if len(res) != 2 {
		t.Fatalf("got %d results, want one per target", len(res))
	}
	for _, r := range res {
		if r.ProduceRate <= 0 || r.ConsumeRate <= 0 {
			t.Errorf("%s: rates %v/%v, want positive", r.Target, r.ProduceRate, r.ConsumeRate)
		}
		if r.ProduceCPU <= 0 || r.ConsumeCPU <= 0 {
			t.Errorf("%s: CPU per record %v/%v, want positive", r.Target, r.ProduceCPU, r.ConsumeCPU)
		}
		for _, phase := range []string{"produce", "consume"} {
			for _, ext := range []string{"pprof", "allocs-before", "allocs"} {
				name := filepath.Join(cfg.ProfileDir, fmt.Sprintf("log-100-%s-%s.%s", r.Target, phase, ext))
				if fi, err := os.Stat(name); err != nil || fi.Size() == 0 {
					t.Errorf("%s: no %s profile of the %s phase at %s (%v)", r.Target, ext, phase, name, err)
				}
			}
			name := filepath.Join(cfg.TraceDir, fmt.Sprintf("log-100-%s-%s.trace", r.Target, phase))
			if fi, err := os.Stat(name); err != nil || fi.Size() == 0 {
				t.Errorf("%s: no execution trace of the %s phase at %s (%v)", r.Target, phase, name, err)
			}
		}
		if want := 500; r.LatencyCount != want {
			t.Errorf("%s: fixed-rate phase measured %d records, want %d", r.Target, r.LatencyCount, want)
		}
		if r.EndToEndP99 < r.EndToEndP50 || r.ProduceP99 < r.ProduceP50 {
			t.Errorf("%s: p99 below p50: %+v", r.Target, r)
		}
	}
	var out bytes.Buffer
	printLog(&out, cfg, res)
	if !strings.Contains(out.String(), "Weir/kfake") {
		t.Errorf("report has no ratio line:\n%s", out.String())
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct {
		p    int
		want time.Duration
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("percentile(p%d) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

// TestGroupWorkloadSmall runs the group workload on a tiny input against both
// targets: every record is read by the group and a fourth member settles.
// With --trace, the fourth member's join and sync are in the trace.
func TestGroupWorkloadSmall(t *testing.T) {
	cfg := groupConfig{Records: 2000, Size: 50, Partitions: 6, Heartbeat: 200 * time.Millisecond,
		DataDir: t.TempDir(), Targets: []string{"weir", "kfake"}, Trace: true}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := runGroup(ctx, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.ConsumeRate <= 0 || r.Absorb <= 0 {
			t.Errorf("%s: %+v, want positive rate and absorb time", r.Target, r)
		}
	}
	for _, target := range cfg.Targets {
		_, trace, _ := strings.Cut(progress.String(), "group workload on "+target)
		trace, _, _ = strings.Cut(trace, "bench: group workload on")
		for _, want := range []string{"m3 JoinGroup sent", "m3 JoinGroup answered after", "m3 SyncGroup answered after", "m3 log: joined"} {
			if !strings.Contains(trace, want) {
				t.Errorf("%s: trace has no %q:\n%s", target, want, trace)
			}
		}
	}
}
