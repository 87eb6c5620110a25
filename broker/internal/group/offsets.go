package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commit handles OffsetCommit v0-8. A group that is managed by the
// coordinator accepts commits only from its current members in the current
// generation (also while PreparingRebalance, so that cooperative members can
// commit what they revoke); a group without members accepts commits with
// generation -1 from simple consumers.
func (c *Coordinator) commit(now time.Time, r Request, req *kmsg.OffsetCommitRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	defer c.respond(r.Token, resp)
	code := c.validGroupID(req.Group)
	generation, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		generation = -1
	}
	var g *group
	if code == 0 {
		g = c.groups[GroupID(req.Group)]
		switch {
		case g == nil && generation < 0:
			if g = c.getOrCreate(now, GroupID(req.Group)); g == nil {
				code = kerr.CoordinatorNotAvailable.Code
			}
		case g == nil:
			code = kerr.IllegalGeneration.Code
		case generation < 0 && g.state == StateEmpty:
		default:
			if _, c2 := c.validMember(g, memberID, deref(req.InstanceID)); c2 == kerr.FencedInstanceID.Code {
				code = c2
			} else if g.state == StateCompletingRebalance {
				code = kerr.RebalanceInProgress.Code
			} else if c2 != 0 {
				code = c2
			} else if Generation(generation) != g.generation {
				code = kerr.IllegalGeneration.Code
			}
		}
	}
	if g != nil {
		defer c.settle(now, g) // a commit to an unsubscribed topic starts an expiry
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		check := c.commitCheck(t.Topic, code)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			if rp.ErrorCode = check(p.Partition, p.Metadata); rp.ErrorCode == 0 {
				epoch := int32(-1)
				if req.Version >= 6 {
					epoch = p.LeaderEpoch
				}
				o := offset{offset: p.Offset, leaderEpoch: epoch, metadata: deref(p.Metadata), committed: now}
				tp := topicPartition{t.Topic, p.Partition}
				prev, had := g.offsets[tp]
				g.offsets[tp] = o
				rec := c.offsetRecord(g.id, tp, &o)
				rec.undo = &commitUndo{group: g.id, tp: tp, wrote: o, prev: prev, had: had}
				c.records = append(c.records, rec)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

// Revert takes back the commits whose records could not be stored (the
// driver answers them with an error): each partition gets its previous
// offset again, unless a later commit has replaced it meanwhile.
func (c *Coordinator) Revert(now time.Time, failed []Record) {
	c.now = now
	for _, rec := range failed {
		if rec.txn {
			c.revertTxn(rec)
			continue
		}
		u := rec.undo
		if u == nil {
			continue
		}
		g := c.groups[u.group]
		if g == nil {
			continue
		}
		if cur, ok := g.offsets[u.tp]; !ok || cur != u.wrote {
			continue
		}
		if u.had {
			g.offsets[u.tp] = u.prev
		} else {
			delete(g.offsets, u.tp)
		}
		g.scheduled = time.Time{} // the expiry may have moved earlier
		c.settle(now, g)
	}
}

// fetchOffsets handles OffsetFetch v0-8 (v8 asks for several groups).
func (c *Coordinator) fetchOffsets(r Request, req *kmsg.OffsetFetchRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	defer c.respond(r.Token, resp)
	defer c.markUnstable(req, resp) // runs first
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			out := kmsg.NewOffsetFetchResponseGroup()
			out.Group = rg.Group
			var topics []kmsg.OffsetFetchRequestTopic
			if rg.Topics != nil {
				topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			code, res := c.offsetsFor(rg.Group, topics)
			if code == 0 && !c.owns(GroupID(rg.Group)) {
				code, res = kerr.NotCoordinator.Code, nil
			}
			out.ErrorCode = code
			for _, t := range res {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.Topic
				for _, p := range t.Partitions {
					gt.Partitions = append(gt.Partitions, kmsg.OffsetFetchResponseGroupTopicPartition{
						Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode,
					})
				}
				out.Topics = append(out.Topics, gt)
			}
			resp.Groups = append(resp.Groups, out)
		}
		return
	}
	code, res := c.offsetsFor(req.Group, req.Topics)
	resp.ErrorCode = code
	resp.Topics = res
}

// offsetsFor answers one group's offset fetch: the named partitions (-1 for
// those without a commit), or every committed partition of an existing topic
// when topics is nil.
func (c *Coordinator) offsetsFor(id string, topics []kmsg.OffsetFetchRequestTopic) (int16, []kmsg.OffsetFetchResponseTopic) {
	if code := c.validGroupID(id); code != 0 {
		return code, nil
	}
	g := c.groups[GroupID(id)]
	part := func(topic string, p int32) kmsg.OffsetFetchResponseTopicPartition {
		rp := kmsg.NewOffsetFetchResponseTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch = -1, -1
		if g != nil {
			if o, ok := g.offsets[topicPartition{topic, p}]; ok {
				rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, strp(o.metadata)
			}
		}
		return rp
	}
	var out []kmsg.OffsetFetchResponseTopic
	if topics == nil {
		if g == nil {
			return 0, nil
		}
		for _, tp := range sortedTPs(g.offsets) {
			if !c.partitionExists(tp) {
				continue // its topic was deleted: not reported
			}
			if len(out) == 0 || out[len(out)-1].Topic != tp.topic {
				out = append(out, kmsg.OffsetFetchResponseTopic{Topic: tp.topic})
			}
			out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, part(tp.topic, tp.partition))
		}
		return 0, out
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, part(t.Topic, p))
		}
		out = append(out, rt)
	}
	return 0, out
}

