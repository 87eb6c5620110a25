package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// TestClusterFollowerIsolatedNoLeaderChange: a voter that is not the raft
// leader is cut off by the fault layer (every byte to and from it
// blackholed) for 1 s, five election timeouts, but less than its broker
// session. The other two keep the leader and term and commit a topic
// creation without it, which it does not see while isolated; once healed
// it catches up, and no node ever names another leader or term (PreVote:
// the isolated node's campaigns do not raise its term).
func TestClusterFollowerIsolatedNoLeaderChange(t *testing.T) {
	c := startTestCluster(t, 3)
	rng := rand.New(rand.NewPCG(c.nodes.Seed(), 0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newClient(t, c.brokers[0])
	eventually(t, 15*time.Second, "three brokers registered", func() error {
		m, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil || len(m.(*kmsg.MetadataResponse).Brokers) != 3 {
			return fmt.Errorf("%v %v", m, err)
		}
		return nil
	})
	var leader, term uint64
	eventually(t, 5*time.Second, "one leader and term on every node", func() error {
		leader, term = 0, 0
		for _, b := range c.brokers {
			st := b.cn.Status()
			if st.Leader == 0 || (leader != 0 && (st.Leader != leader || st.Term != term)) {
				return fmt.Errorf("node %d: leader %d term %d; another: leader %d term %d", b.opts.NodeID, st.Leader, st.Term, leader, term)
			}
			leader, term = st.Leader, st.Term
		}
		return nil
	})
	var followers []*Broker
	for _, b := range c.brokers {
		if uint64(b.opts.NodeID) != leader {
			followers = append(followers, b)
		}
	}
	isolated := followers[rng.IntN(2)]
	via := followers[0]
	if via == isolated {
		via = followers[1]
	}
	unchanged := func() error {
		for _, b := range c.brokers {
			if st := b.cn.Status(); st.Leader != leader || st.Term != term {
				if b == isolated && st.Leader == 0 && st.Term == term {
					continue // an isolated follower may forget the leader, not bump the term
				}
				return fmt.Errorf("node %d: leader %d term %d, was leader %d term %d", b.opts.NodeID, st.Leader, st.Term, leader, term)
			}
		}
		return nil
	}
	t.Logf("leader %d term %d; isolating node %d", leader, term, isolated.opts.NodeID)
	isolatedAt := time.Now()
	c.net.Isolate(faultnet.NodeID(isolated.opts.NodeID))
	if r, err := kadm.NewClient(newClient(t, via)).CreateTopic(ctx, 1, 3, nil, "during"); err != nil || r.Err != nil {
		t.Fatalf("create through node %d while node %d is isolated: %v %v", via.opts.NodeID, isolated.opts.NodeID, err, r.Err)
	}
	for time.Since(isolatedAt) < time.Second {
		if err := unchanged(); err != nil {
			t.Fatalf("while isolated: %v", err)
		}
		if _, ok := isolated.cn.Image().Topic("during"); ok {
			t.Fatalf("the isolated node %d has the topic created without it", isolated.opts.NodeID)
		}
		time.Sleep(20 * time.Millisecond) // sampling interval of the 1 s isolation
	}
	c.net.HealAll()
	eventually(t, 5*time.Second, "the healed node catches up", func() error {
		if err := unchanged(); err != nil {
			t.Fatal(err)
		}
		if _, ok := isolated.cn.Image().Topic("during"); !ok {
			return fmt.Errorf("node %d lacks the topic", isolated.opts.NodeID)
		}
		if st := isolated.cn.Status(); st.Leader != leader {
			return fmt.Errorf("node %d knows leader %d", isolated.opts.NodeID, st.Leader)
		}
		return nil
	})
}
