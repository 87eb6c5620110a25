package protocol

// Group coordination in cluster mode, as Kafka places it: __consumer_offsets
// is a topic of the cluster's metadata, created through the controller the
// first time a FindCoordinator for a group needs it, and a group's
// coordinator is the leader of the group's partition of it
// (group.Partition). FindCoordinator (v0-4, batched keys included) names
// that leader from any broker, COORDINATOR_NOT_AVAILABLE while it has none.
//
// Each broker's group driver starts serving no partition (DriverOptions
// .Unowned); groupOwnership makes it serve exactly the offsets partitions
// the view says this broker leads: at every change of the view (when the
// Cluster can say so) and before every group request. A partition won is
// loaded from this broker's local log of it; one lost is unloaded, and
// the coordinator answers its groups NOT_COORDINATOR from then on.
//
// NB: partition data is not replicated yet. A leadership move starts the
// new coordinator from its own local copy of that offsets partition:
// whatever the previous leader stored there since is not seen, so a group
// may restart from older committed offsets (or none) and its members
// rejoin as new ones.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// offsetsTopicConfigs are the configs __consumer_offsets is created with.
var offsetsTopicConfigs = map[string]string{"cleanup.policy": "compact"}

// offsetsCreateTimeout bounds the creation of __consumer_offsets that a
// FindCoordinator waits for.
const offsetsCreateTimeout = 5 * time.Second

// ClusterChanges is implemented by a Cluster that can tell when its view
// may have changed; a cluster-mode Server then moves group coordination as
// soon as offsets partition leaderships move, not only at the next group
// request.
type ClusterChanges interface {
	// Changed returns a channel closed at the next change of the view.
	Changed() <-chan struct{}
}

// groupOwnership keeps a cluster-mode group driver serving the offsets
// partitions this broker leads.
type groupOwnership struct {
	s *Server
	d *group.Driver

	// mu serialises syncs, so that an older view is never applied after a
	// newer one.
	mu sync.Mutex
	// synced is the view last applied to the driver; nil before the first.
	synced atomic.Pointer[ClusterView]
	// warned is set once a partition-count mismatch has been logged.
	warned atomic.Bool

	// createMu serialises this broker's creations of __consumer_offsets.
	createMu sync.Mutex

	// ctx ends at close; the watcher's syncs run under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newGroupOwnership(s *Server, d *group.Driver) *groupOwnership {
	o := &groupOwnership{s: s, d: d}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	if ch, ok := s.cfg.Cluster.(ClusterChanges); ok {
		o.wg.Add(1)
		go o.watch(ch)
	}
	return o
}

// watch syncs at every change of the view until close.
func (o *groupOwnership) watch(ch ClusterChanges) {
	defer o.wg.Done()
	for {
		changed := ch.Changed() // before reading the view: no change is missed
		o.sync(o.ctx)
		select {
		case <-o.ctx.Done():
			return
		case <-changed:
		}
	}
}

// close stops the watcher and waits for it.
func (o *groupOwnership) close() {
	o.cancel()
	o.wg.Wait()
}

