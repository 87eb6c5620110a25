package protocol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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
	// Listeners are the node's named listeners with their advertised
	// addresses (cluster mode: as registered with the controller); a
	// client is told the address of the listener it connected through
	// (see For). Empty: Host and Port serve every client.
	Listeners []NodeListener
}

// NodeListener is one advertised listener of a node.
type NodeListener struct {
	Name     string
	Protocol SecurityProtocol
	Host     string
	Port     int32
}

// For returns n as the client of r must see it: the address of n's
// listener named as the one r came through, or n's own address when n has
// no listener of that name (or r came through none).
func (n Node) For(r *Request) Node {
	if r == nil || r.Session == nil || r.Session.Listener == nil {
		return n
	}
	for _, l := range n.Listeners {
		if l.Name == r.Session.Listener.Name {
			n.Host, n.Port = l.Host, l.Port
			return n
		}
	}
	return n
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
	// FirstFrameMaxBytes caps a connection's first frame, until it has
	// sent one valid request, so that unauthenticated garbage cannot make
	// the broker allocate much. That frame is not charged to the request
	// memory budgets (a peer that never gets that far holds none of it), so
	// the cap covers what decoding it may allocate: a first request other
	// than Produce may be at most 1/16 of it (but 4 KiB at least). Default:
	// 1 MiB.
	FirstFrameMaxBytes int32
	// MaxControlFrameBytes caps requests other than Produce, whose decoded
	// form can be many times their wire size. Default: 4 MiB (or
	// MaxFrameBytes if smaller).
	MaxControlFrameBytes int32
	// MaxInflightBytes bounds the request memory held by all connections
	// together: the bytes of frames as they arrive, and, for requests other
	// than Produce, what decoding them may allocate. A connection whose
	// next bytes do not fit waits, in FIFO order, at most FrameReadTimeout.
	// A connection's first frame is not charged (see FirstFrameMaxBytes).
	// Default: 4 x MaxFrameBytes, at least 256 MiB.
	MaxInflightBytes int64
	// MaxConnInflightBytes is one connection's share of MaxInflightBytes:
	// the most request memory it may hold at once (the frame it is reading
	// plus those read ahead or being handled), so that one connection, or a
	// few, cannot take the whole budget. Default: a quarter of
	// MaxInflightBytes, at least MaxFrameBytes.
	MaxConnInflightBytes int64
	// FrameReadTimeout bounds a partly received frame: from its first
	// byte, the whole frame must arrive, and find room in the request
	// memory, within this time, or the connection is closed. Time spent
	// waiting for the connection's own earlier requests to release memory
	// does not count. Default: 30s (Kafka's request.timeout.ms); negative:
	// no bound.
	FrameReadTimeout time.Duration
	// ConnectionsMaxIdle closes a connection on which nothing has been
	// read or written for this long while it has no request in hand
	// (Kafka's connections.max.idle.ms). Default: 10 minutes; negative:
	// never.
	ConnectionsMaxIdle time.Duration
	// MaxConnections caps the connections served at once; a connection
	// accepted beyond it is closed at once. Default 0: no limit.
	MaxConnections int
	// MaxConnectionsPerIP caps the connections served at once from one
	// remote IP address; a connection beyond it is closed at once. Default
	// 0: no limit.
	MaxConnectionsPerIP int
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
	// OffsetsReplication is the replication factor __consumer_offsets is
	// created with in cluster mode, capped at the registered brokers.
	// Default 3.
	OffsetsReplication int16
	// Groups configures the consumer group coordinator (see group.Options
	// for each default).
	Groups group.Options
	// Cluster, when set, puts the server in cluster mode (see cluster.go):
	// metadata from the cluster's image, admin requests forwarded to the
	// controller, partitions served only where this node leads. Default
	// nil: a single-node broker.
	Cluster Cluster
	// Replication replicates partitions across the cluster's brokers
	// (cluster mode only). Default nil: partitions live on their leader
	// alone.
	Replication Replication
	// Security configures SASL and ACLs (see security.go). Default: none.
	Security Security
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
	if c.OffsetsReplication <= 0 {
		c.OffsetsReplication = 3
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
	if c.MaxConnInflightBytes == 0 {
		c.MaxConnInflightBytes = max(c.MaxInflightBytes/4, int64(c.MaxFrameBytes))
	}
	if c.FrameReadTimeout == 0 {
		c.FrameReadTimeout = 30 * time.Second
	}
	if c.ConnectionsMaxIdle == 0 {
		c.ConnectionsMaxIdle = 10 * time.Minute
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
	if c.MaxConnInflightBytes < int64(c.MaxFrameBytes) || c.MaxConnInflightBytes > c.MaxInflightBytes {
		errs = append(errs, fmt.Errorf("protocol: MaxConnInflightBytes %d must be in [MaxFrameBytes %d, MaxInflightBytes %d]",
			c.MaxConnInflightBytes, c.MaxFrameBytes, c.MaxInflightBytes))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("protocol: MaxConnections %d is negative", c.MaxConnections))
	}
	if c.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("protocol: MaxConnectionsPerIP %d is negative", c.MaxConnectionsPerIP))
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
	budget   *byteBudget  // request memory held by all connections
	// keptFrameBytes is what every connection's kept read buffers hold
	// together, at most keptFrameLimit (framebufs.go).
	keptFrameBytes atomic.Int64
	metrics        *serverMetrics
	logLimit       *logLimiter // for lines an attacker or an overload could repeat without end
	sec            *securityState

	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
	// perIP counts conns by remote IP address. Guarded by mu; Invariant:
	// the counts sum to len(conns), and no count is zero.
	perIP  map[string]int
	closed bool           // guarded by mu
	wg     sync.WaitGroup // one per connection and listener goroutine
}

