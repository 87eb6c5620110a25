package metadata

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartitionReassignments (key 45, versions 0-1) moves partitions to
// new replicas, as Kafka does:
//
//   - the partition's replicas become the union of the target and the
//     original replicas (ReassignmentRecord): the adding replicas start as
//     followers and catch up from the leader;
//   - leadership first: a leader that is not in the target moves at once
//     to the first target replica that is an unfenced ISR member, if any;
//   - once every target replica is in the ISR (the leader adds them,
//     AlterPartition), the assignment switches (completeLocked): the
//     replicas become the target, the removed replicas leave the ISR, and a
//     removed leader hands over to a target replica. Removed replicas stop
//     replicating and drop their copy (replica.Manager).
//
// A null Replicas cancels a reassignment in progress: back to the original
// replicas (NO_REASSIGNMENT_IN_PROGRESS if none is); a new target for a
// partition being reassigned replaces the old one, from the same original.
// A target must name distinct registered brokers, at least one
// (INVALID_REPLICA_ASSIGNMENT); v1 with AllowReplicationFactorChange false
// refuses a target of another size than the original
// (INVALID_REPLICATION_FACTOR). An unknown partition gets
// UNKNOWN_TOPIC_OR_PARTITION. All changes of one request are one entry.
func (c *Controller) AlterPartitionReassignments(req *kmsg.AlterPartitionAssignmentsRequest) ([]Record, *kmsg.AlterPartitionAssignmentsResponse, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	var out []Record
	for _, rt := range req.Topics {
		ot := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			op.Partition = rp.Partition
			records, aerr := c.planReassignment(rt.Topic, rp.Partition, rp.Replicas, allowRF)
			if aerr != nil {
				op.ErrorCode, op.ErrorMessage = aerr.err.Code, &aerr.msg
			} else if err := c.emit(&out, records...); err != nil {
				return nil, nil, err
			} else if id, ok := c.img.names[TopicName(rt.Topic)]; ok {
				if err := c.completeReassignment(&out, id, rp.Partition); err != nil {
					return nil, nil, err
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return out, resp, nil
}

// planReassignment returns the records that start (or cancel, for a nil
// target) the reassignment of topic/part to target.
func (c *Controller) planReassignment(topic string, part int32, replicas []int32, allowRF bool) ([]Record, *apiError) {
	id, ok := c.img.names[TopicName(topic)]
	if !ok || part < 0 || int(part) >= len(c.img.topics[id].parts) {
		return nil, refuse(kerr.UnknownTopicOrPartition, "topic %q has no partition %d", topic, part)
	}
	ts := c.img.topics[id]
	p := ts.parts[part]
	cur, moving := ts.targets[part]
	original := p.Replicas
	if moving {
		original = cur.original
	}
	var target []NodeID
	if replicas == nil {
		if !moving {
			return nil, refuse(kerr.NoReassignmentInProgress, "%s/%d is not being reassigned", topic, part)
		}
		target = original
	} else {
		target = make([]NodeID, len(replicas))
		for i, r := range replicas {
			target[i] = NodeID(r)
		}
		if len(target) == 0 {
			return nil, refuse(kerr.InvalidReplicaAssignment, "%s/%d: an empty replica list", topic, part)
		}
		for i, r := range target {
			if slices.Contains(target[:i], r) {
				return nil, refuse(kerr.InvalidReplicaAssignment, "%s/%d: broker %d listed twice in %v", topic, part, r, target)
			}
			if _, ok := c.img.brokers[r]; !ok {
				return nil, refuse(kerr.InvalidReplicaAssignment, "%s/%d: broker %d is not registered", topic, part, r)
			}
		}
		if !allowRF && len(target) != len(original) {
			return nil, refuse(kerr.InvalidReplicationFactor, "%s/%d: %d replicas where it has %d, and the request does not allow changing the replication factor", topic, part, len(target), len(original))
		}
	}
	if !moving && slices.Equal(target, p.Replicas) {
		return nil, nil // already so
	}
	union := slices.Clone(target)
	for _, r := range original {
		if !slices.Contains(union, r) {
			union = append(union, r)
		}
	}
	var records []Record
	// A target replaced mid-way may drop replicas the previous target
	// added: they leave the ISR (and the leadership) first.
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(n NodeID) bool { return !slices.Contains(union, n) })
	leader := p.Leader
	if leader != NoLeader && !slices.Contains(union, leader) {
		leader = c.elect(union, isr, NoLeader)
	}
	if len(isr) == 0 {
		return nil, refuse(kerr.InvalidReplicaAssignment, "%s/%d: no replica of %v is in the ISR %v", topic, part, union, p.ISR)
	}
	if ch, ok := changeOf(&p, isr, leader); ok {
		records = append(records, ch)
	}
	// NB: a cancel (or a target equal to the original) is a reassignment
	// back to the original, done at once when those replicas are in sync.
	records = append(records, ReassignmentRecord{Topic: id, Partition: part, Replicas: union, Target: target, Original: original})
	// Leadership first: off a replica the target drops, to one it keeps.
	if leader == NoLeader || !slices.Contains(target, leader) {
		if l := c.elect(target, isr, NoLeader); l != NoLeader && l != leader {
			records = append(records, PartitionChangeRecord{Topic: id, Partition: part, Leader: &l})
		}
	}
	return records, nil
}

// changeOf returns the change taking p to isr and leader, if it changes
// anything.
func changeOf(p *PartitionRecord, isr []NodeID, leader NodeID) (PartitionChangeRecord, bool) {
	ch := PartitionChangeRecord{Topic: p.Topic, Partition: p.Partition}
	if !slices.Equal(isr, p.ISR) {
		ch.ISR = isr
	}
	if leader != p.Leader {
		ch.Leader = &leader
	}
	return ch, ch.ISR != nil || ch.Leader != nil
}

// completeReassignment switches partition part of topic id to its target
// once every target replica is in the ISR: the removed replicas leave the
// ISR, a removed leader hands over to the first target replica that is an
// unfenced ISR member, and the replicas become the target.
func (c *Controller) completeReassignment(out *[]Record, id TopicID, part int32) error {
	ts, ok := c.img.topics[id]
	if !ok {
		return nil
	}
	r, moving := ts.targets[part]
	if !moving {
		return nil
	}
	p := ts.parts[part]
	for _, n := range r.target {
		if !slices.Contains(p.ISR, n) {
			return nil
		}
	}
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(n NodeID) bool { return !slices.Contains(r.target, n) })
	leader := p.Leader
	if !slices.Contains(r.target, leader) {
		leader = c.elect(r.target, isr, NoLeader)
	}
	var records []Record
	if ch, ok := changeOf(&p, isr, leader); ok {
		records = append(records, ch)
	}
	records = append(records, ReassignmentRecord{Topic: id, Partition: part, Replicas: r.target})
	return c.emit(out, records...)
}

// ListPartitionReassignments (key 46, version 0) lists the reassignments in
// progress: of every partition (Topics null) or of those named (an unknown
// or idle partition is left out, as Kafka). Each lists its replicas now
// (the union), the adding ones and the removing ones.
func (c *Controller) ListPartitionReassignments(req *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	add := func(ts *topicState, part int32) {
		r, ok := ts.targets[part]
		if !ok {
			return
		}
		p := ts.parts[part]
		op := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		op.Partition = part
		op.Replicas = int32s(p.Replicas)
		op.AddingReplicas = int32s(diff(r.target, r.original))
		op.RemovingReplicas = int32s(diff(r.original, r.target))
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != string(ts.name) {
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = string(ts.name)
			resp.Topics = append(resp.Topics, rt)
		}
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Partitions = append(rt.Partitions, op)
	}
	if req.Topics == nil {
		for _, t := range c.img.Topics() {
			ts := c.img.topics[t.ID]
			for i := range ts.parts {
				add(ts, int32(i))
			}
		}
		return resp
	}
	for _, rt := range req.Topics {
		id, ok := c.img.names[TopicName(rt.Topic)]
		if !ok {
			continue
		}
		for _, part := range rt.Partitions {
			if part >= 0 && int(part) < len(c.img.topics[id].parts) {
				add(c.img.topics[id], part)
			}
		}
	}
	return resp
}

// diff returns the members of a that are not in b, in a's order.
func diff(a, b []NodeID) []NodeID {
	var out []NodeID
	for _, n := range a {
		if !slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}

func int32s(ns []NodeID) []int32 {
	out := make([]int32, len(ns))
	for i, n := range ns {
		out[i] = int32(n)
	}
	return out
}
