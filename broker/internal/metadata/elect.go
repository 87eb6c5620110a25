package metadata

import "strconv"

// UncleanConfig is the topic config (and broker default) that lets the
// controller elect a replica outside the ISR when every ISR member is
// down: the partition comes back online at the price of every record the
// new leader lacks (committed ones included).
const UncleanConfig = "unclean.leader.election.enable"

// unclean reports whether partitions of topic may be led by a replica
// outside their ISR: the topic's unclean.leader.election.enable, else the
// cluster-wide broker default set with IncrementalAlterConfigs (broker
// resource ""), else Options.UncleanLeaderElection.
func (c *Controller) unclean(topic TopicID) bool {
	t, ok := c.img.topics[topic]
	if !ok {
		return false
	}
	if v, ok := c.img.configs[ConfigResource{Type: ConfigTopic, Name: string(t.name)}][UncleanConfig]; ok {
		b, err := strconv.ParseBool(v)
		return err == nil && b
	}
	if v, ok := c.img.configs[ConfigResource{Type: ConfigBroker}][UncleanConfig]; ok {
		b, err := strconv.ParseBool(v)
		return err == nil && b
	}
	return c.opts.UncleanLeaderElection
}

// electUnclean returns the first replica, in preference order, that is
// registered and unfenced and is not except, whether or not it is in the
// ISR; NoLeader if none is.
func (c *Controller) electUnclean(replicas []NodeID, except NodeID) NodeID {
	for _, r := range replicas {
		if r == except {
			continue
		}
		if b, ok := c.img.brokers[r]; ok && !b.Fenced {
			return r
		}
	}
	return NoLeader
}

// uncleanChange returns the change electing leader l of p outside its ISR:
// the ISR becomes l alone, since only l's log now counts.
func uncleanChange(p *PartitionRecord, l NodeID) PartitionChangeRecord {
	return PartitionChangeRecord{Topic: p.Topic, Partition: p.Partition, Leader: &l, ISR: []NodeID{l}}
}

// electLeaderless elects a leader for every partition that has none: an
// unfenced ISR member, or, where unclean election is enabled and no ISR
// member is up, any unfenced replica.
func (c *Controller) electLeaderless(out *[]Record) error {
	var elections []Record
	c.eachPartition(func(p *PartitionRecord) {
		if p.Leader != NoLeader {
			return
		}
		if l := c.elect(p.Replicas, p.ISR, NoLeader); l != NoLeader {
			elections = append(elections, PartitionChangeRecord{Topic: p.Topic, Partition: p.Partition, Leader: &l})
			return
		}
		if !c.unclean(p.Topic) {
			return
		}
		if l := c.electUnclean(p.Replicas, NoLeader); l != NoLeader {
			elections = append(elections, uncleanChange(p, l))
		}
	})
	return c.emit(out, elections...)
}
