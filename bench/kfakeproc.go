package main

// kfake as a process of its own: target "kfakeproc" of the log workload.
//
// In one process with the clients, kfake keeps every record produced on the
// Go heap, so the process's garbage collector runs far less often than
// beside a Weir broker whose records are in files: in a 2,000,000-record
// consume phase of 100-byte records, 3-4 collections beside kfake against
// about 28 beside Weir (GODEBUG=gctrace=1). The clients' own collection
// work, which is most of a consume's CPU, then differs by broker. Run as
// processes ("tree" and "kfakeproc"), both brokers leave the clients'
// process alike, and each broker's own CPU is measured apart.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
)

// targetKfakeProc is kfake run as a child process of the bench binary.
const targetKfakeProc = "kfakeproc"

func init() { workloads = append(workloads, newKfakeServeCmd) }

// newKfakeServeCmd is the hidden subcommand the kfakeproc target runs: a
// one-broker kfake cluster on --listen until SIGTERM or SIGINT.
func newKfakeServeCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "kfake-serve",
		Short:  "Serve a one-broker kfake cluster (the log workload's kfakeproc target)",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, port, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("bench: --listen %q: %w", listen, err)
			}
			p, err := strconv.Atoi(port)
			if err != nil {
				return fmt.Errorf("bench: --listen %q: port: %w", listen, err)
			}
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(p))
			if err != nil {
				return fmt.Errorf("bench: kfake: %w", err)
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "address to serve on")
	return cmd
}

// startKfakeProc starts this binary's kfake-serve as a process and waits
// until it serves.
func startKfakeProc(ctx context.Context, cfg logConfig) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: target %s: %w", targetKfakeProc, err)
	}
	dir, err := os.MkdirTemp(cfg.DataDir, "weir-bench-"+targetKfakeProc+"-")
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", targetKfakeProc, err)
	}
	addr, err := freeAddr()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p, err := startBroker(self, []string{"kfake-serve", "--listen", addr}, filepath.Join(dir, "kfake.log"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p.addr = addr
	stop := func() {
		p.stop()
		_ = os.RemoveAll(dir)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := p.waitServing(wctx); err != nil {
		stop()
		return nil, fmt.Errorf("bench: %s: %w", targetKfakeProc, err)
	}
	return &target{name: targetKfakeProc, addrs: []string{addr}, close: stop,
		pids: func() []int { return []int{p.cmd.Process.Pid} }}, nil
}
