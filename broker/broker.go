package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weir-dev/weir/broker/internal/cluster"
	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/protocol"
	"github.com/weir-dev/weir/broker/internal/replica"
	"github.com/weir-dev/weir/broker/internal/storage"
	"github.com/weir-dev/weir/broker/internal/topics"
	"github.com/weir-dev/weir/internal/dirlock"
)

// Broker is a running Weir broker: a topic registry on disk served over the
// Kafka protocol on one TCP listener.
type Broker struct {
	opts Options
	// lock is the data directory's lock, taken before anything in it is
	// read or written and released last in Close.
	lock   *dirlock.Lock
	health *storageHealth
	ln     net.Listener // the first listener
	lns    []boundListener
	reg    *topics.Registry
	srv    *protocol.Server
	cn     *cluster.Node    // nil for a single-node broker
	repl   *replica.Manager // nil for a single-node broker
	served chan struct{}    // closed when the accept loop returns
	srvErr error            // set before served is closed

	// metricsLn and metricsSrv serve /metrics when Options.MetricsAddr is
	// set; metricsDone is closed when that server's goroutine returns.
	metricsLn   net.Listener
	metricsSrv  *http.Server
	metricsDone chan struct{}

	stopClean context.CancelFunc
	cleanDone chan struct{} // closed when the cleaner goroutine returns

	closeOnce sync.Once
	closeErr  error
}

// Open locks and opens the data directory, binds the listener and starts
// serving in the background. Close stops it. opts is not modified.
//
// A data directory serves one broker at a time: if another broker (in this
// process or another) holds it, Open fails at once, before reading or
// writing anything there, with an error naming the directory and the
// holder's pid (IsDataDirLocked).
func Open(opts Options) (*Broker, error) {
	opts.TopicDefaults = maps.Clone(opts.TopicDefaults)
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	opts.DataDir = dir
	lock, err := dirlock.Acquire(dir)
	if err != nil {
		return nil, fmt.Errorf("broker: data directory (one broker per directory): %w", err)
	}
	if err := lock.PIDError(); err != nil {
		opts.Logger.Warn("broker: data directory locked, but the lock file does not name this process", "data_dir", dir, "err", err)
	}
	b, err := open(opts, lock)
	if err != nil {
		_ = lock.Release()
		return nil, err
	}
	return b, nil
}

// IsDataDirLocked reports whether err (from Open) says that another broker
// holds the data directory.
func IsDataDirLocked(err error) bool { return dirlock.IsLocked(err) }

// open is Open once the data directory is locked.
func open(opts Options, lock *dirlock.Lock) (*Broker, error) {
	dir := opts.DataDir
	health := newStorageHealth(opts.Logger, dir)
	openLog := opts.openLog
	if openLog == nil {
		openLog = storageOpener(opts, health)
	}
	reportFreeSpace(opts.Logger, dir)
	reg, err := topics.Open(topics.Options{
		Dir: dir, FS: opts.dataFS, OpenLog: openLog, Defaults: opts.TopicDefaults, Logger: opts.Logger,
		MaxPartitionsPerTopic: opts.MaxPartitionsPerTopic, MaxPartitionsPerBroker: opts.MaxPartitionsPerBroker,
	})
	if err != nil {
		return nil, err
	}
	cn, err := openCluster(opts, reg)
	if err != nil {
		_ = reg.Close()
		return nil, err
	}
	sec, err := openSecurity(&opts, dir, cn)
	if err != nil {
		closeCluster(cn)
		_ = reg.Close()
		return nil, err
	}
	lns, err := bindListeners(&opts)
	if err != nil {
		closeCluster(cn)
		_ = reg.Close()
		return nil, err
	}
	ln, hp, adv := lns[0].ln, protocol.Node{Host: lns[0].l.Host, Port: lns[0].l.Port}, lns[0].adv
	first := min(int32(1<<20), opts.MaxFrameBytes)
	repl, err := openReplication(opts, cn, reg)
	if err != nil {
		closeListeners(lns)
		closeCluster(cn)
		_ = reg.Close()
		return nil, err
	}
	srv, err := protocol.New(protocol.Config{
		Node:                protocol.Node{ID: opts.NodeID, Host: hp.Host, Port: hp.Port},
		Topics:              reg,
		Logger:              opts.Logger,
		MaxFrameBytes:       opts.MaxFrameBytes,
		FirstFrameMaxBytes:  first,
		FrameReadTimeout:    opts.FrameReadTimeout,
		ConnectionsMaxIdle:  opts.ConnectionsMaxIdle,
		MaxConnections:      max(opts.MaxConnections, 0),
		MaxConnectionsPerIP: opts.MaxConnectionsPerIP,
		AutoCreateTopics:    !opts.DisableAutoCreateTopics,
		DefaultPartitions:   opts.DefaultPartitions,
		OffsetsReplication:  opts.OffsetsTopicReplicationFactor,
		Groups: group.Options{
			InitialRebalanceDelay: opts.GroupInitialRebalanceDelay,
			MinSessionTimeout:     opts.GroupMinSessionTimeout,
			MaxSessionTimeout:     opts.GroupMaxSessionTimeout,
			OffsetsRetention:      opts.OffsetsRetention,
			OffsetsPartitions:     opts.OffsetsTopicPartitions,
		},
		Cluster:     clusterOf(cn),
		Replication: replicationOf(repl),
		Security:    sec,
	})
	if err == nil && cn != nil {
		self := protocol.Node{ID: opts.NodeID, Host: hp.Host, Port: hp.Port, Listeners: clusterListeners(&opts, lns)}
		if err = startCluster(cn, self); err != nil {
			_ = srv.Close()
		}
	}
	if err != nil {
		closeListeners(lns)
		closeCluster(cn)
		_ = reg.Close()
		return nil, err
	}
	startReplication(repl, cn)
	b := &Broker{opts: opts, lock: lock, health: health, ln: ln, lns: lns, reg: reg, srv: srv, cn: cn, repl: repl, served: make(chan struct{}), cleanDone: make(chan struct{})}
	if opts.MetricsAddr != "" {
		if err := b.startMetrics(); err != nil {
			closeCluster(cn)
			closeReplication(repl)
			_ = srv.Close()
			closeListeners(lns)
			_ = reg.Close()
			return nil, err
		}
	}
	go b.serveListeners()
	cleanCtx, stopClean := context.WithCancel(context.Background())
	b.stopClean = stopClean
	go b.cleanLoop(cleanCtx)
	opts.Logger.Info("weir broker serving", "listen", ln.Addr().String(), "advertised", adv, "listeners", len(lns),
		"data_dir", dir, "fsync", string(opts.Fsync), "auto_create_topics", !opts.DisableAutoCreateTopics)
	return b, nil
}

