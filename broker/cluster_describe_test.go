package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/cli"
)

// TestClusterDescribe runs `weir cluster describe`'s code (cli.DescribeCluster,
// DescribeCluster v2 and DescribeQuorum asked of every broker) against an
// in-process 3-node cluster: every node is a voter and an unfenced broker,
// they agree on one raft leader and term, exactly one is the controller,
// and each reports applied <= commit with both past the first entries.
func TestClusterDescribe(t *testing.T) {
	c := startTestCluster(t, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var d cli.ClusterDescription
	eventually(t, 15*time.Second, "describe shows 3 voters, brokers and one leader", func() error {
		var buf bytes.Buffer
		if err := cli.DescribeCluster(ctx, cl, &buf, cli.Output{JSON: true}); err != nil {
			return err
		}
		d = cli.ClusterDescription{}
		if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
			return fmt.Errorf("decode %q: %w", buf.String(), err)
		}
		if len(d.Nodes) != 3 {
			return fmt.Errorf("%d nodes, want 3: %+v", len(d.Nodes), d.Nodes)
		}
		controllers := 0
		for i, n := range d.Nodes {
			if n.ID != int32(i+1) || !n.Voter || n.Broker != c.brokers[i].Addr() || n.Fenced || n.Err != "" {
				return fmt.Errorf("node %d: %+v, want voter, unfenced broker at %s", i+1, n, c.brokers[i].Addr())
			}
			if n.Leader < 1 || n.Leader > 3 || n.Leader != d.Nodes[0].Leader || n.Term < 1 || n.Term != d.Nodes[0].Term {
				return fmt.Errorf("node %d: leader %d term %d, node 1: leader %d term %d", n.ID, n.Leader, n.Term, d.Nodes[0].Leader, d.Nodes[0].Term)
			}
			if n.Applied < 1 || n.Applied > n.Commit {
				return fmt.Errorf("node %d: applied %d commit %d", n.ID, n.Applied, n.Commit)
			}
			if n.Controller {
				controllers++
				if n.ID != d.Controller {
					return fmt.Errorf("node %d marked controller, description says %d", n.ID, d.Controller)
				}
			}
		}
		if controllers != 1 {
			return fmt.Errorf("%d controllers, want 1", controllers)
		}
		if d.ClusterID == "" {
			return fmt.Errorf("empty cluster id")
		}
		return nil
	})
	// The text form names every node.
	var buf bytes.Buffer
	if err := cli.DescribeCluster(ctx, cl, &buf, cli.Output{}); err != nil {
		t.Fatal(err)
	}
	for _, b := range c.brokers {
		if !bytes.Contains(buf.Bytes(), []byte(b.Addr())) {
			t.Errorf("text output lacks broker %s:\n%s", b.Addr(), buf.String())
		}
	}
	t.Logf("cluster describe:\n%s", buf.String())

	// A broker that stops (not the controller, so the quorum keeps its
	// leader) is shown fenced, and not asked, once its session expires.
	stop := 2
	if d.Controller == 3 || d.Nodes[0].Leader == 3 {
		stop = 1
		if d.Controller == 2 || d.Nodes[0].Leader == 2 {
			stop = 0
		}
	}
	if err := c.brokers[stop].Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, fmt.Sprintf("describe shows node %d fenced", stop+1), func() error {
		var buf bytes.Buffer
		if err := cli.DescribeCluster(ctx, cl, &buf, cli.Output{JSON: true}); err != nil {
			return err
		}
		var d cli.ClusterDescription
		if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
			return err
		}
		for _, n := range d.Nodes {
			if n.ID == int32(stop+1) {
				if !n.Fenced || !n.Voter || n.Err == "" {
					return fmt.Errorf("node %d: %+v, want a fenced voter, not asked", n.ID, n)
				}
				return nil
			}
		}
		return fmt.Errorf("node %d missing: %+v", stop+1, d.Nodes)
	})
}
