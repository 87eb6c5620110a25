package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/metadata"
)

// AlterPartition sends a leader's ISR change to the active controller
// (broker/internal/replica) and returns its reply once this node's image
// holds the change.
func (n *Node) AlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
	out, err := n.callController(ctx, req)
	if out == nil {
		return nil, err
	}
	resp, ok := out.(*kmsg.AlterPartitionResponse)
	if !ok {
		return nil, fmt.Errorf("cluster: AlterPartition answered with %T", out)
	}
	return resp, nil
}

// BrokerEpoch returns the epoch of this broker's current registration, -1
// when it is not registered.
func (n *Node) BrokerEpoch() int64 { return n.epoch.Load() }

// SessionLapsed reports whether the controller has answered none of this
// broker's heartbeats (nor its registration) for SessionTimeout: an active
// controller, if there is one, has then fenced this broker and moved its
// leaderships to other brokers, which this broker cannot learn while it
// cannot reach the quorum (replica.Options.SessionLapsed).
func (n *Node) SessionLapsed() bool {
	return time.Since(time.Unix(0, n.answered.Load())) > n.opts.SessionTimeout
}

// Replayed reports whether this node's image is current enough to act on:
// whole (a voter has applied every entry its raft storage held committed
// at Open, a broker-only node has caught up with the voter it follows) and
// holding this run's own registration. What a restarted node's storage
// held is the cluster as it was when the node stopped: a leader killed, or
// cut off and stopped, would see itself leading partitions that have moved
// on, and answer produces at a stale epoch. The controller writes this
// run's registration after everything it had committed then (the previous
// run's fencing and the leaderships that moved away with it), so an image
// that holds it is at least as new. Until then replication takes no role
// and SASL knows no users. Once true, it stays true.
func (n *Node) Replayed() bool {
	if n.current.Load() {
		return true
	}
	whole := false
	switch {
	case n.obs != nil:
		whole = n.obs.caughtUp.Load()
	case n.q != nil:
		whole = n.q.Status().Applied >= n.replayTo
	}
	if !whole {
		return false
	}
	// NB: a controller-only node registers no broker and leads no
	// partition; its users and ACLs are those of its replayed log until
	// the raft leader brings it up to date.
	if n.opts.Broker {
		b, ok := n.sm.Image().Broker(metadata.NodeID(n.opts.NodeID))
		if !ok || b.Incarnation != metadata.IncarnationID(n.incarnation) {
			return false
		}
	}
	n.current.Store(true)
	return true
}
