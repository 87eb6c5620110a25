package metadata

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartition (key 56, versions 0-3) is how a partition's leader changes
// its ISR: it drops followers that fell behind and adds back those that
// caught up. The controller accepts a change only from the registered
// incarnation (broker epoch) of the current leader, for the current leader
// epoch (FENCED_LEADER_EPOCH otherwise) and partition epoch
// (INVALID_UPDATE_VERSION: the leader decided on an older state), and only
// an ISR that holds the leader, is a subset of the replicas, and whose new
// members are registered and unfenced (INELIGIBLE_REPLICA). v3 names each
// new member with its broker epoch: a member whose epoch is not its
// registered one is refused the same way. The reply carries the
// partition's state after the change (or as it is, on a refusal), so the
// leader learns it at once. Only ISR members can then be elected leader
// (controller.go, moveAway and elect).
func (c *Controller) AlterPartition(req *kmsg.AlterPartitionRequest) ([]Record, *kmsg.AlterPartitionResponse, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	if _, errc := c.brokerAt(NodeID(req.BrokerID), BrokerEpoch(req.BrokerEpoch)); errc != nil {
		resp.ErrorCode = errc.Code
		return nil, resp, nil
	}
	var out []Record
	for _, rt := range req.Topics {
		ot := kmsg.NewAlterPartitionResponseTopic()
		ot.Topic, ot.TopidID = rt.Topic, rt.TopicID
		var ts *topicState
		if req.Version >= 2 {
			ts = c.img.topics[TopicID(rt.TopicID)]
		} else if id, ok := c.img.names[TopicName(rt.Topic)]; ok {
			ts = c.img.topics[id]
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterPartitionResponseTopicPartition()
			op.Partition = rp.Partition
			if ts == nil || rp.Partition < 0 || int(rp.Partition) >= len(ts.parts) {
				op.ErrorCode, op.LeaderID, op.LeaderEpoch, op.PartitionEpoch = kerr.UnknownTopicOrPartition.Code, -1, -1, -1
				if ts == nil && req.Version >= 2 {
					op.ErrorCode = kerr.UnknownTopicID.Code
				}
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			p := ts.parts[rp.Partition]
			isr := rp.NewISR
			epochs := map[NodeID]int64{}
			if req.Version >= 3 {
				isr = nil
				for _, m := range rp.NewEpochISR {
					isr = append(isr, m.BrokerID)
					epochs[NodeID(m.BrokerID)] = m.BrokerEpoch
				}
			}
			newISR := make([]NodeID, len(isr))
			for i, n := range isr {
				newISR[i] = NodeID(n)
			}
			op.ErrorCode = c.checkAlterPartition(NodeID(req.BrokerID), p, rp, newISR, epochs)
			if op.ErrorCode == 0 && !slices.Equal(newISR, p.ISR) {
				ch := PartitionChangeRecord{Topic: p.Topic, Partition: p.Partition, ISR: newISR}
				if err := c.emit(&out, ch); err != nil {
					return nil, nil, err
				}
				if err := c.completeReassignment(&out, p.Topic, rp.Partition); err != nil {
					return nil, nil, err
				}
				p = ts.parts[rp.Partition]
			}
			op.LeaderID, op.LeaderEpoch, op.PartitionEpoch = int32(p.Leader), int32(p.LeaderEpoch), int32(p.PartitionEpoch)
			for _, n := range p.ISR {
				op.ISR = append(op.ISR, int32(n))
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return out, resp, nil
}

// checkAlterPartition returns the error code refusing a leader's ISR
// change, 0 if it may be applied.
func (c *Controller) checkAlterPartition(from NodeID, p PartitionRecord, rp kmsg.AlterPartitionRequestTopicPartition, isr []NodeID, epochs map[NodeID]int64) int16 {
	switch {
	case p.Leader != from:
		return kerr.NotLeaderForPartition.Code
	case rp.LeaderEpoch < int32(p.LeaderEpoch):
		return kerr.FencedLeaderEpoch.Code
	case rp.LeaderEpoch > int32(p.LeaderEpoch):
		return kerr.UnknownLeaderEpoch.Code
	case rp.PartitionEpoch != int32(p.PartitionEpoch):
		return kerr.InvalidUpdateVersion.Code
	case len(isr) == 0 || !slices.Contains(isr, from) || checkNodes(isr, "ISR") != nil:
		return kerr.InvalidRequest.Code
	}
	for _, n := range isr {
		if !slices.Contains(p.Replicas, n) {
			return kerr.InvalidRequest.Code
		}
		if slices.Contains(p.ISR, n) {
			continue
		}
		b, ok := c.img.brokers[n]
		if !ok || b.Fenced {
			return kerr.IneligibleReplica.Code
		}
		if e, ok := epochs[n]; ok && e != -1 && BrokerEpoch(e) != b.Epoch {
			return kerr.IneligibleReplica.Code
		}
	}
	return 0
}
