package proccluster_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/internal/proccluster"
)

func TestMain(m *testing.M) { proccluster.Main(m) }

// The fault tests take a minute each (a broker session timeout is 9 s, a
// pause 10 s), so `make test` skips them and `make test-faults` runs them.
func faultTest(t *testing.T) *rand.Rand {
	t.Helper()
	if os.Getenv("WEIR_FAULTS") != "1" {
		t.Skip("process fault test: run with `make test-faults` (WEIR_FAULTS=1)")
	}
	seed := rand.Uint64()
	if s := os.Getenv("WEIR_FAULT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("WEIR_FAULT_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (WEIR_FAULT_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// eventually polls f until it returns nil, failing the test after d.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	t.Fatalf("%s: not within %v: %v", what, d, err)
}

// waitBrokers waits until every running node's metadata lists want
// brokers and a controller.
func waitBrokers(t *testing.T, ctx context.Context, c *proccluster.Cluster, want int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%d brokers and a controller on every node", want), func() error {
		for _, n := range c.Nodes() {
			if !n.Running() {
				continue
			}
			m, err := n.Metadata(ctx)
			if err != nil {
				return err
			}
			if len(m.Brokers) != want || m.ControllerID < 1 {
				return fmt.Errorf("node %d: %d brokers, controller %d", n.ID, len(m.Brokers), m.ControllerID)
			}
		}
		return nil
	})
}

// raftLeader returns the leader every running node agrees on.
func raftLeader(t *testing.T, ctx context.Context, c *proccluster.Cluster) proccluster.QuorumView {
	t.Helper()
	var agreed proccluster.QuorumView
	eventually(t, 15*time.Second, "every node names one raft leader in one term", func() error {
		var first *proccluster.QuorumView
		for _, n := range c.Nodes() {
			if !n.Running() {
				continue
			}
			q, err := n.Quorum(ctx)
			if err != nil {
				return err
			}
			if q.Leader < 1 {
				return fmt.Errorf("node %d knows no leader", n.ID)
			}
			if first == nil {
				first = &q
			} else if q.Leader != first.Leader || q.Term != first.Term {
				return fmt.Errorf("node %d: leader %d term %d; another node: leader %d term %d", n.ID, q.Leader, q.Term, first.Leader, first.Term)
			}
		}
		agreed = *first
		return nil
	})
	return agreed
}

// topicView is what a node's Metadata says of one topic.
type topicView struct {
	ID       [16]byte
	Replicas map[int32][]int32
}

// topicsOf returns the topics a node's metadata lists, and an error if it
// lists a name twice.
func topicsOf(ctx context.Context, n *proccluster.Node) (map[string]topicView, error) {
	m, err := n.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]topicView{}
	for _, tp := range m.Topics {
		if tp.Topic == nil {
			return nil, fmt.Errorf("node %d: a topic without a name", n.ID)
		}
		if _, dup := out[*tp.Topic]; dup {
			return nil, fmt.Errorf("node %d lists topic %s twice", n.ID, *tp.Topic)
		}
		v := topicView{ID: tp.TopicID, Replicas: map[int32][]int32{}}
		for _, p := range tp.Partitions {
			v.Replicas[p.Partition] = slices.Sorted(slices.Values(p.Replicas))
		}
		out[*tp.Topic] = v
	}
	return out, nil
}

