package protocol

// FindCoordinator, versions 0-4 (v4: several keys at once).
//
// This node coordinates every group: the answer is always this broker (in
// cluster mode, group_cluster.go answers the offsets partition's leader). The
// file also opens the group coordinator (broker/internal/group) as the
// server extension "group", which every consumer-group handler (08, 09,
// 11-16, 42, 47) passes its request to; see handleGroupRequest.
//
// Transaction keys (type 1) are answered with this broker too: it runs the
// transaction coordinator (txn_coordinator.go). In cluster mode
// group_cluster.go answers the __transaction_state partition's leader.

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// groupExtensionName is the name the coordinator is registered under.
const groupExtensionName = "group"

func init() {
	register(kmsg.FindCoordinator, 0, 4, handleFindCoordinator)
	RegisterExtension(groupExtensionName, openGroupCoordinator)
}

func handleFindCoordinator(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	node := s.nodeFor(r)
	answer := func(key string) (code int16, msg *string) {
		switch req.CoordinatorType {
		case 0:
			return 0, nil
		case 1:
			if _, code, msg := txnDriver(s); code != 0 {
				return code, msg
			}
			return 0, nil
		default:
			return kerr.InvalidRequest.Code, nil
		}
	}
	if r.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			c.ErrorCode, c.ErrorMessage = answer(key)
			if c.ErrorCode == 0 {
				c.NodeID, c.Host, c.Port = node.ID, node.Host, node.Port
			} else {
				c.NodeID, c.Port = -1, -1
			}
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp, nil
	}
	resp.ErrorCode, resp.ErrorMessage = answer(req.CoordinatorKey)
	if resp.ErrorCode == 0 {
		resp.NodeID, resp.Host, resp.Port = node.ID, node.Host, node.Port
	} else {
		resp.NodeID, resp.Port = -1, -1
	}
	return resp, nil
}

// groupCoordinator is the "group" extension: the coordinator's driver over
// this broker's __consumer_offsets.
type groupCoordinator struct {
	d   *group.Driver
	lag *group.LagCollector
	// own moves coordination with offsets partition leadership in cluster
	// mode (group_cluster.go); nil on a single-node broker.
	own *coordOwnership
}

func (g *groupCoordinator) Close() error {
	if g.own != nil {
		g.own.close()
	}
	return g.d.Close()
}

// registryTopics answers the coordinator's topic-existence questions from
// the topic registry.
type registryTopics struct{ reg *topics.Registry }

func (t registryTopics) Partitions(name string) (int32, bool) {
	tp, ok := t.reg.Get(name)
	if !ok {
		return 0, false
	}
	return tp.NumPartitions(), true
}

func openGroupCoordinator(s *Server) (Extension, error) {
	opts := s.Config().Groups
	opts.EnsureDefaults()
	ctx := context.Background()
	tl, err := group.OpenTopicLog(ctx, s.Topics, opts.OffsetsPartitions, nil)
	if err != nil {
		return nil, err
	}
	opts.OffsetsPartitions = tl.Partitions()
	opts.Topics = registryTopics{s.Topics}
	// In cluster mode the driver serves only the offsets partitions this
	// broker leads, loaded as it comes to lead them.
	cluster := s.cfg.Cluster != nil
	if cluster && s.cfg.Replication != nil {
		tl.Replicate(s.cfg.Replication) // commits wait for the high watermark
	}
	d, err := group.OpenDriver(ctx, group.DriverOptions{Coordinator: opts, Log: tl, Logger: s.Logger, Unowned: cluster})
	if err != nil {
		return nil, err
	}
	ends := func(topic string, partition int32) (int64, bool) {
		t, ok := s.Topics.Get(topic)
		if !ok {
			return 0, false
		}
		p, ok := t.Partition(partition)
		if !ok {
			return 0, false
		}
		return int64(p.Log().HighWatermark()), true
	}
	g := &groupCoordinator{d: d, lag: group.NewLagCollector(d, ends)}
	if cluster {
		g.own = newGroupOwnership(s, d)
	}
	return g, nil
}

// GroupLag returns a Prometheus collector of every group's committed offset,
// log end offset and lag per partition (weir_group_lag and friends), for the
// broker to register; nil if the server has no group coordinator.
func GroupLag(s *Server) prometheus.Collector {
	g, ok := s.Extension(groupExtensionName).(*groupCoordinator)
	if !ok {
		return nil
	}
	return g.lag
}

// handleGroupRequest passes a consumer-group request to the coordinator and
// waits for its answer (for JoinGroup and SyncGroup, until the rebalance
// completes; the wait holds up only this connection).
func handleGroupRequest(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	g, ok := s.Extension(groupExtensionName).(*groupCoordinator)
	if !ok {
		return nil, errors.New("protocol: no group coordinator")
	}
	if g.own != nil {
		g.own.sync(ctx) // serve the offsets partitions the view says are led here
	}
	resp, err := g.d.Handle(ctx, r.ClientID, clientHost(r.Remote), r.Body)
	if err != nil {
		return nil, err // the connection or the server is closing
	}
	return resp, nil
}

// clientHost renders a peer address as Kafka reports client hosts:
// "/127.0.0.1".
func clientHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	if strings.HasPrefix(host, "/") {
		return host
	}
	return "/" + host
}
