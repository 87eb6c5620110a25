package ownership

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// Replication is what a coordinator's writes need of partition
// replication (replica.Manager provides it).
type Replication interface {
	// AppendEpoch is the leader epoch an append to p is written with.
	AppendEpoch(p *topics.Partition) base.Epoch
	// CheckProduce refuses an append before anything is written:
	// NOT_LEADER_OR_FOLLOWER, or NOT_ENOUGH_REPLICAS for acks=all; 0 lets
	// it go on.
	CheckProduce(p *topics.Partition, acks int16) int16
	// WaitCommitted waits until the high watermark of p covers end.
	WaitCommitted(ctx context.Context, p *topics.Partition, end base.Offset, epoch base.Epoch) error
}

// Append writes b (whole batches) to partition p of a coordinator's
// internal topic. Without replication (rep nil: a single node) it appends
// at leader epoch 0 and, for a commit, waits until the batches are durable
// under the log's sync policy. With replication the append is refused
// unless this broker leads p (an error wrapping NOT_LEADER_OR_FOLLOWER,
// or NOT_ENOUGH_REPLICAS for a commit when the ISR is smaller than
// min.insync.replicas), is written at p's leader epoch, and, for a commit,
// returns only once the high watermark covers it: acks=all. Without commit
// it returns once written; a later commit's wait covers it.
func Append(ctx context.Context, rep Replication, p *topics.Partition, b []byte, commit bool) (topics.AppendResult, error) {
	name := fmt.Sprintf("%s/%d", p.Topic().Name(), p.Index())
	if rep == nil {
		if commit {
			r, err := p.Log().Append(ctx, b, 0)
			if err != nil {
				return r, fmt.Errorf("ownership: append to %s: %w", name, err)
			}
			return r, nil
		}
		r, err := p.Log().AppendNoWait(b, 0)
		if err != nil {
			return r, fmt.Errorf("ownership: write to %s: %w", name, err)
		}
		return r, nil
	}
	acks := int16(1)
	if commit {
		acks = -1
	}
	if code := rep.CheckProduce(p, acks); code != 0 {
		return topics.AppendResult{}, fmt.Errorf("ownership: append to %s refused: %w", name, kerr.ErrorForCode(code))
	}
	epoch := rep.AppendEpoch(p)
	r, err := p.Log().AppendNoWait(b, epoch)
	if err != nil {
		return r, fmt.Errorf("ownership: append to %s: %w", name, err)
	}
	if !commit {
		return r, nil
	}
	if err := rep.WaitCommitted(ctx, p, r.LastOffset+1, epoch); err != nil {
		return r, fmt.Errorf("ownership: append to %s: %w", name, err)
	}
	return r, nil
}

// IsNotLeader reports whether err is an Append refused or abandoned because
// this broker does not (or no longer) lead the partition: the coordinator
// answers NOT_COORDINATOR, and the client finds the new one.
func IsNotLeader(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.FencedLeaderEpoch)
}

// AppendBroker writes a batch the broker itself builds (a transaction
// marker, or transactional offsets) to partition p with write, given the
// log and the leader epoch to write at, as Append writes a commit: refused
// unless this broker leads p, written at p's leader epoch, and returned
// only once the high watermark covers it. rep must not be nil: a single
// node writes such batches with the log's own AppendMarker and
// AppendTrusted.
func AppendBroker(ctx context.Context, rep Replication, p *topics.Partition, write func(l topics.LeaderTxnLog, leaderEpoch base.Epoch) (topics.AppendResult, error)) error {
	name := fmt.Sprintf("%s/%d", p.Topic().Name(), p.Index())
	l, ok := p.Log().(topics.LeaderTxnLog)
	if !ok {
		return fmt.Errorf("ownership: %s cannot take broker-written batches", name)
	}
	if code := rep.CheckProduce(p, -1); code != 0 {
		return fmt.Errorf("ownership: append to %s refused: %w", name, kerr.ErrorForCode(code))
	}
	epoch := rep.AppendEpoch(p)
	r, err := write(l, epoch)
	if err != nil {
		return fmt.Errorf("ownership: append to %s: %w", name, err)
	}
	if err := rep.WaitCommitted(ctx, p, r.LastOffset+1, epoch); err != nil {
		return fmt.Errorf("ownership: append to %s: %w", name, err)
	}
	return nil
}