// partitionExists reports whether tp exists, as far as Options.Topics knows
// (without it, every partition does).
func (c *Coordinator) partitionExists(tp topicPartition) bool {
	if c.opts.Topics == nil {
		return true
	}
	n, ok := c.opts.Topics.Partitions(tp.topic)
	return ok && tp.partition >= 0 && tp.partition < n
}

func sortedTPs[V any](m map[topicPartition]V) []topicPartition {
	tps := make([]topicPartition, 0, len(m))
	for tp := range m {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b topicPartition) int {
		if a.topic != b.topic {
			if a.topic < b.topic {
				return -1
			}
			return 1
		}
		return int(a.partition) - int(b.partition)
	})
	return tps
}

// deleteOffsets handles OffsetDelete v0: refused per partition for topics
// the group's members subscribe to.
func (c *Coordinator) deleteOffsets(now time.Time, r Request, req *kmsg.OffsetDeleteRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	defer c.respond(r.Token, resp)
	if code := c.validGroupID(req.Group); code != 0 {
		resp.ErrorCode = code
		return
	}
	g := c.groups[GroupID(req.Group)]
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return
	}
	defer c.settle(now, g)
	if g.state != StateEmpty && g.protocolType != "consumer" {
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return
	}
	subscribed := g.subscribedTopics()
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			tp := topicPartition{t.Topic, p.Partition}
			if subscribed == nil || subscribed[t.Topic] {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[tp]; ok {
				delete(g.offsets, tp)
				c.records = append(c.records, c.offsetRecord(g.id, tp, nil))
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

// subscribedTopics returns the topics the group's consumer members
// subscribe to; nil means unknown (a member's metadata does not decode),
// which is treated as subscribed to everything.
func (g *group) subscribedTopics() map[string]bool {
	out := make(map[string]bool)
	if len(g.members) == 0 {
		return out
	}
	if g.protocolType != "consumer" {
		return nil
	}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadata(g.protocol)); err != nil {
			return nil
		}
		for _, t := range meta.Topics {
			out[t] = true
		}
	}
	return out
}

// offsetsExpiry is when g's next offset expires; zero if none will.
func (c *Coordinator) offsetsExpiry(g *group) time.Time {
	if len(g.offsets) == 0 {
		return time.Time{}
	}
	if g.state == StateEmpty && g.protocolType != "" {
		return g.stateSince.Add(c.opts.OffsetsRetention)
	}
	var first time.Time
	for tp, o := range g.offsets {
		if c.expiresByCommit(g, tp) && (first.IsZero() || o.committed.Before(first)) {
			first = o.committed
		}
	}
	if first.IsZero() {
		return first
	}
	return first.Add(c.opts.OffsetsRetention)
}

