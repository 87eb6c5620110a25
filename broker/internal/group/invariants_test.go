package group

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkInvariants returns the first broken invariant of c, or nil.
func checkInvariants(c *Coordinator) error {
	if len(c.groups) > c.opts.MaxGroups {
		return fmt.Errorf("%d groups > max %d", len(c.groups), c.opts.MaxGroups)
	}
	for id, g := range c.groups {
		if g.id != id || c.validGroupID(string(id)) != 0 {
			return fmt.Errorf("group %q: bad id", id)
		}
		if !c.owns(id) {
			return fmt.Errorf("group %q held, but its partition %d is not owned", id, Partition(id, c.opts.OffsetsPartitions))
		}
		if len(g.members)+len(g.pending) > c.opts.MaxMembers {
			return fmt.Errorf("group %q: %d members + %d pending > max", id, len(g.members), len(g.pending))
		}
		if (g.state == StateCompletingRebalance || g.state == StateStable) && g.members[g.leader] == nil {
			return fmt.Errorf("group %q: %v with leader %q not a member", id, g.state, g.leader)
		}
		if g.state == StateEmpty && len(g.members) > 0 {
			return fmt.Errorf("group %q: Empty with %d members", id, len(g.members))
		}
		for inst, mid := range g.static {
			if m := g.members[mid]; m == nil || m.instanceID != inst {
				return fmt.Errorf("group %q: instance %q maps to %q, not its member", id, inst, mid)
			}
		}
		for mid, m := range g.members {
			if m.id != mid {
				return fmt.Errorf("group %q: member %q keyed as %q", id, m.id, mid)
			}
			if m.join != nil && g.state != StatePreparingRebalance {
				return fmt.Errorf("group %q: member %q awaits a join in %v", id, mid, g.state)
			}
			if m.sync != nil && g.state != StateCompletingRebalance {
				return fmt.Errorf("group %q: member %q awaits a sync in %v", id, mid, g.state)
			}
		}
		if d := c.nextDeadline(g); !d.IsZero() && (g.scheduled.IsZero() || g.scheduled.After(d)) {
			return fmt.Errorf("group %q: deadline %v but timer at %v", id, d, g.scheduled)
		}
	}
	return nil
}

// FuzzLoad feeds arbitrary records to Load: it must never panic, must
// report every failure as ErrBadRecord, and must leave a coordinator whose
// invariants hold and whose state re-encodes to records that load again.
func FuzzLoad(f *testing.F) {
	c, _ := New(Options{NewMemberSuffix: func() string { return "x" }})
	for _, o := range []*offset{{offset: 5, leaderEpoch: -1, metadata: "m"}, nil} {
		r := c.offsetRecord("g", topicPartition{"t", 3}, o)
		f.Add(r.Key, r.Value)
	}
	g := newGroup("g", time.UnixMilli(1))
	g.protocolType, g.protocol, g.leader, g.generation = "consumer", "range", "a", 3
	g.members["a"] = &member{id: "a", instanceID: "ia", sessionTimeout: time.Second, protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("m")}}, assignment: []byte("x")}
	r := c.groupRecord(g)
	f.Add(r.Key, r.Value)
	f.Add(r.Key, []byte(nil))
	f.Add([]byte{0}, []byte{1, 2})

	f.Fuzz(func(t *testing.T, key, value []byte) {
		// One partition: every group belongs in the partition 0 read from.
		c, err := New(Options{OffsetsPartitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Load(Record{Key: key, Value: value}); err != nil && !errors.Is(err, ErrBadRecord) {
			t.Fatalf("Load error %v does not wrap ErrBadRecord", err)
		}
		now := time.Unix(1000, 0)
		c.FinishLoad(now)
		if err := checkInvariants(c); err != nil {
			t.Fatal(err)
		}
		// Everything loaded re-encodes into records that load cleanly.
		c2, _ := New(Options{OffsetsPartitions: 1})
		for _, g := range c.groups {
			if g.persisted {
				if err := c2.Load(c.groupRecord(g)); err != nil {
					t.Fatalf("re-encoded group does not load: %v", err)
				}
			}
			for tp, o := range g.offsets {
				if err := c2.Load(c.offsetRecord(g.id, tp, &o)); err != nil {
					t.Fatalf("re-encoded offset does not load: %v", err)
				}
			}
		}
	})
}
