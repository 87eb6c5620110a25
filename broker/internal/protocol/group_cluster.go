package protocol

// Group coordination in cluster mode, as Kafka places it: __consumer_offsets
// is a topic of the cluster's metadata, created through the controller the
// first time a FindCoordinator for a group needs it (replication factor
// min(Config.OffsetsReplication, brokers)), replicated like any partition,
// and a group's coordinator is the leader of the group's partition of it
// (group.Partition). FindCoordinator (v0-4, batched keys included) names
// that leader from any broker, COORDINATOR_NOT_AVAILABLE while it has none.
//
// Each broker's group driver starts serving no partition (DriverOptions
// .Unowned); an ownership.Follower makes it serve the offsets partitions
// this broker leads once each is ready (its replica leads in the view's
// epoch and the high watermark has reached the epoch's first offset), at
// every change of the view, on a short tick, and before every group
// request. A partition won is loaded from this broker's replica, below the
// high watermark; one lost is unloaded, and the coordinator answers its
// groups NOT_COORDINATOR from then on. The coordinator's writes go through
// replication (group.TopicLog.Replicate): an offset commit is answered once
// the high watermark covers it.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/ownership"
	"github.com/weir-dev/weir/broker/internal/txn"
)

// offsetsTopicConfigs are the configs __consumer_offsets is created with.
var offsetsTopicConfigs = map[string]string{"cleanup.policy": "compact"}

// offsetsCreateTimeout bounds the creation of __consumer_offsets that a
// FindCoordinator waits for.
const offsetsCreateTimeout = 5 * time.Second

// ClusterChanges is implemented by a Cluster that can tell when its view
// may have changed; a cluster-mode Server then moves group coordination as
// soon as offsets partition leaderships move, not only at the next tick.
type ClusterChanges interface {
	// Changed returns a channel closed at the next change of the view.
	Changed() <-chan struct{}
}

// coordOwnership keeps a cluster-mode coordinator (the group or the
// transaction driver) serving the partitions of its internal topic this
// broker leads, through an ownership.Follower.
type coordOwnership struct {
	s          *Server
	f          *ownership.Follower
	topic      string // the internal topic
	what       string // "group" or "transaction", for the logs
	partitions int32  // the partition count this broker places keys with

	// warned is set once a partition-count mismatch has been logged.
	warned atomic.Bool

	// createMu serialises this broker's creations of the topic.
	createMu sync.Mutex
}

// startCoordOwnership starts following topic's leaderships for c, a
// coordinator placing its keys on partitions partitions.
func startCoordOwnership(s *Server, name, what, topic string, partitions int32, c ownership.Coordinator) *coordOwnership {
	o := &coordOwnership{s: s, topic: topic, what: what, partitions: partitions}
	var changed func() <-chan struct{}
	if ch, ok := s.cfg.Cluster.(ClusterChanges); ok {
		changed = ch.Changed
	}
	o.f = ownership.StartFollower(ownership.FollowerOptions{
		Name: name, Source: s.leadershipSource(topic, o.partitionsAgree),
		Coordinator: c, Changed: changed, Logger: s.Logger,
	})
	return o
}

func newGroupOwnership(s *Server, d *group.Driver) *coordOwnership {
	return startCoordOwnership(s, "group", "group", group.OffsetsTopic, d.Partitions(), groupLoader{d})
}

// groupLoader is the group driver as an ownership.Coordinator.
type groupLoader struct{ d *group.Driver }

func (g groupLoader) Load(ctx context.Context, p int32) error { return g.d.Load(ctx, p) }
func (g groupLoader) Unload(ps []int32)                       { g.d.Unload(ps) }

// close stops the follower and waits for it.
func (o *coordOwnership) close() { o.f.Close() }

// sync applies what the view and the replicas say now, unless a look is
// under way.
func (o *coordOwnership) sync(ctx context.Context) { o.f.TrySync(ctx) }

// partitionsAgree reports whether the cluster's internal topic has the
// partition count this broker's coordinator places keys with.
func (o *coordOwnership) partitionsAgree(n int32) bool {
	return countsAgree(o.s, &o.warned, o.topic, n, o.partitions, o.what)
}

// ensureTopic asks the controller to create the internal topic (this
// broker's partition count, replication factor
// min(Config.OffsetsReplication, unfenced brokers), compacted) unless the
// view has it, and returns the view after. Failures are logged: the caller
// answers COORDINATOR_NOT_AVAILABLE, which clients retry.
func (o *coordOwnership) ensureTopic(ctx context.Context) *ClusterView {
	o.createMu.Lock()
	defer o.createMu.Unlock()
	return o.s.ensureInternalTopic(ctx, o.topic, o.partitions)
}

// countsAgree reports whether a coordinator's internal topic has, in the
// cluster, the partition count (have) this broker places keys with
// (want). Keys would be placed by one count here and another by the other
// brokers, so a broker that disagrees coordinates none rather than the
// wrong ones, and says so once (warned).
func countsAgree(s *Server, warned *atomic.Bool, topic string, have, want int32, what string) bool {
	if have == want {
		return true
	}
	if !warned.Swap(true) {
		s.Logger.Error("protocol: a coordinator's internal topic has a partition count other than this broker's; this broker coordinates no "+what+
			" (give every broker the same partition count)", "topic", topic, "cluster", have, "broker", want)
	}
	return false
}