// keptFrameLimit bounds the read buffers all connections keep together:
// a quarter of the request memory.
func (s *Server) keptFrameLimit() int64 { return s.cfg.MaxInflightBytes / 4 }

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
		conns: map[net.Conn]struct{}{}, perIP: map[string]int{},
		budget:   newByteBudget(cfg.MaxInflightBytes),
		metrics:  newServerMetrics(),
		logLimit: newLogLimiter(time.Second, 5),
		sec:      newSecurityState(),
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
// always closes ln. A temporary accept error (out of file descriptors, a
// handshake aborted by the peer) is logged, at a limited rate, and retried
// after a pause that doubles from 5ms up to 1s; any other ends Serve.
func (s *Server) Serve(ln net.Listener) error { return s.ServeListener(ln, nil) }

// ServeListener is Serve for the connections of a named listener (nil: a
// plaintext listener advertising Config.Node).
func (s *Server) ServeListener(ln net.Listener, l *Listener) error {
	if l == nil {
		l = s.defaultListener()
	}
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
	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if !isTemporaryAcceptError(err) {
				return fmt.Errorf("protocol: accept on %s: %w", ln.Addr(), err)
			}
			pause = min(max(2*pause, acceptMinPause), acceptMaxPause)
			s.metrics.acceptErrors.Inc()
			s.logLimited(slog.LevelWarn, "accept", "accept failed; retrying",
				"listener", ln.Addr().String(), "retry_in", pause, "open_connections", s.OpenConns(), "err", err)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		pause = 0
		s.serveConn(nc, l)
	}
}

// Bounds of the pause before retrying a failed accept.
const (
	acceptMinPause = 5 * time.Millisecond
	acceptMaxPause = time.Second
)

// isTemporaryAcceptError reports whether an accept error is worth
// retrying: the listener still works, but the process or the system is out
// of a resource for now (descriptors, buffers), or one pending connection
// went bad before it was accepted.
func isTemporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ServeConn serves one connection in a new goroutine owned by the server,
// or closes it at once if that would exceed MaxConnections or
// MaxConnectionsPerIP.
func (s *Server) ServeConn(nc net.Conn) { s.serveConn(nc, s.defaultListener()) }

func (s *Server) serveConn(nc net.Conn, l *Listener) {
	ip := remoteIP(nc.RemoteAddr())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	var refused closeReason
	switch {
	case s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections:
		refused = reasonMaxConnections
	case s.cfg.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnectionsPerIP:
		refused = reasonMaxConnectionsPerIP
	}
	if refused != "" {
		open, fromIP := len(s.conns), s.perIP[ip]
		s.mu.Unlock()
		s.metrics.closed(refused) // before Close: whoever sees it closed sees it counted
		_ = nc.Close()
		s.logLimited(slog.LevelWarn, string(refused), "connection refused",
			"remote", nc.RemoteAddr().String(), "reason", string(refused), "open_connections", open,
			"from_ip", fromIP, "max_connections", s.cfg.MaxConnections, "max_connections_per_ip", s.cfg.MaxConnectionsPerIP)
		return
	}
	s.conns[nc] = struct{}{}
	s.perIP[ip]++
	s.wg.Add(1)
	s.mu.Unlock()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	go func() {
		defer s.wg.Done()
		if tc, sess := s.secure(nc, l, ip); sess != nil {
			c := newConn(s, tc)
			c.sess = sess
			c.serve(s.ctx)
		}
		s.mu.Lock()
		delete(s.conns, nc)
		if s.perIP[ip]--; s.perIP[ip] == 0 {
			delete(s.perIP, ip)
		}
		s.mu.Unlock()
	}()
}

// remoteIP returns the IP address of a remote address, or the whole
// address when it has no port (a pipe in tests).
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// InFlight returns the number of requests being handled right now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// InflightBytes returns the request memory connections hold right now
// (frames being read, read ahead, or being handled).
func (s *Server) InflightBytes() int64 { return s.budget.inUse() }

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
