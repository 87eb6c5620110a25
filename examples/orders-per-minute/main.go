// Command orders-per-minute is Weir's first program: it starts an embedded
// Weir broker, generates orders, counts them per customer per minute with
// a windowed aggregation, and prints each window's final count when the
// window closes, with a progress line. Ctrl-C stops it cleanly.
//
//	go run ./examples/orders-per-minute
//	go run ./examples/orders-per-minute -rate 20000 -out-of-order 0.2
//	go run ./examples/orders-per-minute -brokers localhost:9092
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
	flag.StringVar(&cfg.stateDir, "state-dir", "orders-per-minute-data", "directory for state stores (and the embedded broker's data)")
	flag.Float64Var(&cfg.rate, "rate", 1000, "orders generated per second")
	flag.IntVar(&cfg.customers, "customers", 100, "number of customers (keys)")
	flag.Float64Var(&cfg.outOfOrder, "out-of-order", 0.1, "share of orders with an earlier timestamp (some beyond the grace period, which are dropped as late)")
	flag.Float64Var(&cfg.speedup, "speedup", 1, "event time runs this many times faster than the wall clock (60: a window closes every second)")
	flag.StringVar(&cfg.metricsAddr, "metrics", "", "serve Prometheus metrics and the topology on this address (e.g. 127.0.0.1:9100)")
	flag.DurationVar(&cfg.progressEvery, "progress", 2*time.Second, "interval of the progress line")
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
		fmt.Fprintln(os.Stderr, "orders-per-minute:", err)
		os.Exit(1)
	}
}

// config is the program's flags.
type config struct {
	brokers       string
	stateDir      string
	rate          float64
	customers     int
	outOfOrder    float64
	speedup       float64
	metricsAddr   string
	progressEvery time.Duration
	logger        *slog.Logger
}