// leadershipSource observes the partitions of a coordinator's internal
// topic for an ownership.Follower: the view's leader and epoch, and the
// replica's readiness. agree (when not nil) vets the topic's partition
// count; a topic it refuses, or one the view lacks, is observed as
// nothing. Without replication a partition is ready once the view names
// this broker its leader.
func (s *Server) leadershipSource(topic string, agree func(n int32) bool) ownership.Source {
	return func() []ownership.Observation {
		v := s.cfg.Cluster.View()
		ct := v.Topics[topic]
		if ct == nil || (agree != nil && !agree(int32(len(ct.Partitions)))) {
			return nil
		}
		local, _ := s.Topics.Get(topic)
		obs := make([]ownership.Observation, len(ct.Partitions))
		for p, cp := range ct.Partitions {
			o := &obs[p]
			o.Leader, o.Epoch = cp.Leader == s.cfg.Node.ID, cp.LeaderEpoch
			if !o.Leader {
				continue
			}
			if s.cfg.Replication == nil {
				o.Ready = true
				continue
			}
			if local == nil || local.ID() != ct.ID {
				continue // the local replica does not exist yet
			}
			lp, ok := local.Partition(int32(p))
			if !ok {
				continue
			}
			epoch, leading, ready := s.cfg.Replication.Leadership(lp)
			o.Ready = leading && ready && epoch == cp.LeaderEpoch
		}
		return obs
	}
}

// ensureInternalTopic asks the controller to create a coordinator's
// internal topic (name, with partitions partitions, replication factor
// min(Config.OffsetsReplication, unfenced brokers), compacted) unless the
// view has it, and returns the view after. Failures are logged. Callers
// serialise their calls for one topic.
func (s *Server) ensureInternalTopic(ctx context.Context, name string, partitions int32) *ClusterView {
	v := s.cfg.Cluster.View()
	if v.Topics[name] != nil || len(v.Brokers) == 0 {
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, offsetsCreateTimeout)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, min(s.cfg.OffsetsReplication, int16(len(v.Brokers)))
	for k, val := range offsetsTopicConfigs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(val)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = int32(offsetsCreateTimeout / time.Millisecond)
	resp, err := s.cfg.Cluster.Forward(ctx, req)
	if err != nil {
		s.Logger.Warn("protocol: create an internal topic through the controller", "topic", name, "err", err)
		return s.cfg.Cluster.View()
	}
	if cr, ok := resp.(*kmsg.CreateTopicsResponse); ok {
		for _, rt := range cr.Topics {
			if rt.ErrorCode != 0 && rt.ErrorCode != kerr.TopicAlreadyExists.Code {
				msg := ""
				if rt.ErrorMessage != nil {
					msg = *rt.ErrorMessage
				}
				s.Logger.Warn("protocol: create an internal topic through the controller",
					"topic", name, "err", kerr.ErrorForCode(rt.ErrorCode), "message", msg)
			}
		}
	}
	return s.cfg.Cluster.View()
}

// coordinatorIn returns the node leading the partition of topic that key
// hashes to (with part), as the client at r reaches it; false when the
// view lacks the topic or the partition has no unfenced leader.
func coordinatorIn(v *ClusterView, r *Request, topic string, part func(n int32) int32) (Node, bool) {
	ct := v.Topics[topic]
	if ct == nil || len(ct.Partitions) == 0 {
		return Node{}, false
	}
	leader := ct.Partitions[part(int32(len(ct.Partitions)))].Leader
	for _, b := range v.Brokers {
		if b.ID == leader {
			return b.For(r), true
		}
	}
	return Node{}, false // no leader, or a fenced one
}

// clusterFindCoordinator answers a group's coordinator as the leader of
// its __consumer_offsets partition, and a transactional id's as the leader
// of its __transaction_state partition, creating the topic through the
// controller the first time one is asked for.
func clusterFindCoordinator(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.FindCoordinatorRequest)
	v := s.cfg.Cluster.View()
	var coordinator func(key string) (Node, bool)
	switch req.CoordinatorType {
	case 0:
		g, _ := s.Extension(groupExtensionName).(*groupCoordinator)
		if v.Topics[group.OffsetsTopic] == nil && g != nil && g.own != nil {
			v = g.own.ensureTopic(ctx)
		}
		coordinator = func(key string) (Node, bool) {
			return coordinatorIn(v, r, group.OffsetsTopic, func(n int32) int32 { return group.Partition(group.GroupID(key), n) })
		}
	case 1:
		t, _ := s.Extension(txnExtensionName).(*txnCoordinator)
		if t == nil || t.own == nil {
			return handleFindCoordinator(ctx, s, r) // no coordinator: refused there
		}
		if v.Topics[txn.StateTopic] == nil {
			v = t.own.ensureTopic(ctx)
		}
		coordinator = func(key string) (Node, bool) {
			return coordinatorIn(v, r, txn.StateTopic, func(n int32) int32 { return txn.Partition(txn.TransactionalID(key), n) })
		}
	default:
		return handleFindCoordinator(ctx, s, r) // INVALID_REQUEST there
	}
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if r.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			if n, ok := coordinator(key); ok {
				c.NodeID, c.Host, c.Port = n.ID, n.Host, n.Port
			} else {
				c.ErrorCode, c.NodeID, c.Port = kerr.CoordinatorNotAvailable.Code, -1, -1
			}
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp, nil
	}
	if n, ok := coordinator(req.CoordinatorKey); ok {
		resp.NodeID, resp.Host, resp.Port = n.ID, n.Host, n.Port
	} else {
		resp.ErrorCode, resp.NodeID, resp.Port = kerr.CoordinatorNotAvailable.Code, -1, -1
	}
	return resp, nil
}
