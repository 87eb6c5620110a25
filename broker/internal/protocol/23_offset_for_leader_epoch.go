package protocol

// OffsetForLeaderEpoch, versions 0-4, served and advertised in cluster mode
// only (a single node keeps its advertised APIs as they were).
//
// CurrentLeaderEpoch is checked as on Fetch, before the leadership
// (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, then NOT_LEADER_OR_FOLLOWER
// unless this broker leads the partition: cluster.go's leadsInEpoch). The
// answer is KIP-101's: the largest leader epoch <= LeaderEpoch the log
// knows and the offset where the epoch after it starts (the log end offset
// for the newest epoch); -1 and -1 when the log knows no such epoch.
// Consumers use it to detect a truncation after a leader change (KIP-320);
// followers of this broker use DivergingEpoch in Fetch instead.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
)

func init() {
	registerClusterOnly(kmsg.OffsetForLeaderEpoch, 0, 4, handleOffsetForLeaderEpoch)
}

// epochLog is the part of a log that answers OffsetForLeaderEpoch.
type epochLog interface {
	EndOffsetForEpoch(e base.Epoch) (base.Epoch, base.Offset, bool)
}

func handleOffsetForLeaderEpoch(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	var v *ClusterView
	if s.cfg.Cluster != nil {
		v = s.cfg.Cluster.View()
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition, op.LeaderEpoch, op.EndOffset = rp.Partition, -1, -1
			op.ErrorCode = s.offsetForLeaderEpoch(v, rt.Topic, rp, &op)
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (s *Server) offsetForLeaderEpoch(v *ClusterView, topic string, rp kmsg.OffsetForLeaderEpochRequestTopicPartition, op *kmsg.OffsetForLeaderEpochResponseTopicPartition) int16 {
	if v == nil {
		return kerr.NotLeaderForPartition.Code
	}
	lp, code := s.leadsInEpoch(v, v.Topics[topic], rp.Partition, rp.CurrentLeaderEpoch)
	if code != 0 {
		return code
	}
	el, ok := lp.Log().(epochLog)
	if !ok {
		return 0 // a log that keeps no epochs: undefined
	}
	if e, end, ok := el.EndOffsetForEpoch(base.Epoch(rp.LeaderEpoch)); ok {
		op.LeaderEpoch, op.EndOffset = int32(e), int64(end)
	}
	return 0
}
