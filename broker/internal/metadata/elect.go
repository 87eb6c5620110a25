package metadata

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
func (c *Controller) electUnclean(p *PartitionRecord, except NodeID) NodeID {
	// NB: while p is reassigned its replicas are the target first, then
	// the original ones; an adding replica may hold nothing yet, so the
	// original replicas, which hold the data, come first here.
	order := p.Replicas
	if ts := c.img.topics[p.Topic]; ts != nil {
		if r, moving := ts.targets[p.Partition]; moving {
			order = append(slices.Clone(r.original), p.Replicas...)
		}
	}
	for _, r := range order {
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
		if l := c.electUnclean(p, NoLeader); l != NoLeader {
			elections = append(elections, uncleanChange(p, l))
		}
	})
	return c.emit(out, elections...)
}

// preferredChange returns the change moving p's leadership to its
// preferred replica (the first of its replicas), and whether that can and
// need be done: the preferred replica does not lead, is in the ISR, and is
// registered and unfenced.
func (c *Controller) preferredChange(p *PartitionRecord) (PartitionChangeRecord, *kerr.Error) {
	pref := p.Replicas[0]
	if p.Leader == pref {
		return PartitionChangeRecord{}, kerr.ElectionNotNeeded
	}
	b, ok := c.img.brokers[pref]
	if !ok || b.Fenced || !slices.Contains(p.ISR, pref) {
		return PartitionChangeRecord{}, kerr.PreferredLeaderNotAvailable
	}
	return PartitionChangeRecord{Topic: p.Topic, Partition: p.Partition, Leader: &pref}, nil
}

// rebalance moves every partition whose preferred replica is eligible
// (see preferredChange) back to it.
func (c *Controller) rebalance(out *[]Record) error {
	var moves []Record
	c.eachPartition(func(p *PartitionRecord) {
		if ch, errc := c.preferredChange(p); errc == nil {
			moves = append(moves, ch)
		}
	})
	return c.emit(out, moves...)
}

// Election types of ElectLeaders (v1+).
const (
	electPreferred int8 = 0
	electUnclean   int8 = 1
)

// ElectLeaders (key 43, versions 0-2) elects leaders on request:
//
//   - preferred (type 0, and every v0 request): the partition's first
//     replica leads again if it is in the ISR and unfenced
//     (PREFERRED_LEADER_NOT_AVAILABLE otherwise; ELECTION_NOT_NEEDED when
//     it leads already);
//   - unclean (type 1): a partition with no leader gets one, an ISR member
//     if one is up, else any live replica whose ISR then is itself alone
//     (ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is up;
//     ELECTION_NOT_NEEDED when it has a leader).
//
// Topics nil means every partition; the reply then lists only those where
// an election was made or failed, not ELECTION_NOT_NEEDED (as Kafka). An
// unknown topic or partition gets UNKNOWN_TOPIC_OR_PARTITION. The
// elections of one request are one entry.
func (c *Controller) ElectLeaders(req *kmsg.ElectLeadersRequest) ([]Record, *kmsg.ElectLeadersResponse, error) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	typ := electPreferred
	if req.Version >= 1 {
		typ = req.ElectionType
	}
	if typ != electPreferred && typ != electUnclean {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return nil, resp, nil
	}
	var out []Record
	results := map[string]*kmsg.ElectLeadersResponseTopic{}
	var order []string
	result := func(topic string, part int32, errc *kerr.Error, msg string) {
		rt, ok := results[topic]
		if !ok {
			rt = &kmsg.ElectLeadersResponseTopic{Topic: topic}
			results[topic] = rt
			order = append(order, topic)
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = part
		if errc != nil {
			rp.ErrorCode = errc.Code
			if msg != "" {
				rp.ErrorMessage = &msg
			}
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	elect := func(p *PartitionRecord, all bool) error {
		name := string(c.img.topics[p.Topic].name)
		var ch PartitionChangeRecord
		var errc *kerr.Error
		var msg string
		if typ == electPreferred {
			ch, errc = c.preferredChange(p)
			if errc == kerr.PreferredLeaderNotAvailable {
				msg = fmt.Sprintf("preferred replica %d of %s/%d is not an unfenced member of the ISR %v", p.Replicas[0], name, p.Partition, p.ISR)
			}
		} else {
			switch l := c.elect(p.Replicas, p.ISR, NoLeader); {
			case p.Leader != NoLeader:
				errc = kerr.ElectionNotNeeded
			case l != NoLeader:
				ch = PartitionChangeRecord{Topic: p.Topic, Partition: p.Partition, Leader: &l}
			default:
				if l = c.electUnclean(p, NoLeader); l == NoLeader {
					errc = kerr.EligibleLeadersNotAvailable
					msg = fmt.Sprintf("no replica of %s/%d (%v) is up", name, p.Partition, p.Replicas)
				} else {
					ch = uncleanChange(p, l)
				}
			}
		}
		if all && errc == kerr.ElectionNotNeeded {
			return nil
		}
		if errc == nil {
			if err := c.emit(&out, ch); err != nil {
				return err
			}
		}
		result(name, p.Partition, errc, msg)
		return nil
	}
	if req.Topics == nil {
		var err error
		c.eachPartition(func(p *PartitionRecord) {
			if err == nil {
				err = elect(p, true)
			}
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for _, rt := range req.Topics {
		id, ok := c.img.names[TopicName(rt.Topic)]
		for _, part := range rt.Partitions {
			if !ok || part < 0 || int(part) >= len(c.img.topics[id].parts) {
				result(rt.Topic, part, kerr.UnknownTopicOrPartition, fmt.Sprintf("topic %q has no partition %d", rt.Topic, part))
				continue
			}
			if err := elect(&c.img.topics[id].parts[part], false); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, name := range order {
		resp.Topics = append(resp.Topics, *results[name])
	}
	return out, resp, nil
}
