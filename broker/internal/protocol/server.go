package protocol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// Node is this broker's identity as clients see it.
type Node struct {
	// ID is the broker's node id.
	ID int32
	// Host and Port are the advertised address.
	Host string
	Port int32
}

// Config configures a Server.
type Config struct {
	// Node is the advertised identity.
	Node Node
	// Topics is the topic registry. Required.
	Topics *topics.Registry
	// Logger receives connection and handler logs. Default: slog.Default().
	Logger *slog.Logger
	// MaxFrameBytes caps a request frame once a connection has sent one
	// valid request. Default: 100 MiB.
	MaxFrameBytes int32
	// FirstFrameMaxBytes caps frames until the connection has sent one
	// valid request, so that unauthenticated garbage cannot make the broker
	// allocate much. Default: 1 MiB.
	FirstFrameMaxBytes int32
	// MaxControlFrameBytes caps requests other than Produce, whose decoded
	// form can be many times their wire size. Default: 4 MiB (or
	// MaxFrameBytes if smaller).
	MaxControlFrameBytes int32
	// MaxInflightBytes bounds the request bytes held by all connections
	// together; a connection whose next frame does not fit waits. Default:
	// 4 x MaxFrameBytes, at least 256 MiB.
	MaxInflightBytes int64
	// ShutdownWriteGrace is how long a closing connection may take to write
	// the responses it holds, so that a peer that stopped reading cannot
	// hold up Close. Default: 10s.
	ShutdownWriteGrace time.Duration
	// AutoCreateTopics creates unknown topics named in Metadata and Produce
	// requests. NB: the zero value is false; the broker package defaults it
	// to true.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and of
	// CreateTopics requests that leave it to the broker. Default: 1.
	DefaultPartitions int32
	// Groups configures the consumer group coordinator (see group.Options
	// for each default).
	Groups group.Options
	// Cluster, when set, puts the server in cluster mode (see cluster.go):
	// metadata from the cluster's image, admin requests forwarded to the
	// controller, partitions served only where this node leads. Default
	// nil: a single-node broker.
	Cluster Cluster
}

// EnsureDefaults fills zero fields with defaults.
func (c *Config) EnsureDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = 100 << 20
	}
	if c.FirstFrameMaxBytes == 0 {
		c.FirstFrameMaxBytes = 1 << 20
	}
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 1
	}
	if c.MaxControlFrameBytes == 0 {
		c.MaxControlFrameBytes = min(4<<20, c.MaxFrameBytes)
	}
	if c.ShutdownWriteGrace == 0 {
		c.ShutdownWriteGrace = 10 * time.Second
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = max(4*int64(c.MaxFrameBytes), 256<<20)
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Topics == nil {
		errs = append(errs, errors.New("protocol: Topics is required"))
	}
	if c.MaxFrameBytes < 64 {
		errs = append(errs, fmt.Errorf("protocol: MaxFrameBytes %d is too small", c.MaxFrameBytes))
	}
	if c.FirstFrameMaxBytes < 64 || c.FirstFrameMaxBytes > c.MaxFrameBytes {
		errs = append(errs, fmt.Errorf("protocol: FirstFrameMaxBytes %d must be in [64, MaxFrameBytes]", c.FirstFrameMaxBytes))
	}
	if c.MaxInflightBytes < int64(c.MaxFrameBytes) {
		errs = append(errs, fmt.Errorf("protocol: MaxInflightBytes %d is below MaxFrameBytes %d", c.MaxInflightBytes, c.MaxFrameBytes))
	}
	if c.DefaultPartitions < 1 || c.Topics != nil && c.DefaultPartitions > c.Topics.MaxPartitionsPerTopic() {
		errs = append(errs, fmt.Errorf("protocol: DefaultPartitions %d out of range", c.DefaultPartitions))
	}
	return errors.Join(errs...)
}

// Server serves the Kafka protocol on connections handed to it.
type Server struct {
	cfg Config

	// Topics is the topic registry (see the package documentation).
	Topics *topics.Registry
	// Logger is the server's logger.
	Logger *slog.Logger

	exts map[string]Extension // set in New, read-only afterwards

	ctx    context.Context // cancelled by Close: handlers finish quickly
	cancel context.CancelFunc

	inFlight atomic.Int64 // requests inside a handler right now
	budget   *byteBudget  // request bytes held by all connections
	metrics  *serverMetrics

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu
	closed bool                  // guarded by mu
	wg     sync.WaitGroup        // one per connection and listener goroutine
}

// New creates a server and opens the registered extensions.
func New(cfg Config) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, Topics: cfg.Topics, Logger: cfg.Logger,
		exts: map[string]Extension{}, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, budget: newByteBudget(cfg.MaxInflightBytes),
		metrics: newServerMetrics(),
	}
	for _, e := range extensions {
		x, err := e.open(s)
		if err != nil {
			cancel()
			s.closeExtensions()
			return nil, fmt.Errorf("protocol: open extension %q: %w", e.name, err)
		}
		s.exts[e.name] = x
	}
	return s, nil
}

// Node returns the advertised identity.
func (s *Server) Node() Node { return s.cfg.Node }

// ClusterID returns the persistent cluster id.
func (s *Server) ClusterID() string { return s.Topics.ClusterID() }

// Extension returns the extension registered under name, or nil.
func (s *Server) Extension(name string) Extension { return s.exts[name] }

// Config returns the server's configuration (with defaults filled).
func (s *Server) Config() Config { return s.cfg }

// Serve accepts connections on ln until ln fails or the server closes. It
// always closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return net.ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	stop := context.AfterFunc(s.ctx, func() { _ = ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.ServeConn(nc)
	}
}

// ServeConn serves one connection in a new goroutine owned by the server.
func (s *Server) ServeConn(nc net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	go func() {
		defer s.wg.Done()
		c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), log: s.Logger}
		c.serve(s.ctx)
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
}

// InFlight returns the number of requests being handled right now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// InflightBytes returns the request bytes connections hold right now
// (read ahead, or being handled).
func (s *Server) InflightBytes() int64 {
	s.budget.mu.Lock()
	defer s.budget.mu.Unlock()
	return s.budget.total - s.budget.avail
}

// OpenConns returns the number of connections being served.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting, lets every connection finish the request it is
// handling (waiting fetches return at once), waits for them, and closes the
// extensions. It does not close the topic registry.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return s.closeExtensions()
}

func (s *Server) closeExtensions() error {
	var errs []error
	for name, x := range s.exts {
		if err := x.Close(); err != nil {
			errs = append(errs, fmt.Errorf("protocol: close extension %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
