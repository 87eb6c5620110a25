package quorum

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// outcome is what a client saw of one proposal.
type outcome int

const (
	outcomeApplied outcome = iota // Propose returned an index
	outcomeRefused                // NotLeader or Dropped: never committed
	outcomeUnknown                // leadership lost, timeout, closed
)

// historyOp is one proposal of the chaos test's client.
type historyOp struct {
	data    string
	outcome outcome
	index   uint64 // for outcomeApplied
	err     error
}

// TestClusterChaosHistory runs a client proposing without pause while a
// bounded series of random faults (isolating a node, killing the leader or
// another node, lossy links) hits the cluster, records every proposal's
// outcome, and checks the history against what every node applied: an
// applied proposal is at its index on every node, a refused one nowhere,
// nothing twice, nothing never proposed, every node the same log. The
// first violation is named.
func TestClusterChaosHistory(t *testing.T) {
	c := newTestCluster(t, 3, func(o *Options) { o.SnapshotEntries, o.CatchUpEntries = 32, 8 })
	rng := rand.New(rand.NewPCG(c.seed, 7))
	c.waitLeader(10 * time.Second)

	var (
		history []historyOp
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			var lead *Node
			for _, n := range c.running() {
				if n.IsLeader() {
					lead = n
				}
			}
			if lead == nil {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			op := historyOp{data: fmt.Sprintf("p%d", k)}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			op.index, op.err = lead.Propose(ctx, []byte(op.data))
			cancel()
			switch {
			case op.err == nil:
				op.outcome = outcomeApplied
			case errors.Is(op.err, ErrNotLeader) || errors.Is(op.err, ErrProposalDropped):
				op.outcome = outcomeRefused
			default:
				op.outcome = outcomeUnknown
			}
			history = append(history, op)
		}
	})

	const rounds = 5
	for r := range rounds {
		var lead NodeID
		for id, n := range c.nodes {
			if n.IsLeader() {
				lead = id
			}
		}
		if lead == 0 {
			lead = 1
		}
		victim := NodeID(1 + rng.IntN(3))
		// Longer than an election timeout (0.5s to 1s), so that faults
		// on the leader bring elections.
		hold := time.Duration(600+rng.IntN(600)) * time.Millisecond
		var fault string
		switch rng.IntN(5) {
		case 0:
			fault = fmt.Sprintf("isolate node %d (leader %d)", victim, lead)
			c.net.Isolate(victim)
		case 1:
			fault = fmt.Sprintf("isolate the leader %d", lead)
			c.net.Isolate(lead)
		case 2:
			fault = fmt.Sprintf("kill the leader %d", lead)
			c.stop(lead)
		case 3:
			fault = fmt.Sprintf("kill node %d (leader %d)", victim, lead)
			c.stop(victim)
		case 4:
			fault = "lossy links"
			for _, a := range c.voters {
				for _, b := range c.voters {
					if a.ID != b.ID {
						c.net.Drop(a.ID, b.ID, 0.1)
					}
				}
			}
		}
		t.Logf("round %d: %s for %v", r, fault, hold)
		<-time.After(hold) // the fault's duration: part of the scenario
		c.net.HealAll()
		for _, v := range c.voters {
			if _, ok := c.nodes[v.ID]; !ok {
				c.start(v.ID, nil)
			}
		}
		c.waitLeader(10 * time.Second)
	}
	close(stop)
	wg.Wait()
	last := c.propose("final", 10*time.Second)
	c.waitApplied(last, 10*time.Second)

	// Every node applied the same log.
	var ref []appliedEntry
	for id := range c.nodes {
		ents, viol := c.sms[id].state()
		if len(viol) > 0 {
			t.Fatalf("node %d: state machine contract violated: %v", id, viol)
		}
		if ref == nil {
			ref = ents
		} else if len(ents) != len(ref) {
			t.Fatalf("node %d applied %d entries, another %d", id, len(ents), len(ref))
		} else {
			for i := range ents {
				if ents[i] != ref[i] {
					t.Fatalf("node %d applied %+v at position %d, another node %+v", id, ents[i], i, ref[i])
				}
			}
		}
	}
	// The history against the log.
	at := map[string]uint64{}
	for _, e := range ref {
		if prev, dup := at[e.Data]; dup {
			t.Fatalf("%q applied twice, at %d and %d", e.Data, prev, e.Index)
		}
		at[e.Data] = e.Index
	}
	proposed := map[string]bool{"final": true}
	counts := map[outcome]int{}
	for _, op := range history {
		proposed[op.data] = true
		counts[op.outcome]++
		idx, applied := at[op.data]
		switch op.outcome {
		case outcomeApplied:
			if !applied || idx != op.index {
				t.Fatalf("%q: Propose returned index %d, but it was applied at %d (applied=%t)", op.data, op.index, idx, applied)
			}
		case outcomeRefused:
			if applied {
				t.Fatalf("%q: Propose said %v, but it was applied at %d", op.data, op.err, idx)
			}
		}
	}
	for _, e := range ref {
		if !proposed[e.Data] {
			t.Fatalf("%q applied at %d was never proposed", e.Data, e.Index)
		}
	}
	t.Logf("%d proposals: %d applied, %d refused, %d unknown; %d entries applied",
		len(history), counts[outcomeApplied], counts[outcomeRefused], counts[outcomeUnknown], len(ref))
	if counts[outcomeApplied] == 0 {
		t.Fatalf("no proposal succeeded: the test checked nothing")
	}
}
