package quorum

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Raft here has no clock of its own: a node's elections and heartbeats
// count ticks (Options.NewTicker), and the default tick source is a
// time.Ticker, which runs on the monotonic clock, so a step of the wall
// clock (settimeofday, an NTP step) reaches no tick at all. What a test
// can do is what a clock jump would look like to a tick source that
// catches up: a burst of ticks on one node. (Stepping the machine's wall
// clock needs root and would disturb everything else running; the
// process test TestFaultVoterPausedNoLeaderChange freezes a node for
// 10 s, which is the monotonic clock jumping for it.)

// campaignCounter counts a node's "starting a new election" log lines.
type campaignCounter struct{ n atomic.Int64 }

func (c *campaignCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *campaignCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "is starting a new election") {
		c.n.Add(1)
	}
	return nil
}
func (c *campaignCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *campaignCounter) WithGroup(string) slog.Handler      { return c }

// TestTickBurstNoLeaderChange: a follower whose tick source delivers
// twenty election timeouts' worth of ticks at once, as if its clock had
// jumped, campaigns, but cannot win a pre-vote while the others hear the
// leader (PreVote and CheckQuorum): no node's leader or term changes.
func TestTickBurstNoLeaderChange(t *testing.T) {
	const victim NodeID = 3
	tk := &manualTicker{c: make(chan time.Time)}
	campaigns := &campaignCounter{}
	var electionTicks int
	c := newTestCluster(t, 3, func(o *Options) {
		electionTicks = o.ElectionTicks
		if o.ID == victim {
			// NB: without ticks before the burst node 3 never campaigns,
			// so the leader is one of the others.
			o.NewTicker = func(time.Duration) Ticker { return tk }
			o.Logger = slog.New(campaigns)
		}
	})
	lead := c.waitLeader(10 * time.Second)
	term := c.nodes[lead].Status().Term
	if lead == victim {
		t.Fatalf("node %d leads without a tick", victim)
	}
	burst := 20 * electionTicks
	for range burst {
		tk.c <- time.Time{}
	}
	t.Logf("leader %d term %d; node %d got %d ticks at once and campaigned %d times", lead, term, victim, burst, campaigns.n.Load())
	if campaigns.n.Load() == 0 {
		t.Fatalf("node %d did not campaign after %d ticks: the burst did not reach its raft", victim, burst)
	}
	// The burst is over; watch for two election timeouts of the others.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		for id, n := range c.nodes {
			if st := n.Status(); st.Term != term || (st.Leader != lead && !(id == victim && st.Leader == 0)) {
				t.Fatalf("node %d: leader %d term %d, was leader %d term %d", id, st.Leader, st.Term, lead, term)
			}
		}
		time.Sleep(10 * time.Millisecond) // sampling interval
	}
	c.waitLeader(5 * time.Second) // node 3 follows the leader again
	if st := c.nodes[victim].Status(); st.Leader != lead || st.Term != term {
		t.Fatalf("node %d after the burst: %v", victim, fmt.Sprintf("leader %d term %d", st.Leader, st.Term))
	}
}

// TestDefaultTickerDropsMissedTicks: the default tick source delivers one
// tick after a stall of fifty tick intervals, not fifty: a node frozen (or
// whose monotonic clock jumped) gets at most one tick when it runs again,
// far fewer than an election timeout's.
func TestDefaultTickerDropsMissedTicks(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	tk := o.NewTicker(2 * time.Millisecond)
	defer tk.Stop()
	time.Sleep(100 * time.Millisecond) // the stall under test, not a synchronization
	pending := 0
	for {
		select {
		case <-tk.C():
			pending++
			continue
		default:
		}
		break
	}
	if pending > 1 {
		t.Fatalf("%d ticks pending after a stall of 50 intervals, want at most 1", pending)
	}
}