// sync makes the driver serve the offsets partitions the current view says
// this broker leads. A view already applied costs one atomic load.
func (o *groupOwnership) sync(ctx context.Context) {
	v := o.s.cfg.Cluster.View()
	if o.synced.Load() == v {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	v = o.s.cfg.Cluster.View()
	if o.synced.Load() == v {
		return
	}
	want := o.led(v)
	if len(want) > 0 {
		// The local log of the topic, with the image's id when this broker
		// creates it; one that exists already is this broker's copy and is
		// kept whatever its id.
		ct := v.Topics[group.OffsetsTopic]
		if _, err := o.s.Topics.Ensure(ctx, group.OffsetsTopic, topics.Spec{
			Partitions: int32(len(ct.Partitions)), ID: ct.ID, Configs: offsetsTopicConfigs,
		}); err != nil {
			o.s.Logger.Warn("protocol: create the local __consumer_offsets", "err", err)
			return // retried at the next sync
		}
	}
	if err := o.d.Own(ctx, want); err != nil {
		o.s.Logger.Warn("protocol: move group coordination", "err", err)
		return // retried at the next sync
	}
	o.synced.Store(v)
}

// led returns the offsets partitions this broker leads in v.
func (o *groupOwnership) led(v *ClusterView) []int32 {
	ct := v.Topics[group.OffsetsTopic]
	if ct == nil {
		return nil
	}
	if n := int32(len(ct.Partitions)); n != o.d.Partitions() {
		// Groups would be placed by one count here and another by the
		// other brokers: coordinate none rather than the wrong ones.
		if !o.warned.Swap(true) {
			o.s.Logger.Error("protocol: __consumer_offsets has a partition count other than this broker's; this broker coordinates no group (give every broker the same offsets topic partitions)",
				"cluster", n, "broker", o.d.Partitions())
		}
		return nil
	}
	var out []int32
	for p, cp := range ct.Partitions {
		if cp.Leader == o.s.cfg.Node.ID {
			out = append(out, int32(p))
		}
	}
	return out
}

// ensureOffsetsTopic asks the controller to create __consumer_offsets
// (this broker's offsets partition count, replication factor min(3,
// unfenced brokers), compacted) unless the view has it, and returns the
// view after. Failures are logged: the caller answers
// COORDINATOR_NOT_AVAILABLE, which clients retry.
func (o *groupOwnership) ensureOffsetsTopic(ctx context.Context) *ClusterView {
	o.createMu.Lock()
	defer o.createMu.Unlock()
	v := o.s.cfg.Cluster.View()
	if v.Topics[group.OffsetsTopic] != nil || len(v.Brokers) == 0 {
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, offsetsCreateTimeout)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = group.OffsetsTopic, o.d.Partitions(), int16(min(3, len(v.Brokers)))
	for k, val := range offsetsTopicConfigs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(val)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = int32(offsetsCreateTimeout / time.Millisecond)
	resp, err := o.s.cfg.Cluster.Forward(ctx, req)
	if err != nil {
		o.s.Logger.Warn("protocol: create __consumer_offsets through the controller", "err", err)
		return o.s.cfg.Cluster.View()
	}
	if cr, ok := resp.(*kmsg.CreateTopicsResponse); ok {
		for _, rt := range cr.Topics {
			if rt.ErrorCode != 0 && rt.ErrorCode != kerr.TopicAlreadyExists.Code {
				msg := ""
				if rt.ErrorMessage != nil {
					msg = *rt.ErrorMessage
				}
				o.s.Logger.Warn("protocol: create __consumer_offsets through the controller",
					"err", kerr.ErrorForCode(rt.ErrorCode), "message", msg)
			}
		}
	}
	return o.s.cfg.Cluster.View()
}

// clusterFindCoordinator answers a group's coordinator as the leader of
// its __consumer_offsets partition, creating the topic through the
// controller the first time one is asked for. Transaction keys go to the
// single-node handler, which refuses them.
func clusterFindCoordinator(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.FindCoordinatorRequest)
	if req.CoordinatorType != 0 {
		return handleFindCoordinator(ctx, s, r)
	}
	v := s.cfg.Cluster.View()
	g, _ := s.Extension(groupExtensionName).(*groupCoordinator)
	if v.Topics[group.OffsetsTopic] == nil && g != nil && g.own != nil {
		v = g.own.ensureOffsetsTopic(ctx)
	}
	coordinator := func(key string) (Node, bool) {
		ct := v.Topics[group.OffsetsTopic]
		if ct == nil || len(ct.Partitions) == 0 {
			return Node{}, false
		}
		leader := ct.Partitions[group.Partition(group.GroupID(key), int32(len(ct.Partitions)))].Leader
		for _, b := range v.Brokers {
			if b.ID == leader {
				return b.For(r), true
			}
		}
		return Node{}, false // no leader, or a fenced one
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
