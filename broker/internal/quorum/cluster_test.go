package quorum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// appliedEntry is one entry a testSM applied.
type appliedEntry struct {
	Index uint64
	Data  string
}

// testSM is a state machine whose state is the list of entries it applied.
// It records a violation of the StateMachine contract (an index applied out
// of order or twice) instead of hiding it.
type testSM struct {
	mu         sync.Mutex
	entries    []appliedEntry // guarded by mu
	last       uint64         // guarded by mu: last applied or restored index
	violations []string       // guarded by mu
	restores   int            // guarded by mu
}

func (s *testSM) Apply(index uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.last {
		s.violations = append(s.violations, fmt.Sprintf("Apply(%d) after %d", index, s.last))
	}
	s.last = index
	s.entries = append(s.entries, appliedEntry{Index: index, Data: string(data)})
	return nil
}

func (s *testSM) Snapshot() ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(s.entries)
	return b, s.last, err
}

func (s *testSM) Restore(data []byte, index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ents []appliedEntry
	if err := json.Unmarshal(data, &ents); err != nil {
		return err
	}
	s.entries, s.last = ents, index
	s.restores++
	return nil
}

func (s *testSM) state() ([]appliedEntry, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries), slices.Clone(s.violations)
}

// testSeed returns the seed of a randomized test, from QUORUM_SEED if set,
// and logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("QUORUM_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("QUORUM_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (rerun with QUORUM_SEED=%d)", seed, seed)
	return seed
}

// testCluster is n voters in this process on 127.0.0.1, every link through a
// faultnet.Network, each with its own in-memory filesystem (kept across
// restarts).
type testCluster struct {
	t      *testing.T
	seed   uint64
	net    *faultnet.Network
	voters []Voter
	tune   func(*Options)
	fs     map[NodeID]vfs.FS
	// mu guards nodes and sms against start and stop while another
	// goroutine reads them through running (the chaos test's client);
	// other helpers run on the test goroutine only.
	mu    sync.RWMutex
	nodes map[NodeID]*Node // running nodes
	sms   map[NodeID]*testSM
}

// running returns the running nodes.
func (c *testCluster) running() []*Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ns []*Node
	for _, n := range c.nodes {
		ns = append(ns, n)
	}
	return ns
}

func newTestCluster(t *testing.T, n int, tune func(*Options)) *testCluster {
	t.Helper()
	seed := testSeed(t)
	c := &testCluster{t: t, seed: seed, net: faultnet.New(seed, testLogger(t)), tune: tune,
		fs: map[NodeID]vfs.FS{}, nodes: map[NodeID]*Node{}, sms: map[NodeID]*testSM{}}
	lns := map[NodeID]net.Listener{}
	for i := 1; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		id := NodeID(i)
		lns[id] = ln
		c.voters = append(c.voters, Voter{ID: id, Addr: ln.Addr().String()})
		c.net.Register(id, ln.Addr().String())
		c.fs[id] = vfs.NewMem()
	}
	t.Cleanup(c.closeAll)
	for _, v := range c.voters {
		c.start(v.ID, lns[v.ID])
	}
	return c
}

func (c *testCluster) addr(id NodeID) string {
	for _, v := range c.voters {
		if v.ID == id {
			return v.Addr
		}
	}
	c.t.Fatalf("no node %d", id)
	return ""
}

// start starts node id on ln (nil: listen on its address again) with a new
// state machine, restored from its storage.
func (c *testCluster) start(id NodeID, ln net.Listener) {
	c.t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", c.addr(id)); err != nil {
			c.t.Fatal(err)
		}
	}
	o := Options{
		ID: id, Voters: c.voters, Dir: "/raft", FS: c.fs[id],
		// 10ms ticks, an election timeout of 0.5s to 1s: short enough for
		// a test, long enough that a loaded machine does not elect by
		// accident.
		TickInterval: 10 * time.Millisecond, ElectionTicks: 50, HeartbeatTicks: 5,
		Listener: ln, Dialer: c.net.Dialer(id), DialBackoff: 10 * time.Millisecond, MaxDialBackoff: 100 * time.Millisecond,
		Logger: testLogger(c.t), Registerer: prometheus.NewRegistry(),
	}
	if c.tune != nil {
		c.tune(&o)
	}
	sm := &testSM{}
	n, err := New(o, sm)
	if err != nil {
		c.t.Fatalf("node %d: %v", id, err)
	}
	if err := n.Start(context.Background()); err != nil {
		c.t.Fatalf("node %d: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id], c.sms[id] = n, sm
	c.mu.Unlock()
}

func (c *testCluster) stop(id NodeID) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if err := n.Close(); err != nil {
		c.t.Fatalf("close node %d: %v", id, err)
	}
}

