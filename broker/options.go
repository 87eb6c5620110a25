package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// FsyncPolicy says when appended data is forced to disk.
type FsyncPolicy string

// Fsync policies.
const (
	// FsyncGroup fsyncs before acknowledging a produce; concurrent producers
	// share one fsync (group commit). Nothing acknowledged is lost on a
	// crash or power failure.
	FsyncGroup FsyncPolicy = "group"
	// FsyncInterval fsyncs every FsyncInterval; a power failure loses up to
	// that much acknowledged data (a process crash loses nothing).
	FsyncInterval FsyncPolicy = "interval"
	// FsyncNever leaves flushing to the operating system.
	FsyncNever FsyncPolicy = "never"
)

// The defaults of Options.MaxPartitionsPerTopic and
// Options.MaxPartitionsPerBroker.
const (
	DefaultMaxPartitionsPerTopic  = topics.DefaultMaxPartitionsPerTopic
	DefaultMaxPartitionsPerBroker = topics.DefaultMaxPartitionsPerBroker
	// DefaultOpenSegmentFiles is the default of Options.OpenSegmentFiles.
	DefaultOpenSegmentFiles = 1024
)

// Options configure a Broker. The zero value, after EnsureDefaults, is a
// broker on 127.0.0.1:9092 with data in ./weir-data.
type Options struct {
	// Listen is the TCP address to listen on. Default "127.0.0.1:9092".
	// Port 0 picks a free port (see Broker.Addr).
	Listen string
	// AdvertisedAddr is the host:port clients are told to connect to.
	// Default: the address the listener is bound to.
	AdvertisedAddr string
	// DataDir holds topics, logs and broker metadata. Default "./weir-data".
	// It serves one broker at a time: Open locks it (flock on
	// DataDir/weir.lock, which holds the broker's pid) before touching
	// anything in it.
	DataDir string
	// NodeID is this broker's node id. Default 0.
	NodeID int32
	// Fsync is the durability policy. Default FsyncGroup.
	Fsync FsyncPolicy
	// FsyncInterval is the period under FsyncInterval. Default 1s under
	// that policy; setting it under another policy is refused by Validate
	// (it would be ignored).
	FsyncInterval time.Duration
	// OpenSegmentFiles bounds how many sealed segment files the broker's
	// partitions hold open together (one cache shared by every partition;
	// each partition's active segment is open besides). Default 1024.
	OpenSegmentFiles int
	// DisableAutoCreateTopics turns off the creation of unknown topics
	// named in Metadata and Produce requests. Default false: topics are
	// auto-created, as in Kafka.
	DisableAutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that leave it to the broker, at most
	// MaxPartitionsPerTopic. Default 1.
	DefaultPartitions int32
	// MaxPartitionsPerTopic bounds the partitions of one topic: a
	// CreateTopics or CreatePartitions asking for more is refused with
	// INVALID_PARTITIONS. Default 10,000.
	MaxPartitionsPerTopic int32
	// MaxPartitionsPerBroker bounds the partitions of all topics together
	// (each holds at least one open file and a goroutine); creating more is
	// refused with INVALID_PARTITIONS. Default 50,000; at least
	// MaxPartitionsPerTopic.
	MaxPartitionsPerBroker int32
	// TopicDefaults are broker-wide defaults for topic configs
	// (retention.ms, cleanup.policy, ...); names absent take Kafka's
	// defaults. Default none.
	TopicDefaults map[string]string
	// MaxFrameBytes caps one request. Default 100 MiB. Before a connection
	// has sent one valid request the cap is 1 MiB (or MaxFrameBytes if
	// smaller) for a Produce and 64 KiB for anything else.
	MaxFrameBytes int32
	// FrameReadTimeout bounds a partly received request: from its first
	// byte, the whole request must arrive, and find room in the broker's
	// request memory, within this time, or the connection is closed.
	// Default 30s (Kafka's request.timeout.ms); negative: no bound.
	FrameReadTimeout time.Duration
	// ConnectionsMaxIdle closes a connection on which nothing has been read
	// or written for this long while it has no request in hand. Default 10
	// minutes (Kafka's connections.max.idle.ms); negative: never.
	ConnectionsMaxIdle time.Duration
	// MaxConnections caps the client connections served at once; a
	// connection beyond it is closed as soon as it is accepted. Default:
	// three quarters of the process's open-file limit (RLIMIT_NOFILE) when
	// the broker opens, leaving the rest to logs and the metrics server; no
	// limit where the open-file limit is unknown or unlimited. Negative: no
	// limit.
	MaxConnections int
	// MaxConnectionsPerIP caps the connections served at once from one
	// remote IP address; a connection beyond it is closed as soon as it is
	// accepted. Default 0: no limit (Kafka's max.connections.per.ip).
	MaxConnectionsPerIP int
	// CleanInterval is how often retention and compaction run over every
	// partition. Default 1 minute; negative disables the cleaner.
	CleanInterval time.Duration
	// Logger receives structured logs. Default slog.Default().
	Logger *slog.Logger
	// MetricsAddr is the TCP address of an HTTP server serving Prometheus
	// metrics on /metrics (requests, errors, produced and fetched bytes,
	// consumer group lag). Default "": no metrics server. Port 0 picks a
	// free port (see Broker.MetricsAddr).
	MetricsAddr string

	// GroupInitialRebalanceDelay holds an empty consumer group's first
	// rebalance so that members starting together share it. Default 3s
	// (Kafka's group.initial.rebalance.delay.ms); negative disables it.
	GroupInitialRebalanceDelay time.Duration
	// GroupMinSessionTimeout and GroupMaxSessionTimeout bound the session
	// timeout a consumer group member may ask for in JoinGroup; outside
	// them the join is refused with INVALID_SESSION_TIMEOUT. Defaults 6s and
	// 30m (Kafka's group.min.session.timeout.ms and
	// group.max.session.timeout.ms).
	GroupMinSessionTimeout time.Duration
	GroupMaxSessionTimeout time.Duration
	// OffsetsRetention is how long the committed offsets of a group that
	// stays empty are kept. Default 7 days (Kafka's
	// offsets.retention.minutes).
	OffsetsRetention time.Duration
	// OffsetsTopicPartitions is the partition count __consumer_offsets is
	// created with. Default 50.
	OffsetsTopicPartitions int32
	// OffsetsTopicReplicationFactor is the replication factor
	// __consumer_offsets is created with in a cluster, capped at the
	// number of brokers then registered (Kafka's
	// offsets.topic.replication.factor). Default 3.
	OffsetsTopicReplicationFactor int16

	// ControllerVoters, when set, makes this node part of a cluster: the
	// controller voters as id@host:port, comma-separated (the flag
	// --controller-voters). Every node of a cluster lists the same voters;
	// NodeID must be one of them. Default "": a single-node broker, with no
	// quorum and nothing of the cluster on any request's path.
	ControllerVoters string
	// Roles are this node's roles in a cluster, comma-separated: "broker",
	// "controller" or both. Default (with ControllerVoters):
	// "broker,controller". Ignored without ControllerVoters.
	Roles string
	// RejoinQuorum brings a controller voter back after its raft storage
	// (DataDir/metadata-raft) was lost or moved away while the other
	// voters kept theirs (the flag --rejoin): the voters remove it and add
	// it back, and it catches up from them; until then it does not vote.
	// It needs a majority of the other voters up, and acts only on an
	// empty raft directory (see quorum.Options.Rejoin).
	RejoinQuorum bool
	// ReplicaLagTime is replica.lag.time.max.ms (cluster mode): a follower
	// that has not caught up with its leader's end for this long leaves the
	// partition's ISR. Default 10s.
	ReplicaLagTime time.Duration
	// LeaderRebalanceInterval (cluster mode) is how often the controller
	// moves the leadership of partitions whose preferred replica (the
	// first in the assignment) is back in the ISR to that replica (Kafka's
	// auto.leader.rebalance.enable and
	// leader.imbalance.check.interval.seconds). Default 30s; negative:
	// never (`weir cluster elect-leaders` still moves them).
	LeaderRebalanceInterval time.Duration
	// BrokerSessionTimeout is broker.session.timeout.ms (cluster mode): a
	// broker whose heartbeats (every 500ms) stop for this long is fenced
	// and its leaderships move; it bounds how long a killed leader's
	// partitions stay without one. Default 9s.
	BrokerSessionTimeout time.Duration

	// Listeners, when set, are the broker's listeners, each named, with
	// its security protocol (the flag --listener
	// NAME=PROTOCOL://host:port, repeatable); Listen and AdvertisedAddr
	// must then be left empty. Default: one PLAINTEXT listener on Listen.
	// In cluster mode every listener is registered with the controller,
	// and clients are told the other brokers' addresses on the listener
	// they connected through.
	Listeners []Listener
	// InterBrokerListener names the listener other brokers connect to
	// (cluster mode: followers fetch from leaders there). It must be
	// PLAINTEXT or SSL; under SSL brokers present their certificate
	// (TLSCertFile, which must then allow client authentication) and
	// verify each other against TLSClientCAFile, and a broker's principal
	// is User:<its certificate's subject>, to be listed in SuperUsers when
	// the authorizer is on. Default: the first listener.
	InterBrokerListener string
	// ControllerTLS makes the controller listener (raft between the
	// voters, and the brokers' controller RPC) speak mutual TLS with
	// TLSCertFile and TLSKeyFile, every peer verified against
	// TLSClientCAFile. Default false: plaintext (cluster mode only).
	ControllerTLS bool
	// TLSCertFile and TLSKeyFile are the PEM certificate (chain) and key
	// of SSL and SASL_SSL listeners, reloaded when the files change.
	// Only TLS 1.2 and later are spoken.
	TLSCertFile string
	TLSKeyFile  string
	// TLSClientCAFile, when set, makes TLS listeners verify client
	// certificates against these PEM CAs (mutual TLS); a connection with
	// one is the principal User:<the certificate's subject>, e.g.
	// User:CN=alice,O=Acme, unless it then authenticates with SASL.
	TLSClientCAFile string
	// TLSClientAuth is "required" (the default with TLSClientCAFile) or
	// "requested" (a client certificate is verified when given).
	TLSClientAuth string
	// SASLPlainUsersFile enables SASL PLAIN on SASL listeners against a
	// file of user:password lines. SCRAM-SHA-256 and SCRAM-SHA-512 are
	// always enabled there, against the credentials kept (salted and
	// hashed) in DataDir/scram-users.json (in cluster mode in the
	// metadata log; weir user create).
	SASLPlainUsersFile string
	// Authorizer turns on ACLs (kept in DataDir/acls.json; in cluster
	// mode in the metadata log; weir acl add): every request is checked
	// as Kafka checks it.
	Authorizer bool
	// SuperUsers are principals allowed everything (e.g. User:admin).
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows an operation on a resource no ACL
	// names (Kafka's allow.everyone.if.no.acl.found). Default false: denied.
	AllowEveryoneIfNoACLFound bool
	// ConnectionsMaxReauth, when positive, ends SASL sessions after this
	// long (Kafka's connections.max.reauth.ms): clients re-authenticate on
	// their connection (KIP-368), or it is closed. Default 0: never.
	ConnectionsMaxReauth time.Duration

	// openLog overrides the partition log implementation (tests).
	openLog topics.OpenLogFunc
	// logFS is the filesystem partition logs live on (tests inject
	// faults with it). Default: dataFS.
	logFS vfs.FS
	// dataFS is the filesystem of the data directory's topic registry and
	// metadata raft log, and of the partition logs unless logFS is set
	// (power-loss tests put it on a crashable memory filesystem; the lock
	// file and cluster.json stay on the operating system's). Default: the
	// operating system's.
	dataFS vfs.FS
	// cluster holds test overrides of the cluster node's options.
	cluster clusterTestOptions
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Listen == "" && len(o.Listeners) == 0 {
		o.Listen = "127.0.0.1:9092"
	}
	if o.DataDir == "" {
		o.DataDir = "weir-data"
	}
	if o.Fsync == "" {
		o.Fsync = FsyncGroup
	}
	if o.FsyncInterval == 0 && o.Fsync == FsyncInterval {
		o.FsyncInterval = time.Second
	}
	if o.DefaultPartitions == 0 {
		o.DefaultPartitions = 1
	}
	if o.OpenSegmentFiles == 0 {
		o.OpenSegmentFiles = DefaultOpenSegmentFiles
	}
	if o.MaxPartitionsPerTopic == 0 {
		o.MaxPartitionsPerTopic = DefaultMaxPartitionsPerTopic
	}
	if o.MaxPartitionsPerBroker == 0 {
		o.MaxPartitionsPerBroker = DefaultMaxPartitionsPerBroker
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = 100 << 20
	}
	if o.CleanInterval == 0 {
		o.CleanInterval = time.Minute
	}
	if o.FrameReadTimeout == 0 {
		o.FrameReadTimeout = 30 * time.Second
	}
	if o.ConnectionsMaxIdle == 0 {
		o.ConnectionsMaxIdle = 10 * time.Minute
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = defaultMaxConnections()
	}
	if o.GroupMinSessionTimeout == 0 {
		o.GroupMinSessionTimeout = 6 * time.Second
	}
	if o.GroupMaxSessionTimeout == 0 {
		o.GroupMaxSessionTimeout = 30 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.OpenSegmentFiles < 0 {
		errs = append(errs, fmt.Errorf("broker: open segment files %d must not be negative", o.OpenSegmentFiles))
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil && len(o.Listeners) == 0 {
		errs = append(errs, fmt.Errorf("broker: listen address %q: %w", o.Listen, err))
	}
	if o.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("broker: metrics address %q: %w", o.MetricsAddr, err))
		}
	}
	if o.AdvertisedAddr != "" {
		if _, err := splitAdvertised(o.AdvertisedAddr); err != nil {
			errs = append(errs, err)
		}
	}
	switch o.Fsync {
	case FsyncGroup, FsyncInterval, FsyncNever:
	default:
		errs = append(errs, fmt.Errorf("broker: fsync policy %q is not group, interval or never", o.Fsync))
	}
	if o.FsyncInterval < 0 {
		errs = append(errs, fmt.Errorf("broker: fsync interval %v is negative", o.FsyncInterval))
	}
	if o.FsyncInterval != 0 && o.Fsync != FsyncInterval {
		errs = append(errs, fmt.Errorf("broker: fsync interval %v given with fsync policy %q, which would ignore it (it applies only to %q)", o.FsyncInterval, o.Fsync, FsyncInterval))
	}
	if o.NodeID < 0 {
		errs = append(errs, fmt.Errorf("broker: node id %d is negative", o.NodeID))
	}
	if o.MaxPartitionsPerBroker < 1 {
		errs = append(errs, fmt.Errorf("broker: max partitions per broker %d is below 1", o.MaxPartitionsPerBroker))
	}
	if o.MaxPartitionsPerTopic < 1 || o.MaxPartitionsPerTopic > max(o.MaxPartitionsPerBroker, 1) {
		errs = append(errs, fmt.Errorf("broker: max partitions per topic %d outside 1..%d (the max partitions per broker)", o.MaxPartitionsPerTopic, o.MaxPartitionsPerBroker))
	}
	if o.DefaultPartitions < 1 || o.DefaultPartitions > max(o.MaxPartitionsPerTopic, 1) {
		errs = append(errs, fmt.Errorf("broker: default partitions %d outside 1..%d (the max partitions per topic)", o.DefaultPartitions, o.MaxPartitionsPerTopic))
	}
	// NB: 0 leaves the count to the group coordinator's default.
	if o.OffsetsTopicPartitions < 0 || o.OffsetsTopicPartitions > max(o.MaxPartitionsPerTopic, 1) {
		errs = append(errs, fmt.Errorf("broker: offsets topic partitions %d outside 1..%d (the max partitions per topic)", o.OffsetsTopicPartitions, o.MaxPartitionsPerTopic))
	}
	if o.BrokerSessionTimeout < 0 || (o.BrokerSessionTimeout > 0 && o.BrokerSessionTimeout <= time.Second) {
		errs = append(errs, fmt.Errorf("broker: broker session timeout %v: must be over 1s (heartbeats go every 500ms)", o.BrokerSessionTimeout))
	}
	if o.OffsetsTopicReplicationFactor < 0 {
		errs = append(errs, fmt.Errorf("broker: offsets topic replication factor %d below 1", o.OffsetsTopicReplicationFactor))
	}
	if o.MaxFrameBytes < 1024 {
		errs = append(errs, fmt.Errorf("broker: max frame bytes %d below 1024", o.MaxFrameBytes))
	}
	if o.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("broker: max connections per IP %d is negative", o.MaxConnectionsPerIP))
	}
	if o.GroupMinSessionTimeout <= 0 || o.GroupMaxSessionTimeout < o.GroupMinSessionTimeout {
		errs = append(errs, fmt.Errorf("broker: group session timeout bounds [%v, %v]: want 0 < min <= max", o.GroupMinSessionTimeout, o.GroupMaxSessionTimeout))
	}
	if err := topics.CheckConfigs(o.TopicDefaults); err != nil {
		errs = append(errs, fmt.Errorf("broker: topic defaults: %w", err))
	}
	errs = append(errs, o.validateCluster()...)
	errs = append(errs, o.validateSecurity()...)
	return errors.Join(errs...)
}

// hostPort is an advertised address.
type hostPort struct {
	host string
	port int32
}

func splitAdvertised(addr string) (hostPort, error) {
	h, p, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(p)
		if err == nil && (n <= 0 || n > 65535) {
			err = fmt.Errorf("port %d out of range", n)
		}
		if err == nil && h == "" {
			err = errors.New("empty host")
		}
		if err == nil {
			return hostPort{h, int32(n)}, nil
		}
	}
	return hostPort{}, fmt.Errorf("broker: advertised address %q: %w", addr, err)
}

// defaultMaxConnections is three quarters of the open-file limit, or -1 (no
// limit) when that is unknown or too large to matter.
func defaultMaxConnections() int {
	n, ok := openFileLimit()
	if !ok || n >= 1<<30 {
		return -1
	}
	return max(int(n/4*3), 1)
}
