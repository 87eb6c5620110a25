package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/broker/internal/quorum"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// Options configure a Node. The zero value of each field means its default.
type Options struct {
	// NodeID is this node's id: one of Voters for a controller, outside
	// them for a broker-only node. Required.
	NodeID int32
	// Voters are the controller voters (--controller-voters). Required.
	Voters []quorum.Voter
	// Broker: this node is a broker (registers, serves partitions).
	// Controller: it is a controller voter. Default (both false): both.
	// A controller must be one of Voters; a broker-only node (Broker
	// without Controller) must not be: it follows the metadata log by
	// fetching it from the voters (observer.go).
	Broker, Controller bool
	// DataDir is the broker's data directory; the raft storage lives in
	// DataDir/metadata-raft and the cluster id in DataDir/cluster.json.
	// Required.
	DataDir string
	// Topics is the broker's topic registry, which the node keeps in step
	// with the metadata image. Required.
	Topics *topics.Registry

	// HeartbeatInterval is how often the broker heartbeats to the
	// controller. Default 500ms.
	HeartbeatInterval time.Duration
	// SessionTimeout is how long a broker may miss heartbeats before the
	// controller fences it. Default 9s (Kafka's broker.session.timeout.ms).
	SessionTimeout time.Duration
	// ShutdownTimeout bounds the controlled shutdown in Close (asking the
	// controller to move this broker's leaderships away). Default 3s.
	ShutdownTimeout time.Duration
	// DefaultPartitions is the partition count of topics created with -1.
	// Default 1.
	DefaultPartitions int32
	// LeaderRebalanceInterval is how often the controller moves
	// leaderships back to preferred replicas that are in the ISR
	// (metadata.Options.LeaderRebalanceInterval). Default 30s; negative:
	// never.
	LeaderRebalanceInterval time.Duration
	// TickInterval is the raft tick. Default 100ms (see quorum.Options).
	TickInterval time.Duration
	// RejoinQuorum: this voter's raft storage was lost and it asks the
	// other voters to take it back (quorum.Options.Rejoin).
	RejoinQuorum bool
	// ControllerListener is the controller listener. Default: one opened on
	// this node's voter address.
	ControllerListener net.Listener
	// ControllerTLS, when set, is the TLS server configuration the
	// controller listener speaks (Dial must then speak TLS too). Default:
	// plaintext.
	ControllerTLS *tls.Config
	// Dial connects to other voters (raft and RPC). Default: a net.Dialer
	// with a 2s timeout.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Now is the clock of the controller's sessions. Default time.Now.
	Now func() time.Time
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger
	// FS is the filesystem of DataDir/metadata-raft (tests crash it).
	// Default vfs.Default (the operating system's).
	FS vfs.FS
	// Registerer, when set, registers the node's metrics (weir_quorum_*,
	// weir_cluster_*). Default nil: they go to the node's own registry
	// (Node.Gatherer).
	Registerer prometheus.Registerer
}

// EnsureDefaults fills zero fields with defaults.
func (o *Options) EnsureDefaults() {
	if !o.Broker && !o.Controller {
		o.Broker, o.Controller = true, true
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 500 * time.Millisecond
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 9 * time.Second
	}
	if o.DefaultPartitions == 0 {
		o.DefaultPartitions = 1
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 3 * time.Second
	}
	if o.TickInterval == 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: 2 * time.Second}
		o.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.NodeID <= 0 {
		errs = append(errs, fmt.Errorf("cluster: node id %d must be positive in a cluster (--node-id)", o.NodeID))
	}
	if len(o.Voters) == 0 {
		errs = append(errs, errors.New("cluster: no controller voters"))
	} else {
		voter := slices.ContainsFunc(o.Voters, func(v quorum.Voter) bool { return v.ID == uint64(o.NodeID) })
		switch {
		case o.Controller && !voter:
			errs = append(errs, fmt.Errorf("cluster: node %d is not one of the controller voters %s: a controller must be one (or start it with --roles broker)", o.NodeID, quorum.FormatVoters(o.Voters)))
		case !o.Controller && voter:
			errs = append(errs, fmt.Errorf("cluster: node %d is one of the controller voters %s, so it must have the controller role: give a broker-only node (--roles broker) an id outside the voters", o.NodeID, quorum.FormatVoters(o.Voters)))
		}
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("cluster: DataDir is required"))
	}
	if o.Topics == nil {
		errs = append(errs, errors.New("cluster: Topics is required"))
	}
	if o.HeartbeatInterval < 0 || o.SessionTimeout < 0 || (o.SessionTimeout > 0 && o.HeartbeatInterval >= o.SessionTimeout) {
		errs = append(errs, fmt.Errorf("cluster: HeartbeatInterval %v must be positive and below SessionTimeout %v", o.HeartbeatInterval, o.SessionTimeout))
	}
	if o.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("cluster: ShutdownTimeout %v is negative", o.ShutdownTimeout))
	}
	if o.DefaultPartitions < 0 {
		errs = append(errs, fmt.Errorf("cluster: DefaultPartitions %d is negative", o.DefaultPartitions))
	}
	return errors.Join(errs...)
}
