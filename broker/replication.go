package broker

// Replication (cluster mode): a replica.Manager makes this broker the
// leader or a follower of each partition the metadata image assigns it;
// the storage log provides the follower operations.

import (
	"context"
	"time"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/cluster"
	"github.com/weir-dev/weir/broker/internal/protocol"
	"github.com/weir-dev/weir/broker/internal/replica"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// defaultReplicaLagTime is replica.lag.time.max.ms when Options leave it
// zero.
const defaultReplicaLagTime = 10 * time.Second

// openReplication returns the replication manager of a cluster node; nil
// for a single-node broker.
func openReplication(opts Options, cn *cluster.Node, reg *topics.Registry) (*replica.Manager, error) {
	if cn == nil {
		return nil, nil
	}
	dial, err := opts.replicaDial()
	if err != nil {
		return nil, err
	}
	lag := opts.ReplicaLagTime
	if lag <= 0 {
		lag = defaultReplicaLagTime
	}
	return replica.NewManager(replica.Options{
		Self: opts.NodeID, Topics: reg, Dial: dial,
		AlterPartition: cn.AlterPartition, BrokerEpoch: cn.BrokerEpoch, SessionLapsed: cn.SessionLapsed,
		LagTime: lag, Logger: opts.Logger, AfterCommitWait: opts.cluster.afterCommitWait,
		DurableWait: opts.cluster.durableWait,
	}), nil
}

// replicationOf returns m as the protocol's Replication; nil (not a typed
// nil) for a single-node broker.
func replicationOf(m *replica.Manager) protocol.Replication {
	if m == nil {
		return nil
	}
	return m
}

func startReplication(m *replica.Manager, cn *cluster.Node) {
	if m != nil {
		m.Run(cn.Image, cn.Changed, cn.Replayed)
	}
}

func closeReplication(m *replica.Manager) {
	if m != nil {
		m.Close()
	}
}

// The storage log's follower operations (replica.Log).

func (s *storageLog) AppendReplica(batches []byte) error {
	_, err := s.l.AppendReplica(batches)
	return err
}

func (s *storageLog) DropSyncedCache() { s.l.DropSyncedCache() }

func (s *storageLog) TruncateTo(off base.Offset) (base.Offset, error) { return s.l.TruncateTo(off) }

func (s *storageLog) ReadReplica(from base.Offset, maxBytes int) ([]byte, error) {
	return s.l.ReadReplica(from, maxBytes)
}

func (s *storageLog) ReadReplicaInto(dst []byte, from base.Offset, maxBytes int) ([]byte, error) {
	return s.l.ReadReplicaInto(dst, from, maxBytes)
}

func (s *storageLog) ReadReplicaRange(from base.Offset, maxBytes, minBytes int) (topics.FileRange, bool, error) {
	r, ok, err := s.l.ReadReplicaRange(from, maxBytes, minBytes)
	if !ok || err != nil {
		return nil, false, err
	}
	return fileRange(r), true, nil
}

func (s *storageLog) SetHighWatermarkLimit(limit base.Offset) { s.l.SetHighWatermarkLimit(limit) }
func (s *storageLog) ClearHighWatermarkLimit()                { s.l.ClearHighWatermarkLimit() }
func (s *storageLog) SetFollowerHighWatermark(hw base.Offset) { s.l.SetFollowerHighWatermark(hw) }
func (s *storageLog) DurableEnd() base.Offset                 { return s.l.DurableEnd() }
func (s *storageLog) Appended() <-chan struct{}               { return s.l.Appended() }
func (s *storageLog) LatestEpoch() base.Epoch                 { return s.l.LatestEpoch() }

func (s *storageLog) EndOffsetForEpoch(e base.Epoch) (base.Epoch, base.Offset, bool) {
	return s.l.EndOffsetForEpoch(e)
}

func (s *storageLog) WaitHighWatermark(ctx context.Context, end base.Offset, stop <-chan struct{}) error {
	return s.l.WaitHighWatermark(ctx, end, stop)
}

var _ replica.Log = (*storageLog)(nil)
