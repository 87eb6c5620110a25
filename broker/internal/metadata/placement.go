package metadata

import (
	"cmp"
	"slices"
)

// placer chooses replicas for new partitions among the unfenced brokers,
// spreading replicas and leaders: each partition's leader is the broker
// that leads the fewest partitions, and each further replica the broker
// whose rack holds the fewest replicas of this partition yet, then the one
// with the fewest replicas overall (ties by node id). Without racks every
// broker is in the same rack "" and only the counts matter; with racks no
// two replicas of a partition share a rack while an unused rack is left.
// The counts start from the whole image, so that successive topics land on
// the least loaded brokers.
type placer struct {
	brokers  []Broker // unfenced, by id
	replicas map[NodeID]int
	leaders  map[NodeID]int
}

func (c *Controller) newPlacer() *placer {
	pl := &placer{replicas: map[NodeID]int{}, leaders: map[NodeID]int{}}
	for _, b := range c.img.Brokers() {
		if !b.Fenced {
			pl.brokers = append(pl.brokers, b)
		}
	}
	c.eachPartition(func(p *PartitionRecord) {
		for _, r := range p.Replicas {
			pl.replicas[r]++
		}
		if p.Leader != NoLeader {
			pl.leaders[p.Leader]++
		}
	})
	return pl
}

// place returns rf replicas, the leader first; rf must not exceed the
// number of unfenced brokers.
func (pl *placer) place(rf int) []NodeID {
	leader := slices.MinFunc(pl.brokers, func(a, b Broker) int {
		return cmp.Or(cmp.Compare(pl.leaders[a.ID], pl.leaders[b.ID]),
			cmp.Compare(pl.replicas[a.ID], pl.replicas[b.ID]), cmp.Compare(a.ID, b.ID))
	})
	chosen := []Broker{leader}
	racks := map[string]int{leader.Rack: 1}
	for len(chosen) < rf {
		var best *Broker
		for i := range pl.brokers {
			b := &pl.brokers[i]
			if slices.ContainsFunc(chosen, func(x Broker) bool { return x.ID == b.ID }) {
				continue
			}
			if best == nil || cmp.Or(cmp.Compare(racks[b.Rack], racks[best.Rack]),
				cmp.Compare(pl.replicas[b.ID], pl.replicas[best.ID]), cmp.Compare(b.ID, best.ID)) < 0 {
				best = b
			}
		}
		chosen = append(chosen, *best)
		racks[best.Rack]++
	}
	out := make([]NodeID, len(chosen))
	for i, b := range chosen {
		out[i] = b.ID
		pl.replicas[b.ID]++
	}
	pl.leaders[leader.ID]++
	return out
}

// added counts an explicitly assigned partition in the spread.
func (pl *placer) added(replicas []NodeID, leader NodeID) {
	for _, r := range replicas {
		pl.replicas[r]++
	}
	if leader != NoLeader {
		pl.leaders[leader]++
	}
}
