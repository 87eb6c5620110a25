package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

			// Twice: a node that lost its storage again rejoins again (a
			// new incarnation, not taken for the first one's late request).
			rejoin[lost] = true
			for round := range 2 {
				c.stop(lost)
				c.fs[lost] = vfs.NewMem()
				c.start(lost, nil)
				if !c.nodes[lost].Status().Rejoining {
					t.Fatalf("round %d: node %d started with Rejoin on an empty directory does not say it is rejoining", round, lost)
				}
				poll(t, 20*time.Second, func() error {
					if s := c.nodes[lost].Status(); s.Rejoining || s.Err != nil {
						return fmt.Errorf("round %d: node %d still rejoining: %+v", round, lost, s)
					}
					return nil
				})
				want = append(want, fmt.Sprintf("rejoined-%d", round))
				c.waitApplied(c.propose(want[len(want)-1], 10*time.Second), 10*time.Second)
			}
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

// TestEmptiedVoterDoesNotElectAStaleCandidate: an entry is committed by
// the leader and one follower while the other follower is cut off; the
// leader stops, and the follower that has the entry comes back with an
// emptied directory and without Rejoin. It must not vote the cut-off
// follower (which lacks the entry) into leadership; once the old leader
// returns, every node has the entry.
func TestEmptiedVoterDoesNotElectAStaleCandidate(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	want := []string{"x"}
	c.waitApplied(c.propose("x", 10*time.Second), 10*time.Second)
	lead := c.waitLeader(10 * time.Second)
	stale, emptied := lead%3+1, (lead+1)%3+1
	c.net.Isolate(stale)
	want = append(want, "e")
	idx := c.propose("e", 10*time.Second)
	poll(t, 10*time.Second, func() error {
		if s := c.nodes[emptied].Status(); s.Applied < idx {
			return fmt.Errorf("node %d applied %d < %d", emptied, s.Applied, idx)
		}
		return nil
	})
	c.stop(lead)
	c.stop(emptied)
	c.fs[emptied] = vfs.NewMem()
	c.net.HealAll()
	c.start(emptied, nil)
	// Three election timeouts (at most 1 s each here) for an election
	// that must not happen: the only candidate lacks "e".
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, id := range []NodeID{stale, emptied} {
			if c.nodes[id].IsLeader() {
				t.Fatalf("node %d became leader with node %d's emptied log voting, without entry \"e\"", id, emptied)
			}
		}
	}
	c.start(lead, nil)
	want = append(want, "after")
	c.waitApplied(c.propose("after", 20*time.Second), 20*time.Second)
	c.checkSame(want)
}

// TestRejoiningNodeVotesBeforeCatchingUp: the leader takes a rejoining
// node back but none of its messages reach the node, and then stops. The
// remaining voter holds the addition; the rejoining node has none of it
// and must still vote, or no leader can be elected until the old leader
// returns.
func TestRejoiningNodeVotesBeforeCatchingUp(t *testing.T) {
	rejoin := map[NodeID]bool{}
	c := newTestCluster(t, 3, func(o *Options) { o.Rejoin = rejoin[o.ID] })
	want := []string{"before"}
	c.waitApplied(c.propose("before", 10*time.Second), 10*time.Second)
	lead := c.waitLeader(10 * time.Second)
	lost, other := lead%3+1, (lead+1)%3+1

	c.stop(lost)
	c.fs[lost] = vfs.NewMem()
	rejoin[lost] = true
	c.net.Cut(lead, lost) // the node's requests reach the leader; nothing comes back
	c.start(lost, nil)
	// The addition is applied on the other voter: a voter set change was
	// applied (the removal first) and the node is in the set again.
	poll(t, 20*time.Second, func() error {
		if s := c.nodes[other].Status(); s.VoterSetIndex == 0 || !slices.Contains(s.VoterSet, lost) {
			return fmt.Errorf("node %d: voter set %v after change %d, want node %d added back", other, s.VoterSet, s.VoterSetIndex, lost)
		}
		return nil
	})
	if s := c.nodes[lost].Status(); !s.Rejoining || s.Applied != 0 {
		t.Fatalf("node %d caught up though the leader's messages were cut: %+v", lost, s)
	}
	c.stop(lead)
	c.net.HealAll()
	want = append(want, "elected-without-the-old-leader")
	c.waitApplied(c.propose(want[len(want)-1], 20*time.Second), 20*time.Second)
	poll(t, 10*time.Second, func() error {
		if s := c.nodes[lost].Status(); s.Rejoining {
			return fmt.Errorf("node %d still rejoining: %+v", lost, s)
		}
		return nil
	})
	c.start(lead, nil)
	c.waitApplied(c.nodes[c.waitLeader(10*time.Second)].Status().Applied, 10*time.Second)
	c.checkSame(want)
}

