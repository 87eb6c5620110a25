package cluster

import (
	"context"
	"fmt"

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
