package cluster

// Producer ids in a cluster: every broker hands out ids from a block the
// controller allocated to it (AllocateProducerIds, key 67, KIP-730). The
// block is a ProducerIDsRecord in the metadata log, and the controller
// never hands out an id twice (blocks only move forward, see
// metadata.Image.NextProducerID), so ids are unique across the cluster,
// across controller changes and across restarts: a restarted broker asks
// for a fresh block and never reuses the rest of its old one.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pidAllocTimeout bounds the wait for a new block when the caller's
// context has no deadline.
const pidAllocTimeout = 5 * time.Second

// pidBlock is the block of producer ids this broker hands out from.
type pidBlock struct {
	// mu guards next and end, and is held across the allocation of a new
	// block so that one broker asks for one block at a time.
	mu sync.Mutex
	// Invariant: next <= end; the ids [next, end) are this broker's and
	// not handed out yet.
	next, end int64
}

// NextProducerID implements protocol.ProducerIDAllocator: the next id of
// this broker's block, asking the controller for a new block when it is
// used up. It fails (retriably) while the broker is not registered or no
// controller answers.
func (n *Node) NextProducerID(ctx context.Context) (int64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pidAllocTimeout)
		defer cancel()
	}
	b := &n.pids
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next < b.end {
		id := b.next
		b.next++
		return id, nil
	}
	epoch := n.epoch.Load()
	if epoch < 0 {
		return 0, fmt.Errorf("cluster: node %d is not registered with the controller yet; no producer-id block", n.opts.NodeID)
	}
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = n.opts.NodeID, epoch
	out, err := n.callController(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("cluster: allocate a producer-id block: %w", err)
	}
	resp := out.(*kmsg.AllocateProducerIDsResponse)
	if resp.ErrorCode != 0 {
		return 0, fmt.Errorf("cluster: allocate a producer-id block: the controller answered %w", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp.ProducerIDLen <= 0 || resp.ProducerIDStart < 0 {
		return 0, fmt.Errorf("cluster: allocate a producer-id block: the controller answered the empty block [%d, +%d)", resp.ProducerIDStart, resp.ProducerIDLen)
	}
	n.log.Info("cluster: producer-id block allocated", "first", resp.ProducerIDStart, "size", resp.ProducerIDLen)
	b.next, b.end = resp.ProducerIDStart+1, resp.ProducerIDStart+int64(resp.ProducerIDLen)
	return resp.ProducerIDStart, nil
}