func (c *testCluster) closeAll() {
	c.mu.RLock()
	var ids []NodeID
	for id := range c.nodes {
		ids = append(ids, id)
	}
	c.mu.RUnlock()
	for _, id := range ids {
		c.stop(id)
	}
}

// poll calls f until it returns nil or timeout passes, then fails with f's
// last error.
func poll(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLeader waits until every running node knows the same leader, which
// is running and leads, and returns it.
func (c *testCluster) waitLeader(timeout time.Duration) NodeID {
	c.t.Helper()
	var lead NodeID
	poll(c.t, timeout, func() error {
		lead = 0
		var term uint64
		for id, n := range c.nodes {
			s := n.Status()
			if s.Leader == 0 {
				return fmt.Errorf("node %d knows no leader", id)
			}
			if lead != 0 && (s.Leader != lead || s.Term != term) {
				return fmt.Errorf("nodes disagree: leader %d term %d vs leader %d term %d", lead, term, s.Leader, s.Term)
			}
			lead, term = s.Leader, s.Term
		}
		if ln := c.nodes[lead]; ln == nil || !ln.IsLeader() {
			return fmt.Errorf("leader %d is not running or not leading", lead)
		}
		return nil
	})
	return lead
}

// propose proposes data on the leader, retrying retriable errors (a
// leadership loss only if the data was not applied) until timeout.
func (c *testCluster) propose(data string, timeout time.Duration) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lead := c.waitLeader(time.Until(deadline))
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		idx, err := c.nodes[lead].Propose(ctx, []byte(data))
		cancel()
		if err == nil {
			return idx
		}
		if !IsRetriable(err) || time.Now().After(deadline) {
			c.t.Fatalf("propose %q: %v", data, err)
		}
		if errors.Is(err, ErrLeadershipLost) {
			c.t.Fatalf("propose %q: %v (not expected in this test)", data, err)
		}
	}
}

// waitApplied waits until every running node applied index.
func (c *testCluster) waitApplied(index uint64, timeout time.Duration) {
	c.t.Helper()
	poll(c.t, timeout, func() error {
		for id, n := range c.nodes {
			if s := n.Status(); s.Applied < index {
				return fmt.Errorf("node %d applied %d < %d (status %+v)", id, s.Applied, index, s)
			}
		}
		return nil
	})
}

// checkSame checks that every running node applied exactly want (the data
// in order), with no contract violation, and that all agree on indexes.
func (c *testCluster) checkSame(want []string) {
	c.t.Helper()
	var ref []appliedEntry
	var refID NodeID
	for id := range c.nodes {
		ents, viol := c.sms[id].state()
		if len(viol) > 0 {
			c.t.Errorf("node %d: state machine contract violated: %v", id, viol)
		}
		var got []string
		for _, e := range ents {
			got = append(got, e.Data)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			c.t.Errorf("node %d applied other data (-want +got):\n%s", id, diff)
		}
		if ref == nil {
			ref, refID = ents, id
		} else if diff := cmp.Diff(ref, ents); diff != "" {
			c.t.Errorf("nodes %d and %d applied different entries (-%d +%d):\n%s", refID, id, refID, id, diff)
		}
	}
}

