package protocol

// Replication (cluster mode with broker/internal/replica): what Produce,
// Fetch and ListOffsets ask of it. A Server without Config.Replication
// appends at leader epoch 0 and acknowledges acks=all once the leader's
// log is durable, as a single node does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// Replication is the partition replication of a broker in a cluster.
type Replication interface {
	// AppendEpoch is the leader epoch a produce to p appends with.
	AppendEpoch(p *topics.Partition) base.Epoch
	// CheckProduce refuses a produce before anything is written
	// (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS for acks=all); 0 lets
	// it go on.
	CheckProduce(p *topics.Partition, acks int16) int16
	// CheckLeaderEpoch answers a client's CurrentLeaderEpoch on any
	// replica of p, epoch first (FENCED_LEADER_EPOCH,
	// UNKNOWN_LEADER_EPOCH), then NOT_LEADER_OR_FOLLOWER unless this
	// broker leads p; 0 lets it go on.
	CheckLeaderEpoch(p *topics.Partition, epoch int32) int16
	// WaitCommitted waits until the high watermark covers end (acks=all)
	// of records appended in leader epoch epoch.
	WaitCommitted(ctx context.Context, p *topics.Partition, end base.Offset, epoch base.Epoch) error
	// Leadership reports whether this broker leads p, in which leader
	// epoch, and whether its high watermark has reached that epoch's
	// first offset (a coordinator may then load p: ownership.Observation).
	Leadership(p *topics.Partition) (epoch int32, leading, ready bool)
	// ServeFetch answers a follower's Fetch.
	// read is what reads the batches: into buffers the connection keeps
	// until the response is written, or as file ranges (fetchLease.readAny).
	ServeFetch(ctx context.Context, req *kmsg.FetchRequest, version int16, read func(l topics.Log, op *kmsg.FetchResponseTopicPartition, from base.Offset, maxBytes int) ([]byte, error)) *kmsg.FetchResponse
}

// appendEpoch is the leader epoch a produce to p appends with.
func (s *Server) appendEpoch(p *topics.Partition) base.Epoch {
	if s.cfg.Replication == nil {
		return 0
	}
	return s.cfg.Replication.AppendEpoch(p)
}

// waitAcked waits until an acks=all produce to p ending at end may be
// acknowledged: durable on the leader, and, replicated, covered by the
// high watermark.
func (s *Server) waitAcked(ctx context.Context, p *topics.Partition, end base.Offset, epoch base.Epoch) error {
	if s.cfg.Replication == nil {
		return p.Log().WaitDurable(ctx, end)
	}
	return s.cfg.Replication.WaitCommitted(ctx, p, end, epoch)
}

// replicaCheckProduce is CheckProduce, 0 without replication.
func (s *Server) replicaCheckProduce(p *topics.Partition, acks int16) int16 {
	if s.cfg.Replication == nil || p == nil {
		return 0
	}
	return s.cfg.Replication.CheckProduce(p, acks)
}

// replicaCheckEpoch is CheckLeaderEpoch, 0 without replication.
func (s *Server) replicaCheckEpoch(p *topics.Partition, epoch int32) int16 {
	if s.cfg.Replication == nil || p == nil {
		return 0
	}
	return s.cfg.Replication.CheckLeaderEpoch(p, epoch)
}
