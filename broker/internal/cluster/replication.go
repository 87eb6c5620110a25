package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
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

// Replayed reports whether this node's image is whole: a voter has applied
// every entry its raft storage held committed at Open, a broker-only node
// has caught up with the voter it follows. Until then the image may be an
// old state (a restarted broker would see itself leading partitions it led
// before), and replication takes no role from it.
func (n *Node) Replayed() bool {
	if n.obs != nil {
		return n.obs.caughtUp.Load()
	}
	if n.q == nil {
		return false
	}
	return n.q.Status().Applied >= n.replayTo
}