// Addr returns the address the broker listens on (useful with port 0).
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// MetricsAddr returns the address the metrics server listens on, or ""
// when Options.MetricsAddr is unset.
func (b *Broker) MetricsAddr() string {
	if b.metricsLn == nil {
		return ""
	}
	return b.metricsLn.Addr().String()
}

// startMetrics binds Options.MetricsAddr and serves the broker's own
// Prometheus registry (not the process-wide default one, so that two
// brokers in one process do not collide) on /metrics.
func (b *Broker) startMetrics() error {
	reg := prometheus.NewRegistry()
	if err := b.srv.RegisterMetrics(reg); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := b.health.register(reg); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	ln, err := net.Listen("tcp", b.opts.MetricsAddr)
	if err != nil {
		return fmt.Errorf("broker: metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(metricsGatherer(reg, b.cn), promhttp.HandlerOpts{}))
	b.metricsLn = ln
	b.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	b.metricsDone = make(chan struct{})
	go func() {
		defer close(b.metricsDone)
		if err := b.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.opts.Logger.Warn("metrics server stopped", "err", err)
		}
	}()
	b.opts.Logger.Info("weir broker metrics", "listen", ln.Addr().String())
	return nil
}

// Serve blocks until ctx is done or the listener fails, then closes the
// broker gracefully.
//
// A cluster node whose metadata quorum fails (its raft storage cannot be
// written, or was lost while the node was down) closes too, with that
// error: its metadata would stay frozen.
func (b *Broker) Serve(ctx context.Context) error {
	var err error
	var quorumFailed <-chan struct{}
	if b.cn != nil {
		quorumFailed = b.cn.QuorumFailed()
	}
	select {
	case <-ctx.Done():
	case <-b.served:
		err = b.srvErr
	case <-quorumFailed:
		err = fmt.Errorf("broker: metadata quorum stopped: %w", b.cn.Status().Err)
	}
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}

// ListenAndServe opens a broker with opts and serves until ctx is done.
func ListenAndServe(ctx context.Context, opts Options) error {
	b, err := Open(opts)
	if err != nil {
		return err
	}
	return b.Serve(ctx)
}

// Close stops accepting connections, lets every connection finish the
// request in hand, then syncs and closes every partition log and releases
// the data directory.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		// A cluster node first hands its leaderships away (controlled
		// shutdown) while clients can still be served.
		cerr := closeCluster(b.cn)
		closeReplication(b.repl)
		var merr error
		if b.metricsSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if merr = b.metricsSrv.Shutdown(ctx); merr != nil {
				merr = errors.Join(fmt.Errorf("broker: metrics server: %w", merr), b.metricsSrv.Close())
			}
			cancel()
			<-b.metricsDone
		}
		err := errors.Join(cerr, merr, b.srv.Close())
		<-b.served
		b.stopClean()
		<-b.cleanDone
		b.closeErr = errors.Join(err, b.reg.Close(), b.lock.Release())
		b.opts.Logger.Info("weir broker stopped")
	})
	return b.closeErr
}

// cleanLoop applies retention and compaction to every partition each
// CleanInterval until ctx is done. Partitions are cleaned one at a time so
// that the cleaner's I/O stays a small share of the machine.
func (b *Broker) cleanLoop(ctx context.Context) {
	defer close(b.cleanDone)
	if b.opts.CleanInterval < 0 {
		return
	}
	tick := time.NewTicker(b.opts.CleanInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// A full disk fails the compaction of every partition that has
		// work: one line per pass says so instead of one per partition.
		var full []string
		var fullErr error
		for _, t := range b.reg.List() {
			for i := range t.NumPartitions() {
				p, ok := t.Partition(i)
				if !ok || t.Deleted() {
					continue
				}
				err := p.Log().Clean(ctx)
				switch {
				case err == nil || ctx.Err() != nil || t.Deleted():
				case storage.IsDiskFull(err):
					if len(full) == 0 {
						fullErr = err
					}
					full = append(full, fmt.Sprintf("%s/%d", t.Name(), i))
				default:
					b.opts.Logger.Warn("cleaning partition", "topic", t.Name(), "partition", i, "err", err)
				}
			}
		}
		if len(full) > 0 {
			b.opts.Logger.Warn("broker: disk full: retention or compaction could not finish; retention still deletes whole segments",
				"partitions", len(full), "first", full[0], "err", fullErr)
		}
	}
}
