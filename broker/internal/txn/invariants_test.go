package txn

import (
	"fmt"
	"slices"
)

// checkInvariants checks what must hold of a coordinator between calls.
func checkInvariants(c *Coordinator) error {
	for id, t := range c.txns {
		if t.ID != id {
			return fmt.Errorf("txn %q filed under %q", t.ID, id)
		}
		if p := Partition(id, c.opts.StatePartitions); p != t.partition {
			return fmt.Errorf("txn %q in partition %d, belongs in %d", id, t.partition, p)
		}
		_, owned := c.owned[t.partition]
		if owned == c.loading[t.partition] {
			return fmt.Errorf("txn %q: partition %d owned=%v loading=%v", id, t.partition, owned, c.loading[t.partition])
		}
		if !slices.IsSortedFunc(t.Partitions, cmpTP) || len(slices.Compact(slices.Clone(t.Partitions))) != len(t.Partitions) {
			return fmt.Errorf("txn %q: partitions %v not sorted and distinct", id, t.Partitions)
		}
		if (t.pending != nil) != (owned && t.State.preparing()) {
			return fmt.Errorf("txn %q in %v: pending=%v", id, t.State, t.pending)
		}
		for tp := range t.pending {
			if !slices.Contains(t.Partitions, tp) {
				return fmt.Errorf("txn %q: pending %v not in its partitions", id, tp)
			}
		}
		if t.State.idle() && (len(t.Partitions) > 0 || !t.Start.IsZero()) {
			return fmt.Errorf("txn %q in %v holds partitions %v or a start %v", id, t.State, t.Partitions, t.Start)
		}
		if t.State == StateOngoing && (len(t.Partitions) == 0 || t.Start.IsZero()) {
			return fmt.Errorf("txn %q Ongoing without partitions or start", id)
		}
		if t.NextProducerID != NoProducerID && !t.State.preparing() {
			return fmt.Errorf("txn %q in %v with a next producer id", id, t.State)
		}
		if t.Epoch < 0 || t.ProducerID < 0 {
			return fmt.Errorf("txn %q: producer %d epoch %d", id, t.ProducerID, t.Epoch)
		}
		if owned {
			if d := c.deadline(t); !d.IsZero() && (t.scheduled.IsZero() || t.scheduled.After(d)) {
				return fmt.Errorf("txn %q: deadline %v but scheduled %v", id, d, t.scheduled)
			}
		}
	}
	return nil
}
