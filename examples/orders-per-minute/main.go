// Command orders-per-minute is Weir's first program: it starts an embedded
// Weir broker, generates orders, counts them per customer per tumbling
// window (10 s by default, -window 1m for per-minute counts) and prints
// each window's final count when the window closes, with a progress line.
// Its first lines say when the first window closes and what the progress
// line's figures mean. Ctrl-C stops it cleanly.
//
//	go run ./examples/orders-per-minute
//	go run ./examples/orders-per-minute -window 1m -grace 10s
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
	cfg := defaultConfig()
	flag.StringVar(&cfg.brokers, "brokers", cfg.brokers, "comma-separated seed brokers of an external cluster (default: start an embedded Weir broker)")
	flag.StringVar(&cfg.stateDir, "state-dir", cfg.stateDir, "directory for state stores and the embedded broker's data; delete it (program stopped) to start afresh")
	flag.Float64Var(&cfg.rate, "rate", cfg.rate, "orders generated per second")
	flag.IntVar(&cfg.customers, "customers", cfg.customers, "number of customers (keys): one line per customer per closed window")
	flag.DurationVar(&cfg.window, "window", cfg.window, "size of the tumbling windows the orders are counted in (event time); on an existing -state-dir, reset it first")
	flag.DurationVar(&cfg.grace, "grace", cfg.grace, "how long after its end a window still accepts out-of-order orders (event time)")
	flag.Float64Var(&cfg.outOfOrder, "out-of-order", cfg.outOfOrder, "share of orders stamped up to twice the grace period in the past (some beyond it, which are dropped as late)")
	flag.Float64Var(&cfg.speedup, "speedup", cfg.speedup, "event time runs this many times faster than the wall clock (10: a 10s window closes every second)")
	flag.Int64Var(&cfg.memoryMiB, "state-memory", cfg.memoryMiB, "memory budget of the state stores in MiB (Pebble's caches and memtables; the Pebble WAL files on disk are preallocated at about a tenth of it each)")
	flag.StringVar(&cfg.metricsAddr, "metrics", cfg.metricsAddr, "serve Prometheus metrics and the topology on this address (e.g. 127.0.0.1:9100)")
	flag.StringVar(&cfg.queryAddr, "query", cfg.queryAddr, "serve interactive queries of the window counts on this address (e.g. 127.0.0.1:9200): GET /stores/orders-per-minute-store/windows?key=customer-001")
	flag.DurationVar(&cfg.progressEvery, "progress", cfg.progressEvery, "interval of the progress line")
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

// config is the program's flags, and what tests change besides.
type config struct {
	brokers       string
	stateDir      string
	rate          float64
	customers     int
	window        time.Duration
	grace         time.Duration
	outOfOrder    float64
	speedup       float64
	memoryMiB     int64
	metricsAddr   string
	queryAddr     string
	progressEvery time.Duration
	logger        *slog.Logger

	// now is the generator's wall clock. Default time.Now; a test runs
	// the program on a faster clock.
	now func() time.Time
	// commitInterval is the runtime's commit interval. Default 0: the
	// runtime's default (1 s); a test on a faster clock shortens it as
	// much.
	commitInterval time.Duration
}

// defaultConfig returns the program's defaults, those of its flags. The
// window and grace are small enough that the first window closes about
// 12 s after the start (its end plus the grace), with a full window of
// orders; the state memory budget keeps the data directory laptop-sized.
func defaultConfig() config {
	return config{
		stateDir:      "orders-per-minute-data",
		rate:          1000,
		customers:     10,
		window:        10 * time.Second,
		grace:         2 * time.Second,
		outOfOrder:    0.1,
		speedup:       1,
		memoryMiB:     32,
		progressEvery: 2 * time.Second,
		logger:        slog.Default(),
		now:           time.Now,
	}
}