func TestClusterReplicates(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.waitLeader(10 * time.Second)

	// Concurrent proposals: each returns a distinct index once applied on
	// the leader.
	const workers, each = 4, 10
	var (
		mu      sync.Mutex
		indexes = map[uint64]string{}
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf("w%d-%d", w, i)
				idx := c.propose(data, 10*time.Second)
				mu.Lock()
				if prev, ok := indexes[idx]; ok {
					t.Errorf("index %d returned for %q and %q", idx, prev, data)
				}
				indexes[idx] = data
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var last uint64
	for idx := range indexes {
		last = max(last, idx)
	}
	c.waitApplied(last, 10*time.Second)
	// The data applied at each returned index is the data proposed.
	ents, _ := c.sms[lead].state()
	for _, e := range ents {
		if d, ok := indexes[e.Index]; ok && d != e.Data {
			t.Errorf("index %d: applied %q, Propose returned it for %q", e.Index, e.Data, d)
		}
		delete(indexes, e.Index)
	}
	if len(indexes) > 0 {
		t.Errorf("returned indexes never applied: %v", indexes)
	}
	var want []string
	for _, e := range ents {
		want = append(want, e.Data)
	}
	if len(want) != workers*each {
		t.Fatalf("leader applied %d entries, want %d", len(want), workers*each)
	}
	c.checkSame(want)

	// A follower refuses proposals and names the leader.
	for id, n := range c.nodes {
		if id == lead {
			continue
		}
		_, err := n.Propose(context.Background(), []byte("x"))
		var nl *NotLeaderError
		if !errors.As(err, &nl) || nl.Leader != lead || !IsRetriable(err) {
			t.Errorf("Propose on follower %d: %v, want a retriable NotLeaderError naming %d", id, err, lead)
		}
	}
}

// TestClusterLeaderKilled closes the leader: another is elected, every
// committed entry is on the survivors, and the old leader, restarted after
// the others compacted their logs past it, catches up from a snapshot.
func TestClusterLeaderKilled(t *testing.T) {
	c := newTestCluster(t, 3, func(o *Options) { o.SnapshotEntries, o.CatchUpEntries = 16, 4 })
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("a%d", i))
		c.propose(want[i], 10*time.Second)
	}
	old := c.waitLeader(10 * time.Second)
	oldTerm := c.nodes[old].Status().Term
	c.stop(old)
	lead := c.waitLeader(10 * time.Second)
	if lead == old {
		t.Fatalf("closed node %d still leads", old)
	}
	if term := c.nodes[lead].Status().Term; term <= oldTerm {
		t.Fatalf("new leader's term %d is not above the old %d", term, oldTerm)
	}
	var last uint64
	for i := range 40 {
		want = append(want, fmt.Sprintf("b%d", i))
		last = c.propose(want[len(want)-1], 10*time.Second)
	}
	c.waitApplied(last, 10*time.Second)
	c.checkSame(want)
	if s := c.nodes[lead].Status(); s.SnapshotIndex == 0 {
		t.Fatalf("leader took no snapshot: %+v", s)
	}

	c.start(old, nil)
	c.waitApplied(last, 10*time.Second)
	c.checkSame(want)
	c.sms[old].mu.Lock()
	restores := c.sms[old].restores
	c.sms[old].mu.Unlock()
	if restores == 0 {
		t.Errorf("restarted node %d caught up without a snapshot; the test meant to send one", old)
	}
}

// TestClusterPartitionedFollowerNoLeaderChange isolates a follower long
// enough for it to campaign, then heals it: with PreVote its campaign never
// raises the term, so the leader stays.
func TestClusterPartitionedFollowerNoLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.waitLeader(10 * time.Second)
	term := c.nodes[lead].Status().Term
	var follower NodeID
	for id := range c.nodes {
		if id != lead {
			follower = id
			break
		}
	}
	c.propose("before", 10*time.Second)
	c.net.Isolate(follower)
	// The isolated follower's election timeout passes: it campaigns (as a
	// pre-candidate, with PreVote, and stays one: nobody answers).
	poll(t, 10*time.Second, func() error {
		if r := c.nodes[follower].Status().Role; r == RoleFollower {
			return fmt.Errorf("isolated follower %d does not campaign yet", follower)
		}
		return nil
	})
	// The other two still commit (waitLeader would wait for the isolated
	// node to know the leader: propose on the leader directly).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.nodes[lead].Propose(ctx, []byte("during")); err != nil {
		t.Fatalf("propose during the partition: %v", err)
	}
	// Stay isolated for several more election timeouts.
	deadline := time.Now().Add(3 * time.Second)
	poll(t, 5*time.Second, func() error {
		if time.Now().Before(deadline) {
			return errors.New("partition still on")
		}
		return nil
	})
	c.net.HealAll()
	last := c.propose("after", 10*time.Second)
	c.waitApplied(last, 10*time.Second)
	c.checkSame([]string{"before", "during", "after"})
	for id, n := range c.nodes {
		if s := n.Status(); s.Leader != lead || s.Term != term {
			t.Errorf("node %d: leader %d term %d after the heal, want leader %d term %d unchanged", id, s.Leader, s.Term, lead, term)
		}
	}
}

// TestClusterIsolatedLeaderStepsDown isolates the leader: CheckQuorum makes
// it step down, the proposal it had appended fails with ErrLeadershipLost,
// the others elect a leader, and after the heal all agree.
func TestClusterIsolatedLeaderStepsDown(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	old := c.waitLeader(10 * time.Second)
	c.propose("first", 10*time.Second)
	c.net.Isolate(old)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.nodes[old].Propose(ctx, []byte("stranded"))
	if !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("Propose on the isolated leader: %v, want ErrLeadershipLost", err)
	}
	if c.nodes[old].IsLeader() {
		t.Fatalf("isolated node %d still leads", old)
	}
	// The other two elect a leader among them.
	poll(t, 10*time.Second, func() error {
		for id, n := range c.nodes {
			if id != old && n.IsLeader() {
				return nil
			}
		}
		return errors.New("no leader among the connected nodes")
	})
	c.net.HealAll()
	lead := c.waitLeader(10 * time.Second)
	if lead == old {
		t.Fatalf("isolated node %d leads again after the heal", old)
	}
	last := c.propose("second", 10*time.Second)
	c.waitApplied(last, 10*time.Second)
	c.checkSame([]string{"first", "second"})
}

