package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/internal/cli"
)

// startLeadersCluster starts three voters and len(brokers) broker-only
// nodes (ids 4, 5, ...), every data directory kept across restarts.
func startLeadersCluster(t *testing.T, brokers int, edit func(i int, o *Options)) *testCluster {
	t.Helper()
	roles := []string{"", "", ""}
	for range brokers {
		roles = append(roles, "broker")
	}
	dirs := make([]string, len(roles))
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	return startTestClusterWith(t, roles, func(i int, o *Options) {
		o.ReplicaLagTime, o.DataDir = time.Second, dirs[i]
		if edit != nil {
			edit(i, o)
		}
	})
}

// createAssigned creates topic with one partition on replicas (the first
// the preferred leader) and configs, through any broker, once the
// metadata lists every replica unfenced (a broker just registered is
// fenced until it has caught up, and a partition created meanwhile starts
// without it in its ISR, led by another); it returns once every unfenced
// broker lists the topic.
func createAssigned(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, replicas []int32, configs map[string]string) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("brokers %v unfenced", replicas), func() error {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeFencedBrokers = true
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, r := range replicas {
			if !slices.ContainsFunc(resp.Brokers, func(b kmsg.DescribeClusterResponseBroker) bool { return b.NodeID == r && !b.IsFenced }) {
				return fmt.Errorf("broker %d not listed unfenced by DescribeCluster", r)
			}
		}
		return nil
	})
	eventually(t, 20*time.Second, "topic "+topic+" created", func() error {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
		rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: replicas}}
		for k, v := range configs {
			rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: kmsg.StringPtr(v)})
		}
		req.Topics = append(req.Topics, rt)
		raw, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if code := raw.Topics[0].ErrorCode; code != 0 && code != kerr.TopicAlreadyExists.Code {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
	// NB: each node lists the topic once it has applied its creation, the
	// one that answered CreateTopics maybe before the others; a client's
	// next request may go to any (TestClusterReassignPlanJSON's plan read
	// the topic as unknown from one under load).
	eventually(t, 20*time.Second, "topic "+topic+" listed by every broker", func() error {
		req := kmsg.NewPtrDescribeClusterRequest()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, b := range resp.Brokers {
			if _, _, _, err := partitionLeader(ctx, cl, b.NodeID, topic, 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// waitPlacement waits until node via's metadata shows topic/0 led by
// leader with exactly the ISR isr (in any order).
func waitPlacement(t *testing.T, ctx context.Context, cl *kgo.Client, via int32, topic string, leader int32, isr []int32) {
	t.Helper()
	want := slices.Sorted(slices.Values(isr))
	eventually(t, 20*time.Second, fmt.Sprintf("%s/0 led by %d with ISR %v", topic, leader, want), func() error {
		l, _, got, err := partitionLeader(ctx, cl, via, topic, 0)
		if err != nil {
			return err
		}
		if got = slices.Sorted(slices.Values(got)); l != leader || !slices.Equal(got, want) {
			return fmt.Errorf("leader %d ISR %v", l, got)
		}
		return nil
	})
}

// brokerUnfenced waits until node via's metadata lists broker id.
func brokerUnfenced(t *testing.T, ctx context.Context, cl *kgo.Client, via, id int32) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("broker %d unfenced", id), func() error {
		raw, err := cl.Broker(int(via)).Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil {
			return err
		}
		for _, b := range raw.(*kmsg.MetadataResponse).Brokers {
			if b.NodeID == id {
				return nil
			}
		}
		return fmt.Errorf("not listed")
	})
}

// waitOn waits until topic/0 on each of nodes ends at end, its high
// watermark there too.
func waitOn(t *testing.T, c *testCluster, topic string, end base.Offset, nodes ...int32) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("%s/0 at %d on %v", topic, end, nodes), func() error {
		for _, n := range nodes {
			l := partitionLog(c.brokers[n-1], topic, 0)
			if l == nil {
				return fmt.Errorf("node %d has no log", n)
			}
			if l.LogEndOffset() != end || l.HighWatermark() != end {
				return fmt.Errorf("node %d: end %d hw %d", n, l.LogEndOffset(), l.HighWatermark())
			}
		}
		return nil
	})
}

// restartNode restarts node id and takes its new Broker.
func (c *testCluster) restartNode(id int32) {
	c.nodes.Restart(id)
	c.brokers[id-1] = c.nodes.Node(id)
}

// TestClusterUncleanLeaderElection: two topics on replicas 4 (leader) and
// 5, one with unclean.leader.election.enable. 5 shuts down and leaves the
// ISRs; 4 takes a record ("b") alone, then shuts down too: both
// partitions go offline. When 5 returns, the clean topic stays offline
// (leader -1, ISR [4]: 5 lacks "b"), and the unclean one elects 5 with
// the ISR [5], losing "b". When 4 returns it leads the clean topic again
// with both records, and follows 5 on the unclean one, truncating "b".
func TestClusterUncleanLeaderElection(t *testing.T) {
	c := startLeadersCluster(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createAssigned(t, ctx, cl, "clean", []int32{4, 5}, nil)
	createAssigned(t, ctx, cl, "dirty", []int32{4, 5}, map[string]string{"unclean.leader.election.enable": "true"})
	for _, topic := range []string{"clean", "dirty"} {
		waitPlacement(t, ctx, cl, 1, topic, 4, []int32{4, 5})
		produceOnce(t, c.brokers[3].Addr(), topic, "a")
		waitOn(t, c, topic, 1, 4, 5)
	}

	c.nodes.Stop(5)
	for _, topic := range []string{"clean", "dirty"} {
		waitPlacement(t, ctx, cl, 1, topic, 4, []int32{4})
		produceOnce(t, c.brokers[3].Addr(), topic, "b")
	}
	c.nodes.Stop(4)
	for _, topic := range []string{"clean", "dirty"} {
		waitPlacement(t, ctx, cl, 1, topic, -1, []int32{4})
	}

	c.restartNode(5)
	brokerUnfenced(t, ctx, cl, 1, 5)
	// NB: the controller elects in the entry that unfences 5, so a view
	// listing 5 shows every election its return causes.
	if l, _, isr, err := partitionLeader(ctx, cl, 1, "clean", 0); err != nil || l != -1 || !slices.Equal(isr, []int32{4}) {
		t.Fatalf("clean/0 with only the out-of-sync replica 5 up: leader %d ISR %v (%v), want offline with ISR [4]", l, isr, err)
	}
	waitPlacement(t, ctx, cl, 1, "dirty", 5, []int32{5})
	produceOnce(t, c.brokers[4].Addr(), "dirty", "c")
	// "b" is lost: 5 never had it; its "c" takes offset 1.
	if end := partitionLog(c.brokers[4], "dirty", 0).LogEndOffset(); end != 2 {
		t.Fatalf("dirty/0 on 5 ends at %d, want 2 (a, c)", end)
	}

	c.restartNode(4)
	waitPlacement(t, ctx, cl, 1, "clean", 4, []int32{4})
	waitPlacement(t, ctx, cl, 1, "dirty", 5, []int32{4, 5})
	waitOn(t, c, "dirty", 2, 4, 5)
	if a, b := logBytes(t, partitionLog(c.brokers[3], "dirty", 0), 2), logBytes(t, partitionLog(c.brokers[4], "dirty", 0), 2); !bytes.Equal(a, b) {
		t.Fatal("dirty/0: the logs of 4 and 5 differ")
	}
	want := map[string][]string{"clean": {"a", "b"}, "dirty": {"a", "c"}}
	for topic, w := range want {
		if got := readCluster(t, ctx, c, topic, len(w)); !slices.Equal(got, w) {
			t.Fatalf("%s: read %q, want %q", topic, got, w)
		}
	}
}

// TestClusterPreferredLeaderReturns: with a leader rebalance every second,
// a partition whose preferred replica 4 shut down (5 took over) is led by
// 4 again once 4 has returned and rejoined the ISR, with no request; every
// record written under either leader is read back.
func TestClusterPreferredLeaderReturns(t *testing.T) {
	c := startLeadersCluster(t, 2, func(_ int, o *Options) { o.LeaderRebalanceInterval = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createAssigned(t, ctx, cl, "p", []int32{4, 5}, nil)
	waitPlacement(t, ctx, cl, 1, "p", 4, []int32{4, 5})
	produceOnce(t, c.brokers[3].Addr(), "p", "a")
	c.nodes.Stop(4)
	waitPlacement(t, ctx, cl, 1, "p", 5, []int32{5})
	produceOnce(t, c.brokers[4].Addr(), "p", "b")
	c.restartNode(4)
	waitPlacement(t, ctx, cl, 1, "p", 4, []int32{4, 5})
	produceOnce(t, c.brokers[3].Addr(), "p", "c")
	if got := readCluster(t, ctx, c, "p", 3); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("read %q", got)
	}
}

// TestClusterElectLeaders: with the automatic rebalance off, `weir cluster
// elect-leaders` (cli.ElectLeaders, ElectLeaders through kadm) moves a
// partition back to its returned preferred replica, says
// ELECTION_NOT_NEEDED after, and refuses while the preferred replica is
// out of the ISR; --unclean brings a partition whose ISR members are all
// down back on its other replica.
func TestClusterElectLeaders(t *testing.T) {
	c := startLeadersCluster(t, 2, func(_ int, o *Options) { o.LeaderRebalanceInterval = -1 })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	elect := func(unclean bool) ([]cli.Election, error) {
		var buf bytes.Buffer
		err := cli.ElectLeaders(ctx, cl, &buf, cli.Output{JSON: true}, "p", 0, unclean)
		var res []cli.Election
		if jerr := json.Unmarshal(buf.Bytes(), &res); jerr != nil {
			t.Fatalf("elect-leaders output %q: %v (%v)", buf.String(), jerr, err)
		}
		return res, err
	}
	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(av.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == kmsg.ElectLeaders.Int16() }) {
		t.Fatal("ElectLeaders is not advertised in cluster mode")
	}
	createAssigned(t, ctx, cl, "p", []int32{4, 5}, nil)
	waitPlacement(t, ctx, cl, 1, "p", 4, []int32{4, 5})
	c.nodes.Stop(4)
	waitPlacement(t, ctx, cl, 1, "p", 5, []int32{5})
	if res, err := elect(false); err == nil || len(res) != 1 || res[0].Result != "PREFERRED_LEADER_NOT_AVAILABLE" {
		t.Fatalf("elect-leaders with the preferred replica down: %+v, %v", res, err)
	}
	c.restartNode(4)
	waitPlacement(t, ctx, cl, 1, "p", 5, []int32{4, 5}) // no rebalance: 5 keeps leading
	if res, err := elect(false); err != nil || len(res) != 1 || res[0].Result != "elected" {
		t.Fatalf("elect-leaders with 4 in the ISR: %+v, %v", res, err)
	}
	waitPlacement(t, ctx, cl, 1, "p", 4, []int32{4, 5})
	if res, err := elect(false); err != nil || len(res) != 1 || res[0].Result != "ELECTION_NOT_NEEDED" {
		t.Fatalf("elect-leaders with 4 leading: %+v, %v", res, err)
	}

	// Unclean, on request only: 5 leaves, then 4 (the ISR's last member)
	// too; 5 returns and the partition stays offline until asked.
	c.nodes.Stop(5)
	waitPlacement(t, ctx, cl, 1, "p", 4, []int32{4})
	c.nodes.Stop(4)
	waitPlacement(t, ctx, cl, 1, "p", -1, []int32{4})
	c.restartNode(5)
	brokerUnfenced(t, ctx, cl, 1, 5)
	if l, _, isr, err := partitionLeader(ctx, cl, 1, "p", 0); err != nil || l != -1 {
		t.Fatalf("p/0 with only 5 up: leader %d ISR %v (%v), want offline", l, isr, err)
	}
	if res, err := elect(true); err != nil || len(res) != 1 || res[0].Result != "elected" {
		t.Fatalf("elect-leaders --unclean: %+v, %v", res, err)
	}
	waitPlacement(t, ctx, cl, 1, "p", 5, []int32{5})
}

// produceOnce writes value to topic/0 at the broker at addr once, with
// acks=all, as a client would: it sends again while the broker answers
// that it did not write the record (its own view of the partition may
// trail the controller's, which the waits above read), and fails the test
// on any other answer but success. The 10 s bound on each acks=all wait
// leaves room for a loaded machine; resending after a timeout, which may
// have written the record, would make the offsets the tests check wrong.
func produceOnce(t *testing.T, addr, topic, value string) {
	t.Helper()
	var code int16
	eventually(t, 20*time.Second, fmt.Sprintf("%q written to %s at %s", value, topic, addr), func() error {
		switch code = rawProduce(t, addr, topic, 0, value, 10_000); code {
		case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code, kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code:
			return kerr.ErrorForCode(code) // not written: send again
		}
		return nil
	})
	if code != 0 {
		t.Fatalf("acks=all of %q to %s at %s: %v", value, topic, addr, kerr.ErrorForCode(code))
	}
}

// readCluster reads want records of topic/0 from the start.
func readCluster(t *testing.T, ctx context.Context, c *testCluster, topic string, want int) []string {
	t.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < want && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}
