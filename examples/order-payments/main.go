// Command order-payments joins orders with payments by order id in a
// stream-stream windowed left join: each order paid within the window is
// printed with its payment, and each order still unpaid when its window
// closes is reported as unpaid. It starts an embedded Weir broker unless
// -brokers names a cluster.
//
//	go run ./examples/order-payments
//	go run ./examples/order-payments -speedup 60 -unpaid 0.3
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.brokers, "brokers", "", "comma-separated seed brokers of an external cluster (default: start an embedded Weir broker)")
	flag.StringVar(&cfg.stateDir, "state-dir", "order-payments-data", "directory for state stores (and the embedded broker's data)")
	flag.Float64Var(&cfg.rate, "rate", 20, "orders generated per second")
	flag.Float64Var(&cfg.unpaid, "unpaid", 0.2, "share of orders that never get a payment")
	flag.Float64Var(&cfg.speedup, "speedup", 1, "event time runs this many times faster than the wall clock")
	verbose := flag.Bool("v", false, "log the runtime's and broker's info lines")
	flag.Parse()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "order-payments:", err)
		os.Exit(1)
	}
}

type config struct {
	brokers  string
	stateDir string
	rate     float64
	unpaid   float64
	speedup  float64
	logger   *slog.Logger
}

// Window is how long after (or before) an order its payment may come.
const Window = time.Minute

// Grace is how long a join window accepts out-of-order records.
const Grace = 5 * time.Second
