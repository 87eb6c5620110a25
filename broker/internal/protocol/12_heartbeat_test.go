package protocol

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A static member (group.instance.id) that restarts within its session
// timeout gets its partitions back with no rebalance: the other member's
// generation does not move. Then a static member that stops heartbeating
// loses its partitions after its session timeout.
func TestGroupStaticMemberRestart(t *testing.T) {
	b := startGroupBroker(t, testGroupOptions())
	const topic, parts = "orders", 4
	b.createTopic(topic, parts)
	c := newConsumption()
	long := kgo.SessionTimeout(10 * time.Second) // the restart must fit in it
	s1 := startMember(t, b, "s1", "static", topic, c, kgo.InstanceID("i1"), long)
	s2 := startMember(t, b, "s2", "static", topic, c, kgo.InstanceID("i2"), long)
	waitFor(t, "two static members to share the partitions", 20*time.Second, func() bool { return partitionsSplit(parts, s1, s2) })
	// A third member comes and goes, so that s2's last join carried the
	// partitions it owns: its restart then joins with different metadata
	// (owning nothing), as a restarted sticky client does.
	s3 := startMember(t, b, "s3", "static", topic, c)
	waitFor(t, "three members", 20*time.Second, func() bool { return partitionsSplit(parts, s1, s2, s3) })
	s3.leave(t)
	waitFor(t, "two members again", 20*time.Second, func() bool { return partitionsSplit(parts, s1, s2) })
	_, gen := s1.cl.GroupMetadata()
	if _, gen2 := s2.cl.GroupMetadata(); gen2 != gen {
		waitFor(t, "both members in one generation", 20*time.Second, func() bool {
			_, g1 := s1.cl.GroupMetadata()
			_, g2 := s2.cl.GroupMetadata()
			gen = g1
			return g1 == g2
		})
	}
	owned := s2.owned()

	// s2 restarts: a static member closing does not leave the group.
	close(s2.stop)
	<-s2.done
	s2.cl.Close()
	s2b := startMember(t, b, "s2b", "static", topic, c, kgo.InstanceID("i2"), long)
	waitFor(t, "the restarted member to get its partitions back", 20*time.Second, func() bool { return len(s2b.owned()) > 0 })
	if diff := cmp.Diff(owned, s2b.owned()); diff != "" {
		t.Errorf("partitions after the restart (-before +after):\n%s", diff)
	}
	if _, gen2 := s1.cl.GroupMetadata(); gen2 != gen {
		t.Errorf("generation moved from %d to %d: the restart caused a rebalance", gen, gen2)
	}
	if _, gen2 := s2b.cl.GroupMetadata(); gen2 != gen {
		t.Errorf("the restarted member is in generation %d, want %d", gen2, gen)
	}
	s1.leave(t)
	s2b.leave(t)
}
