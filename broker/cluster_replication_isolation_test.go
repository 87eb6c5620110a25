package broker

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// TestClusterReplicationLeaderCutFromFollowers: three voters and three
// broker-only nodes; a partition's replicas are the broker-only nodes 4
// (leader), 5 and 6. The leader is cut from its followers (not from the
// controller, nor from clients) for twice replica.lag.time.max.ms:
// acks=all produces to it fail (a timeout, then NOT_ENOUGH_REPLICAS once
// the ISR has shrunk to the leader), never succeed; after the heal the
// followers catch up, the ISR grows back to three and acks=all works, and
// every replica holds the same log.
func TestClusterReplicationLeaderCutFromFollowers(t *testing.T) {
	const lag = time.Second
	dirs := make([]string, 6)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	c := startTestClusterWith(t, []string{"", "", "", "broker", "broker", "broker"}, func(i int, o *Options) {
		o.ReplicaLagTime, o.DataDir = lag, dirs[i]
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// NB: a partition created while a broker is still fenced starts
	// without it, led by another: the produces below go to node 4.
	createAssigned(t, ctx, cl, "cut", []int32{4, 5, 6}, nil)
	waitPlacement(t, ctx, cl, 1, "cut", 4, []int32{4, 5, 6})
	leader := c.brokers[3].Addr()
	isrOf := func() []int32 {
		_, _, isr, err := partitionLeader(ctx, cl, 1, "cut", 0)
		if err != nil {
			return nil
		}
		return slices.Sorted(slices.Values(isr))
	}
	eventually(t, 20*time.Second, "acks=all with the full ISR", func() error {
		if code := rawProduce(t, leader, "cut", 0, "before", 2000); code != 0 {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
	committed := partitionLog(c.brokers[3], "cut", 0).HighWatermark()

	for _, f := range []faultnet.NodeID{5, 6} {
		c.net.Cut(4, f)
		c.net.Cut(f, 4)
	}
	cutAt := time.Now()
	var codes []int16
	for time.Since(cutAt) < 2*lag+time.Second {
		code := rawProduce(t, leader, "cut", 0, "during", 700)
		if code == 0 {
			t.Fatalf("acks=all acknowledged by a leader cut off from its followers (after %v)", time.Since(cutAt))
		}
		if !slices.Contains(codes, code) {
			codes = append(codes, code)
			t.Logf("acks=all %v after the cut: %v", time.Since(cutAt).Round(time.Millisecond), kerr.ErrorForCode(code))
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if !slices.Contains(codes, kerr.NotEnoughReplicas.Code) {
		t.Fatalf("no NOT_ENOUGH_REPLICAS within %v of the cut (ISR %v): %v", 2*lag+time.Second, isrOf(), codes)
	}
	// NB: the records written before the ISR shrank (answered with a
	// timeout or NOT_ENOUGH_REPLICAS_AFTER_APPEND, never acknowledged)
	// commit once the ISR is the leader alone, as in Kafka; those refused
	// with NOT_ENOUGH_REPLICAS were never written.
	t.Logf("high watermark %d before the cut, %d after it", committed, partitionLog(c.brokers[3], "cut", 0).HighWatermark())

	c.net.HealAll()
	eventually(t, 20*time.Second, "the ISR grown back to 4, 5, 6", func() error {
		if isr := isrOf(); !slices.Equal(isr, []int32{4, 5, 6}) {
			return fmt.Errorf("ISR %v", isr)
		}
		return nil
	})
	eventually(t, 10*time.Second, "acks=all after the heal", func() error {
		if code := rawProduce(t, leader, "cut", 0, "after", 2000); code != 0 {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
	end := partitionLog(c.brokers[3], "cut", 0).LogEndOffset()
	eventually(t, 10*time.Second, "replicas 4, 5, 6 hold the same log", func() error {
		for _, i := range []int{3, 4, 5} {
			if l := partitionLog(c.brokers[i], "cut", 0); l.LogEndOffset() != end || l.HighWatermark() != end {
				return fmt.Errorf("node %d: end %d hw %d, want %d", i+1, l.LogEndOffset(), l.HighWatermark(), end)
			}
		}
		return nil
	})
	checkReplicasAgree(t, c, "cut", 0)
}

// TestClusterReplicationNotEnoughAfterAppend: min.insync.replicas 2 on
// replicas 4 (leader), 5 and 6. Right after the leader is cut from both
// followers an acks=all produce is let in (the ISR is still three) and
// appended; the ISR then shrinks to the leader alone, whose high watermark
// covers the record at once. The produce must be answered
// NOT_ENOUGH_REPLICAS_AFTER_APPEND (as Kafka), never acknowledged and not
// a timeout: its request timeout is far longer than the shrink takes.
//
// The race that matters is driven, not hoped for: the leader's
// AfterCommitWait hook holds the produce after its wait ended (the high
// watermark covered it, or it was failed at the shrink) and before it is
// answered; meanwhile the next produce is refused before it is written
// (NOT_ENOUGH_REPLICAS), the network heals and the ISR grows back to three.
// An answer decided by the ISR size at that point would acknowledge a
// record that was committed by the leader alone.
func TestClusterReplicationNotEnoughAfterAppend(t *testing.T) {
	const lag = time.Second
	var hold atomic.Pointer[func()] // the leader's AfterCommitWait, once armed
	c := startTestClusterWith(t, []string{"", "", "", "broker", "broker", "broker"}, func(i int, o *Options) {
		o.ReplicaLagTime = lag
		if i == 3 {
			o.cluster.afterCommitWait = func() {
				if f := hold.Swap(nil); f != nil {
					(*f)()
				}
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createAssigned(t, ctx, cl, "near", []int32{4, 5, 6}, map[string]string{"min.insync.replicas": "2"})
	waitPlacement(t, ctx, cl, 1, "near", 4, []int32{4, 5, 6})
	leader := c.brokers[3].Addr()
	eventually(t, 20*time.Second, "acks=all with the full ISR", func() error {
		if code := rawProduce(t, leader, "near", 0, "before", 2000); code != 0 {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
	log := partitionLog(c.brokers[3], "near", 0)
	before := log.LogEndOffset()

	for _, f := range []faultnet.NodeID{5, 6} {
		c.net.Cut(4, f)
		c.net.Cut(f, 4)
	}
	const timeout = 30 * lag
	held := false
	arm := func() {
		held = true
		if code := rawProduce(t, leader, "near", 0, "refused", 2000); code != kerr.NotEnoughReplicas.Code {
			t.Errorf("acks=all with the ISR at the leader alone: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
		}
		c.net.HealAll()
		// NB: this runs on the broker's request goroutine: no t.Fatal.
		for deadline := time.Now().Add(20 * time.Second); ; {
			_, _, isr := c.brokers[3].repl.State("near", 0)
			if len(isr) == 3 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("the ISR did not grow back to 4, 5, 6 within 20s while the produce was held: %v", isr)
				return
			}
			time.Sleep(20 * time.Millisecond) // polling interval with a deadline
		}
	}
	hold.Store(&arm)
	start := time.Now()
	code := rawProduce(t, leader, "near", 0, "during", int32(timeout/time.Millisecond))
	took := time.Since(start)
	if !held {
		t.Fatal("the produce was answered without passing the leader's AfterCommitWait hook")
	}
	if code != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("acks=all whose ISR shrank below min.insync.replicas before it was covered: %v after %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", kerr.ErrorForCode(code), took)
	}
	if took >= timeout {
		t.Fatalf("answered after %v, the request's whole timeout", took)
	}
	if after := log.LogEndOffset(); after != before+1 {
		t.Fatalf("leader end %d -> %d: the produce was not appended once", before, after)
	}
}
