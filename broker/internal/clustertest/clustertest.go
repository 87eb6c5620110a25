package clustertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// NodeConfig is what the open function of Start is given for one node.
type NodeConfig struct {
	// ID is the node id, from 1.
	ID int32
	// Voters is the controller voters of the cluster, in the form of
	// --controller-voters: id@host:port,...
	Voters string
	// ControllerListener is the node's controller listener, on its voter
	// address; the node owns it (and closes it) once opened. Nil for a
	// node that is not a voter.
	ControllerListener net.Listener
	// Dial connects to another node through the fault layer.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Cluster is a running in-process test cluster of nodes of type N. Its
// methods are for the test's goroutine.
type Cluster[N io.Closer] struct {
	t    testing.TB
	open func(NodeConfig) (N, error)
	// Net is the fault layer between the nodes: Drop, Delay, Blackhole,
	// Cut (one direction), Isolate, Heal and HealAll take node ids.
	Net    *faultnet.Network
	seed   uint64
	voters string
	addrs  []string // controller addresses, by id-1
	nodes  []N
	up     []bool
}

// Start opens n nodes with open, each a voter on its own controller
// listener, and closes them when the test ends. If open fails, the test
// fails.
func Start[N io.Closer](t testing.TB, n int, log *slog.Logger, open func(NodeConfig) (N, error)) *Cluster[N] {
	t.Helper()
	voter := make([]bool, n)
	for i := range voter {
		voter[i] = true
	}
	return StartVoters(t, voter, log, open)
}

// StartVoters is Start with one node per entry of voter: node i+1 is a
// controller voter (with a controller listener) when voter[i], else a
// broker-only node (NodeConfig.ControllerListener nil; it still dials
// through the fault layer).
func StartVoters[N io.Closer](t testing.TB, voter []bool, log *slog.Logger, open func(NodeConfig) (N, error)) *Cluster[N] {
	t.Helper()
	n := len(voter)
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	seed := rand.Uint64()
	if s := os.Getenv("WEIR_CLUSTER_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("clustertest: WEIR_CLUSTER_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("clustertest: network seed %d (WEIR_CLUSTER_SEED=%d replays it)", seed, seed)
	c := &Cluster[N]{t: t, open: open, Net: faultnet.New(seed, log), seed: seed,
		nodes: make([]N, n), up: make([]bool, n)}
	lns := make([]net.Listener, n)
	var specs []string
	for i := range lns {
		if !voter[i] {
			c.addrs = append(c.addrs, "")
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll(lns)
			t.Fatalf("clustertest: %v", err)
		}
		lns[i] = ln
		c.addrs = append(c.addrs, ln.Addr().String())
		c.Net.Register(faultnet.NodeID(i+1), ln.Addr().String())
		specs = append(specs, fmt.Sprintf("%d@%s", i+1, ln.Addr()))
	}
	c.voters = strings.Join(specs, ",")
	t.Cleanup(c.closeRunning)
	for i := range n {
		if err := c.openNode(int32(i+1), lns[i]); err != nil {
			closeAll(lns[i:]) // NB: a failed open may not have closed its own
			t.Fatal(err)
		}
	}
	return c
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

func (c *Cluster[N]) openNode(id int32, ln net.Listener) error {
	d := c.Net.Dialer(faultnet.NodeID(id))
	node, err := c.open(NodeConfig{ID: id, Voters: c.voters, ControllerListener: ln,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }})
	if err != nil {
		return fmt.Errorf("clustertest: open node %d: %w", id, err)
	}
	c.nodes[id-1], c.up[id-1] = node, true
	if a, ok := any(node).(interface{ ListenerAddrs() []string }); ok {
		// Its client listeners too: brokers replicating partitions fetch
		// from each other there, through the fault layer.
		for _, addr := range a.ListenerAddrs() {
			c.Net.Register(faultnet.NodeID(id), addr)
		}
	} else if a, ok := any(node).(interface{ Addr() string }); ok {
		c.Net.Register(faultnet.NodeID(id), a.Addr())
	}
	return nil
}

// Seed returns the seed of the network's random choices.
func (c *Cluster[N]) Seed() uint64 { return c.seed }

// Voters returns the controller voters, as id@host:port,...
func (c *Cluster[N]) Voters() string { return c.voters }

// Len returns the number of nodes.
func (c *Cluster[N]) Len() int { return len(c.nodes) }

// Node returns node id (from 1), running or not.
func (c *Cluster[N]) Node(id int32) N { return c.nodes[id-1] }

// Running reports whether node id is open.
func (c *Cluster[N]) Running(id int32) bool { return c.up[id-1] }

// Stop closes node id.
func (c *Cluster[N]) Stop(id int32) {
	c.t.Helper()
	if !c.up[id-1] {
		c.t.Fatalf("clustertest: stop of node %d, which is not running", id)
	}
	c.up[id-1] = false
	if err := c.nodes[id-1].Close(); err != nil {
		c.t.Fatalf("clustertest: close node %d: %v", id, err)
	}
}

// Restart opens a stopped node id again on its controller address.
func (c *Cluster[N]) Restart(id int32) {
	c.t.Helper()
	if c.up[id-1] {
		c.t.Fatalf("clustertest: restart of node %d, which is running", id)
	}
	var ln net.Listener
	if c.addrs[id-1] != "" {
		var err error
		if ln, err = net.Listen("tcp", c.addrs[id-1]); err != nil {
			c.t.Fatalf("clustertest: listen again on node %d's address: %v", id, err)
		}
	}
	if err := c.openNode(id, ln); err != nil {
		if ln != nil {
			_ = ln.Close()
		}
		c.t.Fatal(err)
	}
}

// closeRunning closes every running node.
func (c *Cluster[N]) closeRunning() {
	for i := range c.nodes {
		if c.up[i] {
			c.up[i] = false
			if err := c.nodes[i].Close(); err != nil {
				c.t.Errorf("clustertest: close node %d: %v", i+1, err)
			}
		}
	}
}