// TestFaultCreateTopicsControllerKilled: 100 CreateTopics with replication
// factor 3 from four concurrent clients while the active controller's
// process is SIGKILLed once, with creations in flight, and later
// restarted. A creation that succeeded (or answered TOPIC_ALREADY_EXISTS:
// a retry of this very creation, whose first attempt committed) exists;
// one refused with a non-retriable error does not; one that timed out or
// failed retriably may or may not. Within 5 s of the restarted node
// serving again, every node's metadata lists the same topics with the
// same ids and replicas, none twice.
func TestFaultCreateTopicsControllerKilled(t *testing.T) {
	rng := faultTest(t)
	f := startFaultCluster(t, 3*time.Minute)
	c, ctx, adm := f.c, f.ctx, f.adm
	killAt, restartAt := 20+rng.IntN(20), 50+rng.IntN(20)
	t.Logf("the controller is killed as creation %d is handed out and restarted at %d", killAt, restartAt)

	// The leader is read before the creations start: asking for it at the
	// kill would stall the feed and let the creations in flight finish.
	controller := raftLeader(t, ctx, c)
	var mu sync.Mutex
	var succeeded, refused, unsure []string
	var inFlight atomic.Int32
	names := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				inFlight.Add(1)
				_, err := adm.CreateTopic(rctx, 1, 3, nil, name)
				inFlight.Add(-1)
				rcancel()
				var ke *kerr.Error
				mu.Lock()
				switch {
				case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
					succeeded = append(succeeded, name)
				case errors.As(err, &ke) && !ke.Retriable:
					refused = append(refused, name)
				default:
					unsure = append(unsure, name)
				}
				mu.Unlock()
			}
		}()
	}
	var killed *proccluster.Node
	for i := range 100 {
		switch i {
		case killAt:
			killed = c.Node(controller.Leader)
			n := inFlight.Load()
			killed.Kill()
			t.Logf("SIGKILL to node %d, the raft leader (term %d), with %d creations in flight", controller.Leader, controller.Term, n)
		case restartAt:
			t.Logf("restarting node %d", killed.ID)
			killed.Restart()
		}
		names <- fmt.Sprintf("ck%03d", i)
	}
	close(names)
	wg.Wait()
	t.Logf("succeeded %d, refused %d, unsure %d: %v", len(succeeded), len(refused), len(unsure), unsure)
	if len(succeeded) < killAt-4 { // all handed out before the kill, but for those in flight
		t.Fatalf("only %d creations succeeded: %v", len(succeeded), succeeded)
	}
	eventually(t, 5*time.Second, "every node's metadata agrees", func() error {
		var first map[string]topicView
		for _, n := range c.Nodes() {
			topics, err := topicsOf(ctx, n)
			if err != nil {
				return err
			}
			for _, s := range succeeded {
				if _, ok := topics[s]; !ok {
					return fmt.Errorf("node %d lacks %s, whose creation succeeded", n.ID, s)
				}
			}
			for _, s := range refused {
				if _, ok := topics[s]; ok {
					return fmt.Errorf("node %d has %s, whose creation was refused", n.ID, s)
				}
			}
			if first == nil {
				first = topics
			} else if d := cmp.Diff(first, topics); d != "" {
				return fmt.Errorf("node %d's topics differ from node 1's (-1 +%d):\n%s", n.ID, n.ID, d)
			}
		}
		ids := map[[16]byte]string{}
		for name, v := range first {
			if other, dup := ids[v.ID]; dup {
				return fmt.Errorf("topics %s and %s share the id %x", name, other, v.ID)
			}
			ids[v.ID] = name
		}
		return nil
	})
}

// TestFaultVoterPausedNoLeaderChange: a voter that is not the raft leader
// is SIGSTOPped for 10 s (ten election timeouts) and then SIGCONTed. While
// it is frozen the two others keep the leader and term; once it runs
// again it rejoins without an election (PreVote: it cannot win a pre-vote
// while the others hear the leader, so it never bumps the term): for 3 s
// after resuming every node, the resumed one included, names the leader
// and term of before, and the resumed node catches up to the commit index.
func TestFaultVoterPausedNoLeaderChange(t *testing.T) {
	rng := faultTest(t)
	f := startFaultCluster(t, 2*time.Minute)
	c, ctx := f.c, f.ctx
	before := raftLeader(t, ctx, c)
	var followers []*proccluster.Node
	for _, n := range c.Nodes() {
		if n.ID != before.Leader {
			followers = append(followers, n)
		}
	}
	paused := followers[rng.IntN(len(followers))]
	t.Logf("leader %d in term %d; SIGSTOP to node %d for 10s", before.Leader, before.Term, paused.ID)

	same := func(n *proccluster.Node) error {
		q, err := n.Quorum(ctx)
		if err != nil {
			return err
		}
		if q.Leader != before.Leader || q.Term != before.Term {
			return fmt.Errorf("node %d: leader %d term %d, was leader %d term %d", n.ID, q.Leader, q.Term, before.Leader, before.Term)
		}
		return nil
	}
	paused.Stop()
	f.holdsFor(10*time.Second, 200*time.Millisecond, paused, fmt.Sprintf("while node %d is stopped", paused.ID), same)
	paused.Cont()
	t.Logf("SIGCONT to node %d", paused.ID)
	eventually(t, 10*time.Second, "the resumed node answers", func() error { return same(paused) })
	f.holdsFor(3*time.Second, 100*time.Millisecond, nil, "after SIGCONT", same)
	eventually(t, 5*time.Second, "the resumed node catches up", func() error {
		lq, err := c.Node(before.Leader).Quorum(ctx)
		if err != nil {
			return err
		}
		pq, err := paused.Quorum(ctx)
		if err != nil {
			return err
		}
		if pq.HighWatermark < lq.HighWatermark {
			return fmt.Errorf("node %d at commit %d, leader at %d", paused.ID, pq.HighWatermark, lq.HighWatermark)
		}
		return nil
	})
}

