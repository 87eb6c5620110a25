package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Ownership: which __consumer_offsets partitions this coordinator serves.
//
// A single-node broker coordinates every group: a new Coordinator owns
// every partition. In a cluster a broker coordinates exactly the groups
// whose partition it leads; the broker tells the coordinator so with
// Unload (leadership lost) and Load + FinishLoadPartition (leadership
// won). A request for a group of a partition not owned is answered
// NOT_COORDINATOR, which clients retry after finding the coordinator
// again; such a request never creates the group.

// Owns reports whether the coordinator serves the groups of partition p.
func (c *Coordinator) Owns(p int32) bool {
	return p >= 0 && int(p) < len(c.owned) && c.owned[p]
}

// owns reports whether the coordinator serves group id.
func (c *Coordinator) owns(id GroupID) bool {
	return c.owned[Partition(id, c.opts.OffsetsPartitions)]
}

// Unload stops serving partition p: its groups are forgotten (their state
// stays in __consumer_offsets, where the next owner loads it from), every
// JoinGroup and SyncGroup of theirs still waiting is answered
// NOT_COORDINATOR, and later requests for them get NOT_COORDINATOR.
// Nothing is persisted. Unloading a partition not owned does nothing.
func (c *Coordinator) Unload(now time.Time, p int32) {
	if !c.Owns(p) {
		return
	}
	c.now = now
	c.owned[p] = false
	for _, id := range sortedIDs(c.groups) {
		if Partition(id, c.opts.OffsetsPartitions) != p {
			continue
		}
		g := c.groups[id]
		for _, m := range g.sortedMembers() {
			c.failJoin(m, kerr.NotCoordinator.Code)
			c.failSync(m, kerr.NotCoordinator.Code)
		}
		delete(c.groups, id)
	}
}

// FinishLoadPartition ends the replay of partition p (its records given to
// Load since it was unloaded) at time now and starts serving it: as
// FinishLoad does for every partition, its loaded members get a full
// session timeout to show up and groups left with nothing are dropped.
func (c *Coordinator) FinishLoadPartition(now time.Time, p int32) {
	if p < 0 || int(p) >= len(c.owned) {
		return
	}
	c.now = now
	c.owned[p] = true
	for _, id := range sortedIDs(c.groups) {
		if Partition(id, c.opts.OffsetsPartitions) != p {
			continue
		}
		g := c.groups[id]
		if g.stateSince.IsZero() {
			g.stateSince = now
		}
		for _, m := range g.members {
			m.deadline = now.Add(m.sessionTimeout)
		}
		c.settle(now, g)
	}
	c.dropMissingTopics(now)
}

// refuseUnowned answers a request naming one group NOT_COORDINATOR when
// that group's partition is not owned, and reports whether it did.
// Requests naming several groups (DescribeGroups, DeleteGroups, OffsetFetch
// v8+) are answered per group by their handlers; ListGroups lists only
// owned groups, which are the only ones held.
func (c *Coordinator) refuseUnowned(r Request) bool {
	var id string
	switch m := r.Msg.(type) {
	case *kmsg.JoinGroupRequest:
		id = m.Group
	case *kmsg.SyncGroupRequest:
		id = m.Group
	case *kmsg.HeartbeatRequest:
		id = m.Group
	case *kmsg.LeaveGroupRequest:
		id = m.Group
	case *kmsg.OffsetCommitRequest:
		id = m.Group
	case *kmsg.OffsetFetchRequest:
		if m.Version >= 8 {
			return false
		}
		id = m.Group
	case *kmsg.OffsetDeleteRequest:
		id = m.Group
	default:
		return false
	}
	if c.validGroupID(id) != 0 || c.owns(GroupID(id)) {
		return false // an invalid id gets its own error from the handler
	}
	code := kerr.NotCoordinator.Code
	switch m := r.Msg.(type) {
	case *kmsg.JoinGroupRequest:
		resp := m.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, m.MemberID
		c.respond(r.Token, resp)
	case *kmsg.SyncGroupRequest:
		resp := m.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		c.respond(r.Token, resp)
	case *kmsg.HeartbeatRequest:
		resp := m.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		c.respond(r.Token, resp)
	case *kmsg.LeaveGroupRequest:
		resp := m.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		c.respond(r.Token, resp)
	case *kmsg.OffsetCommitRequest:
		resp := m.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range m.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.respond(r.Token, resp)
	case *kmsg.OffsetFetchRequest:
		// v0-1 have no top-level error: each partition carries it.
		resp := m.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = code
		for _, t := range m.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.respond(r.Token, resp)
	case *kmsg.OffsetDeleteRequest:
		resp := m.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		c.respond(r.Token, resp)
	}
	return true
}