// TestRejoiningNodeIgnoresStaleLeader: a leader elected while one voter
// was down (so it knows nothing that voter holds) is cut off, and the
// other two elect a later leader, which commits an entry with both of
// them. Then the voter that was down loses its storage and comes back
// reachable only from the old leader, which still believes it leads (its
// election timeout, and so its quorum check, is long here). Had the
// rejoining node taken the old leader's entries and heartbeats, its
// acknowledgements would commit entries of the old term (the proposal
// below, or the old leader's removal of the node) where the later leader
// committed its own. The old leader must commit nothing, and once healed
// every node holds exactly the later leader's entries.
func TestRejoiningNodeIgnoresStaleLeader(t *testing.T) {
	const stale, other, lost NodeID = 1, 2, 3
	rejoin := map[NodeID]bool{}
	c := newTestCluster(t, 3, func(o *Options) {
		o.Rejoin = rejoin[o.ID]
		if o.ID == stale {
			o.ElectionTicks = 1000 // a quorum check every 10 s
		}
	})
	want := []string{"before"}
	c.waitApplied(c.propose("before", 10*time.Second), 10*time.Second)
	// Node 1 becomes leader while node 3 is down: leadership moves to
	// node 2 and then to node 1 (by transfers: node 1's long election
	// timeout keeps it from granting votes to node 2's campaign soon).
	transferTo := func(to NodeID) {
		t.Helper()
		poll(t, 20*time.Second, func() error {
			lead := c.waitLeader(10 * time.Second)
			if lead == to {
				return nil
			}
			if err := c.nodes[lead].TransferLeadership(context.Background(), to); err != nil {
				return err
			}
			return fmt.Errorf("leader %d, transferring to node %d", lead, to)
		})
	}
	transferTo(stale)
	c.stop(lost)
	transferTo(other)
	transferTo(stale)

	// Node 1 cut off; nodes 2 and 3 elect a leader of a later term, which
	// commits "after-cut" with both of them.
	c.net.Isolate(stale)
	c.start(lost, nil)
	var lead NodeID
	poll(t, 20*time.Second, func() error {
		for _, id := range []NodeID{other, lost} {
			if c.nodes[id].IsLeader() {
				lead = id
				return nil
			}
		}
		return fmt.Errorf("no leader among nodes %d and %d", other, lost)
	})
	want = append(want, "after-cut")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	idx, err := c.nodes[lead].Propose(ctx, []byte("after-cut"))
	cancel()
	if err != nil {
		t.Fatalf("propose on node %d: %v", lead, err)
	}
	poll(t, 10*time.Second, func() error {
		for _, id := range []NodeID{other, lost} {
			if s := c.nodes[id].Status(); s.Applied < idx {
				return fmt.Errorf("node %d applied %d < %d", id, s.Applied, idx)
			}
		}
		return nil
	})
	if !c.nodes[stale].IsLeader() {
		t.Fatalf("node %d stepped down before the test could use it as a stale leader", stale)
	}
	staleApplied := c.nodes[stale].Status().Applied

	// Node 3 loses its storage and comes back able to talk to node 1 only.
	c.stop(lost)
	c.fs[lost] = vfs.NewMem()
	rejoin[lost] = true
	c.net.HealAll()
	for _, p := range [][2]NodeID{{stale, other}, {other, stale}, {lost, other}, {other, lost}} {
		c.net.Cut(p[0], p[1])
	}
	c.start(lost, nil)
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	sidx, err := c.nodes[stale].Propose(ctx, []byte("stale"))
	cancel()
	if err == nil {
		t.Fatalf("the stale leader %d committed a proposal at index %d with the emptied node %d's acknowledgement", stale, sidx, lost)
	}
	t.Logf("stale leader's proposal: %v", err)
	if s := c.nodes[stale].Status(); s.Applied != staleApplied {
		t.Fatalf("the stale leader %d applied up to %d (from %d) with the emptied node %d's acknowledgements", stale, s.Applied, staleApplied, lost)
	}

	c.net.HealAll()
	poll(t, 20*time.Second, func() error {
		if s := c.nodes[lost].Status(); s.Rejoining {
			return fmt.Errorf("node %d still rejoining: %+v", lost, s)
		}
		return nil
	})
	want = append(want, "healed")
	c.waitApplied(c.propose("healed", 20*time.Second), 20*time.Second)
	c.checkSame(want)
}