// TestClusterLossyLinks drops connections at random on every link while
// proposing: everything proposed is applied once, in the same order, on
// every node.
func TestClusterLossyLinks(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitLeader(10 * time.Second)
	for _, a := range c.voters {
		for _, b := range c.voters {
			if a.ID != b.ID {
				c.net.Drop(a.ID, b.ID, 0.05)
				c.net.Delay(a.ID, b.ID, time.Millisecond)
			}
		}
	}
	var want []string
	var last uint64
	for i := range 30 {
		want = append(want, fmt.Sprintf("e%d", i))
		last = c.propose(want[i], 20*time.Second)
	}
	c.net.HealAll()
	c.waitApplied(last, 10*time.Second)
	c.checkSame(want)
	var dropped int
	for _, a := range c.voters {
		for _, b := range c.voters {
			dropped += c.net.Stats(a.ID, b.ID).Dropped
		}
	}
	if dropped == 0 {
		t.Errorf("the fault layer dropped nothing; the test did not test loss")
	}
	t.Logf("connections dropped: %d", dropped)
}

// TestClusterProposalRetriedDuringTransfer: raft drops proposals while a
// leadership transfer is under way; Propose retries them, and they commit
// once the transfer is abandoned (its target cannot be reached).
func TestClusterProposalRetriedDuringTransfer(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.propose("before", 10*time.Second)
	lead := c.waitLeader(10 * time.Second)
	var target NodeID
	for id := range c.nodes {
		if id != lead {
			target = id
			break
		}
	}
	c.net.Blackhole(lead, target) // the transfer's MsgTimeoutNow never arrives
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[lead].TransferLeadership(ctx, target); err != nil {
		t.Fatal(err)
	}
	idx, err := c.nodes[lead].Propose(ctx, []byte("during"))
	if err != nil {
		t.Fatalf("Propose during a transfer: %v", err)
	}
	if r := testutil.ToFloat64(c.nodes[lead].m.proposalRetries); r == 0 {
		t.Errorf("no proposal was retried: the transfer did not make raft drop it, the test tested nothing")
	}
	c.net.HealAll()
	c.waitApplied(idx, 10*time.Second)
	c.checkSame([]string{"before", "during"})
}

// TestClusterRestartAll closes every node and starts them again: each
// state machine is restored from its snapshot and re-applies the log after
// it exactly once, and the cluster goes on.
func TestClusterRestartAll(t *testing.T) {
	c := newTestCluster(t, 3, func(o *Options) { o.SnapshotEntries, o.CatchUpEntries = 8, 2 })
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("a%d", i))
		c.propose(want[i], 10*time.Second)
	}
	last := c.propose("last-before", 10*time.Second)
	want = append(want, "last-before")
	c.waitApplied(last, 10*time.Second)
	c.closeAll()
	for _, v := range c.voters {
		c.start(v.ID, nil)
	}
	// Committed entries after each snapshot are applied again at start.
	c.waitApplied(last, 10*time.Second)
	c.checkSame(want)
	for id := range c.nodes {
		c.sms[id].mu.Lock()
		restores := c.sms[id].restores
		c.sms[id].mu.Unlock()
		if restores != 1 {
			t.Errorf("node %d restored %d snapshots at start, want 1", id, restores)
		}
	}
	want = append(want, "after")
	last = c.propose("after", 10*time.Second)
	c.waitApplied(last, 10*time.Second)
	c.checkSame(want)
}

// TestClusterLeaderChanges: the leader's channel says it leads; the
// followers' name it.
func TestClusterLeaderChanges(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.waitLeader(10 * time.Second)
	for id, n := range c.nodes {
		var lc LeaderChange
		poll(t, 5*time.Second, func() error {
			select {
			case lc = <-n.LeaderChanges():
			default:
			}
			if lc.Leader != lead {
				return fmt.Errorf("node %d: last leader change %+v, want leader %d", id, lc, lead)
			}
			return nil
		})
		if lc.IsLeader != (id == lead) || lc.Term != n.Status().Term {
			t.Errorf("node %d: %+v (leader %d, term %d)", id, lc, lead, n.Status().Term)
		}
	}
}
