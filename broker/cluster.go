package broker

// Cluster mode (Options.ControllerVoters set): the node runs a
// cluster.Node beside the topic registry, and the protocol server answers
// from its metadata image. Without voters nothing here runs.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/broker/internal/cluster"
	"github.com/weir-dev/weir/broker/internal/protocol"
	"github.com/weir-dev/weir/broker/internal/quorum"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// clusterTestOptions are knobs tests set on a cluster node.
type clusterTestOptions struct {
	controllerListener net.Listener
	// dial connects to other nodes (a test's fault layer); nil: TCP.
	dial              func(ctx context.Context, addr string) (net.Conn, error)
	heartbeatInterval time.Duration
	sessionTimeout    time.Duration
	tickInterval      time.Duration
	shutdownTimeout   time.Duration
	// afterCommitWait is replica.Options.AfterCommitWait.
	afterCommitWait func()
	// durableWait is replica.Options.DurableWait.
	durableWait time.Duration
}

// parseRoles reads Options.Roles.
func parseRoles(s string) (broker, controller bool, err error) {
	if strings.TrimSpace(s) == "" {
		return true, true, nil
	}
	for _, r := range strings.Split(s, ",") {
		switch strings.TrimSpace(r) {
		case "broker":
			broker = true
		case "controller":
			controller = true
		default:
			return false, false, fmt.Errorf("broker: role %q is not broker or controller (--roles broker,controller)", strings.TrimSpace(r))
		}
	}
	return broker, controller, nil
}

func (o *Options) validateCluster() []error {
	if o.ControllerVoters == "" {
		if o.RejoinQuorum {
			return []error{errors.New("broker: --rejoin is for a controller voter of a cluster (no --controller-voters given)")}
		}
		return nil
	}
	var errs []error
	if _, err := quorum.ParseVoters(o.ControllerVoters); err != nil {
		errs = append(errs, fmt.Errorf("broker: --controller-voters: %w", err))
	}
	if _, _, err := parseRoles(o.Roles); err != nil {
		errs = append(errs, err)
	}
	if o.NodeID <= 0 {
		errs = append(errs, fmt.Errorf("broker: node id %d: a cluster node needs a positive --node-id (one of the voters, or outside them with --roles broker)", o.NodeID))
	}
	return errs
}

// openCluster opens the cluster node of a broker in cluster mode; nil
// without voters.
func openCluster(opts Options, reg *topics.Registry) (*cluster.Node, error) {
	if opts.ControllerVoters == "" {
		return nil, nil
	}
	voters, err := quorum.ParseVoters(opts.ControllerVoters)
	if err != nil {
		return nil, fmt.Errorf("broker: --controller-voters: %w", err)
	}
	b, c, err := parseRoles(opts.Roles)
	if err != nil {
		return nil, err
	}
	opts.warnClusterSecurity()
	dial, ctlTLS, err := opts.controllerDial()
	if err != nil {
		return nil, err
	}
	return cluster.Open(cluster.Options{
		NodeID: opts.NodeID, Voters: voters, Broker: b, Controller: c,
		DataDir: filepath.Clean(opts.DataDir), FS: opts.dataFS, Topics: reg,
		DefaultPartitions:       opts.DefaultPartitions,
		LeaderRebalanceInterval: opts.LeaderRebalanceInterval,
		ControllerListener:      opts.cluster.controllerListener,
		Dial:                    dial,
		ControllerTLS:           ctlTLS,
		HeartbeatInterval:       opts.cluster.heartbeatInterval,
		SessionTimeout:          cmp.Or(opts.cluster.sessionTimeout, opts.BrokerSessionTimeout),
		TickInterval:            opts.cluster.tickInterval,
		RejoinQuorum:            opts.RejoinQuorum,
		ShutdownTimeout:         opts.cluster.shutdownTimeout,
		Logger:                  opts.Logger,
	})
}

// startCluster starts the cluster node under the advertised address.
func startCluster(cn *cluster.Node, self protocol.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cn.Start(ctx, self)
}

// clusterOf returns cn as the protocol's Cluster; nil (not a typed nil)
// for a single-node broker.
func clusterOf(cn *cluster.Node) protocol.Cluster {
	if cn == nil {
		return nil
	}
	return cn
}

func closeCluster(cn *cluster.Node) error {
	if cn == nil {
		return nil
	}
	return cn.Close()
}

// metricsGatherer adds a cluster node's metrics to the broker's.
func metricsGatherer(reg *prometheus.Registry, cn *cluster.Node) prometheus.Gatherer {
	if cn == nil {
		return reg
	}
	return prometheus.Gatherers{reg, cn.Gatherer()}
}
