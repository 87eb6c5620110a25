package quorum

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestRejoinAfterLostStorage: a follower comes back with its raft storage
// gone. Started as before, it stops with a LostStorageError at the
// leader's first heartbeat (raft itself would panic). Started with Rejoin,
// the voters remove it and add it back; it catches up and is then a voter
// the others count on: with one of them down, the cluster still commits,
// and it votes in the election after the leader stops.
func TestRejoinAfterLostStorage(t *testing.T) {
	for _, tc := range []struct {
		name string
		tune func(*Options)
	}{
		{"entries", nil},
		// The leader's log is compacted, so the node catches up from a
		// snapshot.
		{"snapshot", func(o *Options) { o.SnapshotEntries, o.CatchUpEntries = 8, 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejoin := map[NodeID]bool{}
			c := newTestCluster(t, 3, func(o *Options) {
				if tc.tune != nil {
					tc.tune(o)
				}
				o.Rejoin = rejoin[o.ID]
			})
			var want []string
			for i := range 30 {
				want = append(want, fmt.Sprintf("before-%d", i))
				c.propose(want[len(want)-1], 10*time.Second)
			}
			lead := c.waitLeader(10 * time.Second)
			lost := lead%3 + 1
			c.waitApplied(c.nodes[lead].Status().Applied, 10*time.Second)

			c.stop(lost)
			c.fs[lost] = vfs.NewMem()
			c.start(lost, nil)
			var lse *LostStorageError
			poll(t, 10*time.Second, func() error {
				if err := c.nodes[lost].Status().Err; !errors.As(err, &lse) {
					return fmt.Errorf("node %d: Err = %v, want a LostStorageError", lost, err)
				}
				return nil
			})
			t.Logf("without Rejoin: %v", lse)
			c.stop(lost)

			c.fs[lost] = vfs.NewMem()
			rejoin[lost] = true
			c.start(lost, nil)
			if !c.nodes[lost].Status().Rejoining {
				t.Fatalf("node %d started with Rejoin on an empty directory does not say it is rejoining", lost)
			}
			poll(t, 20*time.Second, func() error {
				if s := c.nodes[lost].Status(); s.Rejoining || s.Err != nil {
					return fmt.Errorf("node %d still rejoining: %+v", lost, s)
				}
				return nil
			})
			// Restarted with Rejoin again, a node that rejoined is an
			// ordinary voter: the mark is gone.
			c.stop(lost)
			c.start(lost, nil)
			if c.nodes[lost].Status().Rejoining {
				t.Fatalf("node %d rejoining again after a restart", lost)
			}
			want = append(want, "after-rejoin")
			c.waitApplied(c.propose(want[len(want)-1], 10*time.Second), 10*time.Second)
			c.checkSame(want)

			// The third node down: the leader commits only with the
			// rejoined node's acknowledgement.
			lead = c.waitLeader(10 * time.Second)
			var other NodeID
			for id := range c.nodes {
				if id != lead && id != lost {
					other = id
				}
			}
			c.stop(other)
			want = append(want, "with-rejoined-only")
			c.waitApplied(c.propose(want[len(want)-1], 10*time.Second), 10*time.Second)
			c.start(other, nil)
			// The leader down: an election needs the rejoined node's vote
			// (or its own campaign).
			if lead != lost {
				c.stop(lead)
			}
			want = append(want, "after-election")
			c.waitApplied(c.propose(want[len(want)-1], 20*time.Second), 10*time.Second)
			if lead != lost {
				c.start(lead, nil)
			}
			c.waitApplied(c.nodes[c.waitLeader(10*time.Second)].Status().Applied, 10*time.Second)
			c.checkSame(want)
		})
	}
}
