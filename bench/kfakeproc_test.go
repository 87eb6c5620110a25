package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the bench binary as the
// kfakeproc target's process: startKfakeProc runs os.Executable()
// kfake-serve.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "kfake-serve" {
		cmd := newKfakeServeCmd()
		cmd.SetArgs(os.Args[2:])
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLogKfakeProcess runs one tiny round of the kfakeproc target: kfake in
// a process of its own serves every phase, its CPU is measured apart from
// this process's, and it stops with the target.
func TestLogKfakeProcess(t *testing.T) {
	cfg := logConfig{
		Records: 300, Sizes: []int{100}, Partitions: 3, Rate: 1000, Fsync: "group", DataDir: t.TempDir(),
		Rounds: 1, Targets: []string{targetKfakeProc},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tg, err := startTarget(ctx, targetKfakeProc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pids := tg.pids()
	r, err := measureTarget(ctx, tg, cfg, 100)
	tg.close()
	if err != nil {
		t.Fatal(err)
	}
	if r.ProduceRate <= 0 || r.ConsumeRate <= 0 {
		t.Errorf("rates %v/%v, want positive", r.ProduceRate, r.ConsumeRate)
	}
	if r.BrokerProduceCPU <= 0 {
		t.Errorf("kfake process's CPU per record produced %v, want positive", r.BrokerProduceCPU)
	}
	if len(pids) != 1 {
		t.Fatalf("kfakeproc has %d processes, want 1", len(pids))
	}
	if p, err := os.FindProcess(pids[0]); err == nil {
		// Signal 0 to a process that has exited and been waited for fails.
		if err := p.Signal(syscall.Signal(0)); err == nil {
			t.Errorf("kfake process %d still runs after the target closed", pids[0])
		}
	}
	var out bytes.Buffer
	printLog(&out, logConfig{Sizes: cfg.Sizes, Targets: []string{targetTree, targetKfakeProc}, Rounds: 1},
		[]logResult{{Target: targetTree, Size: 100, ProduceRate: 2, ConsumeRate: 2, BrokerProduceCPU: 1, BrokerConsumeCPU: 1},
			{Target: targetKfakeProc, Size: 100, ProduceRate: 1, ConsumeRate: 1, BrokerProduceCPU: 2, BrokerConsumeCPU: 2}})
	for _, want := range []string{"tree/kfakeproc (in the run): produce 2.00x, consume 2.00x", "broker processes' CPU per record (lower is better): produce 0.50x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report has no %q:\n%s", want, out.String())
		}
	}
}
