package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// TestClusterRestartedLeaderActsOnNoStaleImage: a leader is cut off from
// every other node (clients still reach it), replaced, and stopped while
// cut off, so that its own metadata log still says it leads. Restarted,
// still cut off, it replays that log; it must take no leadership from it:
// for 2 s after its image shows it leading (the code before took the role
// within a replication tick of the replay and acknowledged acks=1
// produces at the stale epoch, records the new leader never has), every
// acks=1 produce sent to it is refused with NOT_LEADER_OR_FOLLOWER. Healed,
// it learns its new registration and follows the new leader, and every
// replica ends with the same log.
func TestClusterRestartedLeaderActsOnNoStaleImage(t *testing.T) {
	// A long lag time: a stale leader's followers would not count as
	// lagging during the check, so nothing else would refuse its writes.
	c := startReplicatedCluster(t, 3, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := newClusterClient(t, c)
	const topic = "stale"
	createTopicEventually(t, ctx, kadm.NewClient(cl), topic, 1, nil, 15*time.Second)
	var l1, e1 int32
	eventually(t, 20*time.Second, "a leader with an ISR of 3", func() error {
		l, e, isr, err := partitionLeader(ctx, cl, 1, topic, 0)
		if err == nil && (l < 1 || len(isr) != 3) {
			err = fmt.Errorf("leader %d isr %v", l, isr)
		}
		l1, e1 = l, e
		return err
	})
	if code := rawProduce(t, c.brokers[l1-1].Addr(), topic, 0, "before", 5000); code != 0 {
		t.Fatalf("produce to leader %d: %v", l1, kerr.ErrorForCode(code))
	}

	// Cut off, replaced, stopped there: its log ends with it leading.
	c.net.Isolate(faultnet.NodeID(l1))
	other := l1%3 + 1
	var l2, e2 int32
	eventually(t, 30*time.Second, "a new leader", func() error {
		l, e, _, err := partitionLeader(ctx, cl, other, topic, 0)
		if err == nil && (l == l1 || l < 1 || e <= e1) {
			err = fmt.Errorf("leader %d epoch %d", l, e)
		}
		l2, e2 = l, e
		return err
	})
	c.nodes.Stop(l1)
	c.restartNode(l1)
	stale := c.brokers[l1-1]
	eventually(t, 20*time.Second, "the restarted node's image replayed", func() error {
		img := stale.cn.Image()
		td, ok := img.Topic(metadata.TopicName(topic))
		if !ok {
			return fmt.Errorf("image at %d has no topic %q", img.Applied(), topic)
		}
		p, _ := img.Partition(td.ID, 0)
		if p.Leader != metadata.NodeID(l1) || p.LeaderEpoch != metadata.LeaderEpoch(e1) {
			return fmt.Errorf("image at %d: leader %d epoch %d", img.Applied(), p.Leader, p.LeaderEpoch)
		}
		return nil
	})
	t.Logf("node %d restarted cut off, its image says it leads at epoch %d; node %d leads at epoch %d", l1, e1, l2, e2)
	deadline := time.Now().Add(2 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		rp, err := rawProduceAcks(ctx, stale.Addr(), topic, 0, fmt.Sprintf("stale-%d", n), 1, 1000)
		if err != nil {
			t.Fatalf("produce %d to the restarted node: %v", n, err)
		}
		if rp.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("produce %d to the restarted node, cut off with a stale image: %v at offset %d, want NOT_LEADER_OR_FOLLOWER",
				n, kerr.ErrorForCode(rp.ErrorCode), rp.BaseOffset)
		}
	}

	// Healed: it follows the new leader, and the logs agree.
	c.net.HealAll()
	if code := rawProduce(t, c.brokers[l2-1].Addr(), topic, 0, "after", 10000); code != 0 {
		t.Fatalf("produce to leader %d after the heal: %v", l2, kerr.ErrorForCode(code))
	}
	eventually(t, 30*time.Second, "every replica at the leader's end", func() error {
		end := partitionLog(c.brokers[l2-1], topic, 0).LogEndOffset()
		for i, b := range c.brokers {
			if l := partitionLog(b, topic, 0); l == nil || l.LogEndOffset() != end || l.HighWatermark() != end {
				return fmt.Errorf("node %d behind the leader's end %d", i+1, end)
			}
		}
		return nil
	})
	checkReplicasAgree(t, c, topic, 0)
}