// TestFaultBrokerPausedKeepsLeadership: a broker that leads partitions
// (not the active controller) is SIGSTOPped for 5 s, past the controller's
// ProbeAfter (1 s), so it is probed, but within the 9 s session timeout.
// A stopped process keeps its sockets and the kernel still accepts on its
// listener, so the probes find it alive: throughout the pause and after
// it, no node shows it fenced or any leadership moved. (A SIGKILL is
// fenced within about a second: TestFaultBrokerKilledFencedAndRejoins,
// bench failover.)
func TestFaultBrokerPausedKeepsLeadership(t *testing.T) {
	rng := faultTest(t)
	f := startFaultCluster(t, 2*time.Minute)
	ctx := f.ctx
	paused, before, q := f.leaderVictim(rng, "paused", 6)
	leaders := func(n *proccluster.Node) (map[int32]leadership, error) { return leadersOn(ctx, n, "paused", 6) }
	t.Logf("controller %d; leaders %v; SIGSTOP to node %d for 5s", q.Leader, before, paused.ID)
	unchanged := func(n *proccluster.Node) error {
		fenced, known, err := brokerFenced(ctx, n, paused.ID)
		if err != nil {
			return err
		}
		if fenced || !known {
			return fmt.Errorf("node %d shows node %d fenced (%v) or unknown (%v)", n.ID, paused.ID, fenced, !known)
		}
		l, err := leaders(n)
		if err != nil {
			return err
		}
		if !maps.Equal(l, before) {
			return fmt.Errorf("node %d: leaders %v, were %v", n.ID, l, before)
		}
		return nil
	}
	paused.Stop()
	f.holdsFor(5*time.Second, 200*time.Millisecond, paused, fmt.Sprintf("while node %d is stopped", paused.ID), unchanged)
	paused.Cont()
	t.Logf("SIGCONT to node %d", paused.ID)
	f.holdsFor(3*time.Second, 100*time.Millisecond, paused, "after SIGCONT", unchanged)
}

// brokerFenced returns whether DescribeCluster on n shows broker id
// fenced, and whether it shows it at all.
func brokerFenced(ctx context.Context, n *proccluster.Node, id int32) (fenced, known bool, err error) {
	cl, err := n.Client()
	if err != nil {
		return false, false, err
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	raw, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return false, false, err
	}
	for _, b := range raw.(*kmsg.DescribeClusterResponse).Brokers {
		if b.NodeID == id {
			return b.IsFenced, true, nil
		}
	}
	return false, false, nil
}

// TestFaultBrokerKilledFencedAndRejoins: kill -9 of a broker that is not
// the controller. It is fenced before its 9 s session could time out: its
// controller connection ends, the controller probes its listener and the
// refusal fences it (metadata/liveness.go; a paused broker is not:
// TestFaultBrokerPausedKeepsLeadership). Every partition it led gets
// another leader among its replicas with a higher leader epoch on every
// other node's metadata, and after a restart it rejoins: unfenced, listed
// by every node.
func TestFaultBrokerKilledFencedAndRejoins(t *testing.T) {
	rng := faultTest(t)
	f := startFaultCluster(t, 2*time.Minute)
	c, ctx := f.c, f.ctx
	victim, before, q := f.leaderVictim(rng, "spread", 6)
	leaders := func(n *proccluster.Node) (map[int32]leadership, error) { return leadersOn(ctx, n, "spread", 6) }
	t.Logf("controller %d; leaders before %v; kill -9 of node %d", q.Leader, before, victim.ID)
	killedAt := time.Now()
	victim.Kill()
	var survivors []*proccluster.Node
	for _, n := range c.Nodes() {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	eventually(t, 20*time.Second, "the killed broker fenced on every survivor", func() error {
		for _, n := range survivors {
			fenced, known, err := brokerFenced(ctx, n, victim.ID)
			if err != nil {
				return err
			}
			if !known || !fenced {
				return fmt.Errorf("node %d: broker %d known %t fenced %t", n.ID, victim.ID, known, fenced)
			}
		}
		return nil
	})
	// The session timeout (9 s after the last heartbeat, at most 500 ms
	// before the kill) cannot fence sooner than 8.5 s: fenced before, it
	// was the probe.
	took := time.Since(killedAt)
	if took >= 8500*time.Millisecond {
		t.Fatalf("broker %d fenced %v after the kill: by its session timeout, not by the probe of its closed listener", victim.ID, took)
	}
	t.Logf("broker %d fenced within %v of the kill", victim.ID, took)
	eventually(t, 10*time.Second, "the killed broker's leaderships moved", func() error {
		for _, n := range survivors {
			after, err := leaders(n)
			if err != nil {
				return err
			}
			for p, b := range before {
				a := after[p]
				switch {
				case a.leader == victim.ID:
					return fmt.Errorf("node %d: partition %d still led by the fenced broker %d", n.ID, p, victim.ID)
				case a.leader < 1:
					return fmt.Errorf("node %d: partition %d has no leader", n.ID, p)
				case b.leader == victim.ID && a.epoch <= b.epoch:
					return fmt.Errorf("node %d: partition %d moved to %d without a new leader epoch (%d, was %d)", n.ID, p, a.leader, a.epoch, b.epoch)
				case b.leader != victim.ID && a != b:
					return fmt.Errorf("node %d: partition %d, led by the live broker %d, changed to %+v", n.ID, p, b.leader, a)
				}
			}
		}
		return nil
	})
	victim.Restart()
	eventually(t, 20*time.Second, "the restarted broker rejoins, unfenced on every node", func() error {
		for _, n := range c.Nodes() {
			fenced, known, err := brokerFenced(ctx, n, victim.ID)
			if err != nil {
				return err
			}
			if !known || fenced {
				return fmt.Errorf("node %d: broker %d known %t fenced %t", n.ID, victim.ID, known, fenced)
			}
		}
		return nil
	})
	waitBrokers(t, ctx, c, 3)
}
