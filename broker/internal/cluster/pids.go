package cluster

// Producer ids in a cluster: every broker hands out ids from a block the
// controller allocated to it (AllocateProducerIds, key 67, KIP-730). The
// block is a ProducerIDsRecord in the metadata log, and the controller
// never hands out an id twice (blocks only move forward, see
// metadata.Image.NextProducerID), so ids are unique across the cluster,
// across controller changes and across restarts: a restarted broker asks
// for a fresh block and never reuses the rest of its old one.
//
// The member loop keeps a spare block ready (asked for when the current
// one is nine tenths used, and right after registering), so that
// InitProducerId rarely waits for the controller and idempotent producers
// can still start while the metadata quorum is lost.

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

// pidBlock is the producer ids this broker hands out from.
type pidBlock struct {
	// alloc is held across one allocation RPC, so that this broker asks
	// for one block at a time. Lock order: alloc before mu.
	alloc sync.Mutex
	// mu guards the fields below; never held across an RPC.
	mu sync.Mutex
	// Invariant: next <= end, spareNext <= spareEnd; the ids [next, end)
	// and [spareNext, spareEnd) are this broker's and not handed out yet.
	next, end           int64
	spareNext, spareEnd int64
	// size is the size of the last block allocated.
	size int64
}

// takeLocked hands out the next id, moving to the spare block when the
// current one is used up.
func (b *pidBlock) takeLocked() (int64, bool) {
	if b.next >= b.end && b.spareNext < b.spareEnd {
		b.next, b.end = b.spareNext, b.spareEnd
		b.spareNext, b.spareEnd = 0, 0
	}
	if b.next >= b.end {
		return 0, false
	}
	id := b.next
	b.next++
	return id, true
}

// lowLocked reports whether a spare block should be asked for: there is
// none and the current one is used up or nine tenths used.
func (b *pidBlock) lowLocked() bool {
	return b.spareNext >= b.spareEnd && b.end-b.next <= b.size/10
}

// installLocked keeps a new block: as the current one if that is used
// up, else as the spare.
func (b *pidBlock) installLocked(first int64, size int32) {
	b.size = int64(size)
	if b.next >= b.end {
		b.next, b.end = first, first+int64(size)
		return
	}
	b.spareNext, b.spareEnd = first, first+int64(size)
}

// NextProducerID implements protocol.ProducerIDAllocator: the next id of
// this broker's blocks, asking the controller for a block when none is
// left. It fails (retriably) while the broker is not registered or no
// controller answers.
func (n *Node) NextProducerID(ctx context.Context) (int64, error) {
	b := &n.pids
	b.mu.Lock()
	id, ok := b.takeLocked()
	b.mu.Unlock()
	if ok {
		return id, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pidAllocTimeout)
		defer cancel()
	}
	b.alloc.Lock()
	defer b.alloc.Unlock()
	b.mu.Lock()
	id, ok = b.takeLocked() // the member loop may have refilled meanwhile
	b.mu.Unlock()
	if ok {
		return id, nil
	}
	if err := n.allocateProducerIDsLocked(ctx); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	id, _ = b.takeLocked() // a block is never empty
	return id, nil
}

// refillProducerIDs asks for a spare block when this broker's ids run
// low (the member loop calls it after each heartbeat).
func (n *Node) refillProducerIDs(ctx context.Context) {
	b := &n.pids
	b.mu.Lock()
	low := b.lowLocked()
	b.mu.Unlock()
	if !low || !b.alloc.TryLock() {
		return // enough ids, or an allocation is under way
	}
	defer b.alloc.Unlock()
	b.mu.Lock()
	low = b.lowLocked()
	b.mu.Unlock()
	if !low {
		return
	}
	if err := n.allocateProducerIDsLocked(ctx); err != nil {
		n.log.Debug("cluster: spare producer-id block not allocated", "err", err)
	}
}

// allocateProducerIDsLocked asks the controller for a block and installs
// it. The caller holds pids.alloc.
func (n *Node) allocateProducerIDsLocked(ctx context.Context) error {
	epoch := n.epoch.Load()
	if epoch < 0 {
		return fmt.Errorf("cluster: node %d is not registered with the controller yet; no producer-id block", n.opts.NodeID)
	}
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = n.opts.NodeID, epoch
	out, err := n.callController(ctx, req)
	if err != nil {
		return fmt.Errorf("cluster: allocate a producer-id block: %w", err)
	}
	resp := out.(*kmsg.AllocateProducerIDsResponse)
	if resp.ErrorCode != 0 {
		return fmt.Errorf("cluster: allocate a producer-id block: the controller answered %w", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp.ProducerIDLen <= 0 || resp.ProducerIDStart < 0 {
		return fmt.Errorf("cluster: allocate a producer-id block: the controller answered the empty block [%d, +%d)", resp.ProducerIDStart, resp.ProducerIDLen)
	}
	n.log.Info("cluster: producer-id block allocated", "first", resp.ProducerIDStart, "size", resp.ProducerIDLen)
	n.pids.mu.Lock()
	n.pids.installLocked(resp.ProducerIDStart, resp.ProducerIDLen)
	n.pids.mu.Unlock()
	return nil
}