// expiresByCommit reports whether tp's offset in g expires a retention
// period after its commit: in a group that only commits, and (as Kafka's
// KIP-211) in a consumer group with members for a topic none of them
// subscribes to.
func (c *Coordinator) expiresByCommit(g *group, tp topicPartition) bool {
	if g.state == StateEmpty {
		return g.protocolType == ""
	}
	return g.subscribed != nil && !g.subscribed[tp.topic]
}

// expireOffsets drops offsets past retention: all of a consumer group's once
// it has been empty for the retention time; those that expire by commit
// (expiresByCommit) once they are that old.
func (c *Coordinator) expireOffsets(now time.Time, g *group) {
	all := g.state == StateEmpty && g.protocolType != "" && !g.stateSince.Add(c.opts.OffsetsRetention).After(now)
	for _, tp := range sortedTPs(g.offsets) {
		if all || (c.expiresByCommit(g, tp) && !g.offsets[tp].committed.Add(c.opts.OffsetsRetention).After(now)) {
			delete(g.offsets, tp)
			c.records = append(c.records, c.offsetRecord(g.id, tp, nil))
		}
	}
}

// DropTopics forgets every group's committed offsets for the named topics
// (deleted ones), writing a tombstone for each, so that a topic re-created
// under the same name starts without committed offsets. Groups left holding
// nothing go.
func (c *Coordinator) DropTopics(now time.Time, topics []string) {
	c.now = now
	if len(topics) == 0 {
		return
	}
	gone := make(map[string]bool, len(topics))
	for _, t := range topics {
		gone[t] = true
	}
	c.dropOffsets(now, func(tp topicPartition) bool { return gone[tp.topic] })
}

// dropOffsets removes, with a tombstone each, the offsets for which drop is
// true from every group.
func (c *Coordinator) dropOffsets(now time.Time, drop func(topicPartition) bool) {
	for _, id := range sortedIDs(c.groups) {
		g := c.groups[id]
		changed := false
		for _, tp := range sortedTPs(g.offsets) {
			if drop(tp) {
				delete(g.offsets, tp)
				c.records = append(c.records, c.offsetRecord(g.id, tp, nil))
				changed = true
			}
		}
		if changed {
			g.scheduled = time.Time{} // the offsets' expiry may have changed
			c.settle(now, g)
		}
	}
}

// dropMissingTopics drops the offsets of topics that Options.Topics
// says do not exist (deleted while the broker was down, or before the
// tombstones of DropTopics were stored).
func (c *Coordinator) dropMissingTopics(now time.Time) {
	if c.opts.Topics == nil {
		return
	}
	exists := map[string]bool{}
	c.dropOffsets(now, func(tp topicPartition) bool {
		ok, seen := exists[tp.topic]
		if !seen {
			_, ok = c.opts.Topics.Partitions(tp.topic)
			exists[tp.topic] = ok
		}
		return !ok
	})
}

// commitCheck returns the error of committing an offset to a partition of
// topic (0: none), for OffsetCommit and TxnOffsetCommit alike: the
// request's own error code if it has one, else an unknown topic or
// partition, else metadata over MaxOffsetMetadataBytes.
func (c *Coordinator) commitCheck(topic string, code int16) func(partition int32, metadata *string) int16 {
	nparts, exists := int32(0), true
	if c.opts.Topics != nil {
		nparts, exists = c.opts.Topics.Partitions(topic)
	}
	return func(partition int32, metadata *string) int16 {
		switch {
		case code != 0:
			return code
		case !exists || (c.opts.Topics != nil && (partition < 0 || partition >= nparts)):
			return kerr.UnknownTopicOrPartition.Code
		case len(deref(metadata)) > c.opts.MaxOffsetMetadataBytes:
			return kerr.OffsetMetadataTooLarge.Code
		}
		return 0
	}
}
