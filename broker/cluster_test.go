package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/clustertest"
	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// testCluster is n brokers in this process, each a controller voter, on
// loopback ports chosen by the kernel, every node-to-node link through
// the fault layer of clustertest (c.net).
type testCluster struct {
	brokers []*Broker
	voters  string
	net     *faultnet.Network
	nodes   *clustertest.Cluster[*Broker]
}

// startCluster starts an n-node cluster and closes it at the end of the
// test; it checks that no goroutine outlives it.
func startTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return startTestClusterRoles(t, make([]string, n))
}

// startTestClusterRoles starts one node per entry of roles (its --roles;
// "" for the default, both); the voters are the nodes that are not
// "broker" only.
func startTestClusterRoles(t *testing.T, roles []string) *testCluster {
	t.Helper()
	return startTestClusterWith(t, roles, nil)
}

// startTestClusterWith is startTestClusterRoles with edit (when not nil)
// changing node i's options before it opens.
func startTestClusterWith(t *testing.T, roles []string, edit func(i int, o *Options)) *testCluster {
	t.Helper()
	voter := make([]bool, len(roles))
	for i, r := range roles {
		voter[i] = r != "broker" // a broker-only node is no voter and has no controller listener
	}
	// NB: the first TempDir registers the cleanup that removes them all;
	// registered before the cluster's, it runs after every node closed.
	_ = t.TempDir()
	// A node restarted (c.nodes.Restart) opens its own data directory
	// again, as a restarted process would.
	dirs := make([]string, len(roles))
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	nodes := clustertest.StartVoters(t, voter, testLogger(), func(nc clustertest.NodeConfig) (*Broker, error) {
		opts := Options{
			NodeID: nc.ID, ControllerVoters: nc.Voters, Roles: roles[nc.ID-1], Listen: "127.0.0.1:0",
			DataDir: dirs[nc.ID-1], Logger: testLogger(), CleanInterval: -1,
			GroupInitialRebalanceDelay: -1, MetricsAddr: "127.0.0.1:0",
		}
		opts.cluster = clusterTestOptions{
			controllerListener: nc.ControllerListener, dial: nc.Dial, heartbeatInterval: 100 * time.Millisecond,
			sessionTimeout: 3 * time.Second, tickInterval: 20 * time.Millisecond,
			shutdownTimeout: 500 * time.Millisecond,
		}
		if edit != nil {
			edit(int(nc.ID-1), &opts)
		}
		return Open(opts)
	})
	c := &testCluster{voters: nodes.Voters(), net: nodes.Net, nodes: nodes}
	for i := range roles {
		c.brokers = append(c.brokers, nodes.Node(int32(i+1)))
	}
	return c
}

func (c *testCluster) seeds() []string {
	var out []string
	for _, b := range c.brokers {
		out = append(out, b.Addr())
	}
	return out
}

// adminWithController returns a client of every broker (closed at the
// test's end) and its admin client, once a controller answers: the topic
// "warmup" (1 partition, replication factor 3) is created.
func (c *testCluster) adminWithController(t *testing.T, ctx context.Context) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	eventually(t, 15*time.Second, "a controller", func() error {
		_, err := adm.CreateTopic(ctx, 1, 3, nil, "warmup")
		return err
	})
	return cl, adm
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronization
	}
	t.Fatalf("%s: not within %v: %v", what, d, err)
}

// TestClusterThreeNodes starts three brokers under one quorum: they
// register, kadm sees three brokers and a controller, a topic with
// replication factor 3 and 6 partitions is created through a broker that
// forwards it, its leaders are spread over the brokers, and records
// produced by franz-go reach the leaders and are consumed back.
func TestClusterThreeNodes(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	eventually(t, 15*time.Second, "three brokers registered and unfenced", func() error {
		// NB: straight to a seed broker, past the client's metadata cache.
		for _, sb := range cl.SeedBrokers() {
			raw, err := sb.Request(ctx, kmsg.NewPtrMetadataRequest())
			if err != nil {
				return err
			}
			m := raw.(*kmsg.MetadataResponse)
			if len(m.Brokers) != 3 || m.ControllerID < 1 {
				return fmt.Errorf("brokers %v, controller %d", m.Brokers, m.ControllerID)
			}
		}
		return nil
	})
	eventually(t, 5*time.Second, "metrics show the quorum and three unfenced brokers", func() error {
		resp, err := http.Get("http://" + c.brokers[0].MetricsAddr() + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		for _, want := range []string{`weir_cluster_brokers{state="unfenced"} 3`, "weir_quorum_term ", "weir_cluster_metadata_applied_offset "} {
			if !strings.Contains(string(body), want) {
				return fmt.Errorf("no %q in /metrics", want)
			}
		}
		return nil
	})
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dc, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dc.ControllerID < 1 || dc.ControllerID > 3 || len(dc.Brokers) != 3 {
		t.Fatalf("DescribeCluster: controller %d, brokers %v", dc.ControllerID, dc.Brokers)
	}
	for _, b := range dc.Brokers {
		if want := c.brokers[b.NodeID-1].Addr(); net.JoinHostPort(b.Host, fmt.Sprint(b.Port)) != want {
			t.Errorf("broker %d advertised at %s:%d, listens on %s", b.NodeID, b.Host, b.Port, want)
		}
	}

	// Create through a broker that is not the controller: it forwards.
	var via *Broker
	for _, b := range c.brokers {
		if b.opts.NodeID != dc.ControllerID {
			via = b
		}
	}
	direct := map[int32]*kgo.Client{}
	for _, b := range c.brokers {
		direct[b.opts.NodeID] = newClient(t, b)
	}
	vcl := direct[via.opts.NodeID]
	resp, err := kadm.NewClient(vcl).CreateTopic(ctx, 6, 3, nil, "orders")
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic through node %d: %v %v", via.opts.NodeID, err, resp.Err)
	}
	// A replication factor above the live brokers is refused.
	if r, _ := adm.CreateTopic(ctx, 1, 4, nil, "too-many"); !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 4 on 3 brokers: got %v", r.Err)
	}

	var leaders map[int32]int32
	eventually(t, 10*time.Second, "every broker's metadata shows the topic", func() error {
		leaders = nil
		for _, b := range c.brokers {
			mreq := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr("orders")
			mreq.Topics = append(mreq.Topics, mt)
			raw, err := direct[b.opts.NodeID].SeedBrokers()[0].Request(ctx, mreq)
			if err != nil {
				return err
			}
			m := raw.(*kmsg.MetadataResponse)
			if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 || len(m.Topics[0].Partitions) != 6 {
				return fmt.Errorf("node %d: %+v", b.opts.NodeID, m.Topics)
			}
			these := map[int32]int32{}
			for _, p := range m.Topics[0].Partitions {
				if len(p.Replicas) != 3 || len(p.ISR) != 3 || p.Leader < 1 {
					return fmt.Errorf("node %d: partition %d: replicas %v isr %v leader %d", b.opts.NodeID, p.Partition, p.Replicas, p.ISR, p.Leader)
				}
				these[p.Partition] = p.Leader
			}
			if leaders != nil && !maps.Equal(leaders, these) {
				return fmt.Errorf("node %d shows leaders %v, another node %v", b.opts.NodeID, these, leaders)
			}
			leaders = these
		}
		return nil
	})
	perBroker := map[int32]int{}
	for _, l := range leaders {
		perBroker[l]++
	}
	if len(perBroker) != 3 {
		t.Fatalf("leaders not spread over the 3 brokers: %v", leaders)
	}

	// A broker that does not lead a partition refuses to serve it.
	var p0 int32 = 0
	for _, b := range c.brokers {
		if b.opts.NodeID == leaders[p0] {
			continue
		}
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "orders"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p0, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		// NB: a kgo client shards ListOffsets by leader; Broker(id) pins it.
		raw, err := cl.Broker(int(b.opts.NodeID)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		out := raw.(*kmsg.ListOffsetsResponse)
		if got := out.Topics[0].Partitions[0].ErrorCode; got != kerr.NotLeaderForPartition.Code {
			t.Fatalf("ListOffsets of partition 0 (led by %d) on node %d: error %v, want NOT_LEADER_OR_FOLLOWER", leaders[p0], b.opts.NodeID, kerr.ErrorForCode(got))
		}
		// A produce there names the leader and its address (KIP-951).
		preq := kmsg.NewPtrProduceRequest()
		preq.SetVersion(10)
		preq.Acks, preq.TimeoutMillis = -1, 5000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = "orders"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition = p0
		pp.Records = []byte{0} // never read: refused first
		pt.Partitions = append(pt.Partitions, pp)
		preq.Topics = append(preq.Topics, pt)
		praw, err := cl.Broker(int(b.opts.NodeID)).Request(ctx, preq)
		if err != nil {
			t.Fatal(err)
		}
		pr := praw.(*kmsg.ProduceResponse)
		got := pr.Topics[0].Partitions[0]
		if got.ErrorCode != kerr.NotLeaderForPartition.Code || got.CurrentLeader.LeaderID != leaders[p0] ||
			len(pr.Brokers) != 1 || pr.Brokers[0].NodeID != leaders[p0] {
			t.Fatalf("produce to a non-leader: %v, current leader %+v, brokers %+v", kerr.ErrorForCode(got.ErrorCode), got.CurrentLeader, pr.Brokers)
		}
		break
	}

	// Produce to every partition, then consume everything back.
	const perPartition = 20
	want := map[string]bool{}
	var recs []*kgo.Record
	for p := range int32(6) {
		for i := range perPartition {
			v := fmt.Sprintf("p%d-%d-%x", p, i, rng.Uint32())
			want[v] = true
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: p, Value: []byte(v)})
		}
	}
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// Each partition's records reach every replica (replication factor 3):
	// the leader's high watermark counts them once the followers hold them.
	eventually(t, 10*time.Second, "every replica holds every record", func() error {
		for p := range leaders {
			for _, b := range c.brokers {
				tp, ok := b.reg.Get("orders")
				if !ok {
					return fmt.Errorf("node %d has no local topic orders", b.opts.NodeID)
				}
				part, _ := tp.Partition(p)
				if hw := part.Log().HighWatermark(); hw != perPartition {
					return fmt.Errorf("node %d holds %d records of partition %d, want %d", b.opts.NodeID, hw, p, perPartition)
				}
			}
		}
		return nil
	})
	// A group consumer: FindCoordinator names one broker for the group
	// whichever broker is asked, and the group's commits land there.
	ccl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics("orders"),
		kgo.ConsumerGroup("readers"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer ccl.Close()
	got := map[string]bool{}
	for len(got) < len(want) {
		fs := ccl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(got), len(want))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if !want[v] || got[v] {
				t.Fatalf("unexpected or duplicate record %q", v)
			}
			if !strings.HasPrefix(v, fmt.Sprintf("p%d-", r.Partition)) {
				t.Fatalf("record %q read from partition %d", v, r.Partition)
			}
			got[v] = true
		})
	}
	if err := ccl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	var coordinators []int32
	for _, b := range c.brokers {
		id, err := findCoordinator(ctx, direct[b.opts.NodeID], "readers")
		if err != nil {
			t.Fatal(err)
		}
		coordinators = append(coordinators, id)
	}
	if coordinators[0] < 1 || coordinators[0] != coordinators[1] || coordinators[1] != coordinators[2] {
		t.Fatalf("brokers name different coordinators for one group, or none: %v", coordinators)
	}
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, "readers")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(6) {
		if o, ok := offs.Lookup("orders", p); !ok || o.At != perPartition {
			t.Fatalf("committed offset of partition %d: %+v %v, want %d", p, o, ok, perPartition)
		}
	}
}

// TestClusterDataDirIdentity: a cluster node's data directory is bound at
// its first start to the cluster (named by its voters) and the node id; a
// restart with the same ones opens it, one with other voters or another id
// is refused with a message saying how to fix it, as is a single-node
// broker's directory holding topics.
func TestClusterDataDirIdentity(t *testing.T) {
	// Two controller addresses, freed for the nodes to bind again.
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		_ = ln.Close()
	}
	voters := fmt.Sprintf("1@%s,2@%s", addrs[0], addrs[1])
	dir := t.TempDir()
	open := func(id int32, voters string) error {
		t.Helper()
		opts := Options{NodeID: id, ControllerVoters: voters,
			Listen: "127.0.0.1:0", DataDir: dir, Logger: testLogger(), CleanInterval: -1}
		opts.cluster = clusterTestOptions{shutdownTimeout: 100 * time.Millisecond}
		b, err := Open(opts)
		if err != nil {
			return err
		}
		return b.Close()
	}
	if err := open(1, voters); err != nil {
		t.Fatalf("first start: %v", err)
	}
	if err := open(1, voters); err != nil {
		t.Fatalf("restart with the same voters: %v", err)
	}
	// A stopped cluster node's users and ACLs live in the metadata log:
	// editing its directory would do nothing, so it is refused.
	for what, err := range map[string]error{
		"user": SetSCRAMUser(dir, "u", SCRAMSHA512, "pw", 4096),
		"acl":  AddACLs(dir, prefixedACLs("User:u", "t")),
	} {
		if err == nil || !strings.Contains(err.Error(), "cluster node's data directory") || !strings.Contains(err.Error(), "--brokers") {
			t.Fatalf("%s in a cluster node's --data-dir: got %v", what, err)
		}
	}
	err := open(1, fmt.Sprintf("1@%s", addrs[0]))
	if err == nil || !strings.Contains(err.Error(), "belongs to cluster") || !strings.Contains(err.Error(), "fresh --data-dir") {
		t.Fatalf("other voters: got %v", err)
	}
	err = open(2, voters)
	if err == nil || !strings.Contains(err.Error(), "belongs to node 1") || !strings.Contains(err.Error(), "--node-id 1") {
		t.Fatalf("other node id: got %v", err)
	}

	// A directory of a single-node broker with topics is not adopted.
	dir = t.TempDir()
	b := startBroker(t, Options{DataDir: dir})
	if _, err := kadm.NewClient(newClient(t, b)).CreateTopic(context.Background(), 1, 1, nil, "mine"); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	err = open(1, voters)
	if err == nil || !strings.Contains(err.Error(), "single-node broker's topics (mine)") {
		t.Fatalf("single-node directory: got %v", err)
	}
}

// TestClusterLostQuorum: with two of three nodes gone the quorum is lost:
// an admin request fails with a retriable NOT_CONTROLLER and a message
// within its timeout, while the remaining broker keeps serving produce
// and fetch for the partitions it leads from its frozen metadata.
func TestClusterLostQuorum(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newClient(t, c.brokers[0])
	eventually(t, 15*time.Second, "three brokers registered", func() error {
		// NB: straight to the seed broker, past the client's metadata cache.
		m, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil || len(m.(*kmsg.MetadataResponse).Brokers) != 3 {
			return fmt.Errorf("%v %v", m, err)
		}
		return nil
	})
	// Explicit assignment: partition 0 on node 1.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t", -1, -1
	for p, n := range []int32{1, 2, 3} {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(p), []int32{n}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}
	for _, b := range c.brokers[1:] {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}

	req = kmsg.NewPtrCreateTopicsRequest()
	rt = kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "u", 1, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 1000
	start := time.Now()
	raw, err := cl.Broker(1).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got := raw.(*kmsg.CreateTopicsResponse).Topics[0]
	if got.ErrorCode != kerr.NotController.Code || got.ErrorMessage == nil || !strings.Contains(*got.ErrorMessage, "controller") {
		t.Fatalf("create without quorum: %v %v", kerr.ErrorForCode(got.ErrorCode), got.ErrorMessage)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("create without quorum took %v, beyond its 1s timeout", took)
	}

	pcl := newClient(t, c.brokers[0], kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset().AtStart()}}))
	if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: 0, Value: []byte("still here")}).FirstErr(); err != nil {
		t.Fatalf("produce to node 1's partition without quorum: %v", err)
	}
	fs := pcl.PollFetches(ctx)
	if err := fs.Err(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "still here" {
		t.Fatalf("fetch without quorum: %v, %d records", err, fs.NumRecords())
	}
}

// TestClusterAdminForwarded: admin requests sent to any broker reach the
// controller, and every broker's local topics follow the metadata: a
// topic auto-created by a producer's Metadata request, partitions added,
// and a topic deleted.
func TestClusterAdminForwarded(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newClient(t, c.brokers[1], kgo.AllowAutoTopicCreation())
	eventually(t, 15*time.Second, "three brokers registered", func() error {
		m, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil || len(m.(*kmsg.MetadataResponse).Brokers) != 3 {
			return fmt.Errorf("%v %v", m, err)
		}
		return nil
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to an auto-created topic: %v", err)
	}
	localParts := func(name string) []int32 {
		var out []int32
		for _, b := range c.brokers {
			tp, ok := b.reg.Get(name)
			if !ok {
				out = append(out, -1)
				continue
			}
			out = append(out, tp.NumPartitions())
		}
		return out
	}
	eventually(t, 5*time.Second, "auto is local on every broker", func() error {
		if got := localParts("auto"); !slices.Equal(got, []int32{1, 1, 1}) {
			return fmt.Errorf("local partitions per broker %v", got)
		}
		return nil
	})
	adm := kadm.NewClient(newClient(t, c.brokers[2]))
	if _, err := adm.CreatePartitions(ctx, 3, "auto"); err != nil { // 3 more: 4 in all
		t.Fatalf("create partitions: %v", err)
	}
	eventually(t, 5*time.Second, "auto grew on every broker", func() error {
		if got := localParts("auto"); !slices.Equal(got, []int32{4, 4, 4}) {
			return fmt.Errorf("local partitions per broker %v", got)
		}
		return nil
	})
	// Internal topics are each broker's own: a Metadata request that would
	// auto-create one does not create it through the controller.
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("__consumer_offsets")
	mreq.Topics, mreq.AllowAutoTopicCreation = append(mreq.Topics, mt), true
	if _, err := cl.SeedBrokers()[0].Request(ctx, mreq); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.brokers[0].cn.Image().Topic("__consumer_offsets"); ok {
		t.Fatal("__consumer_offsets was created in the cluster metadata")
	}
	if r, err := adm.DeleteTopic(ctx, "auto"); err != nil || r.Err != nil {
		t.Fatalf("delete: %v %v", err, r.Err)
	}
	eventually(t, 5*time.Second, "auto deleted on every broker", func() error {
		if got := localParts("auto"); !slices.Equal(got, []int32{-1, -1, -1}) {
			return fmt.Errorf("local partitions per broker %v", got)
		}
		return nil
	})
}

// TestClusterControllerOnlyNode: a node with --roles controller votes and
// may be the controller, but does not register as a broker: clients see
// the other two brokers only, and a replication factor of 3 is refused; its
// image becomes ready all the same.
func TestClusterControllerOnlyNode(t *testing.T) {
	c := startTestClusterRoles(t, []string{"", "", "controller"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newClient(t, c.brokers[0])
	eventually(t, 15*time.Second, "two brokers registered", func() error {
		raw, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil {
			return err
		}
		m := raw.(*kmsg.MetadataResponse)
		var ids []int32
		for _, b := range m.Brokers {
			ids = append(ids, b.NodeID)
		}
		slices.Sort(ids)
		// The controller clients are told of is a broker they can reach,
		// even when the raft leader is the controller-only node.
		if !slices.Equal(ids, []int32{1, 2}) || (m.ControllerID != 1 && m.ControllerID != 2) {
			return fmt.Errorf("brokers %v, controller %d", ids, m.ControllerID)
		}
		return nil
	})
	r, _ := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, nil, "three")
	if !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 3 with 2 brokers: %v", r.Err)
	}
	// It registers no broker, yet its image becomes ready: SASL and ACLs
	// on its listener wait for that.
	eventually(t, 15*time.Second, "the controller-only node's image ready", func() error {
		return imageReady(c.brokers[2].cn)
	})
}

// TestSingleNodeWritesNoClusterState: without voters a broker is the
// single-node broker: no raft storage, no cluster identity in its data
// directory, and it answers as its own controller.
func TestSingleNodeWritesNoClusterState(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, Options{DataDir: dir})
	if b.cn != nil {
		t.Fatal("single-node broker has a cluster node")
	}
	raw, err := newClient(t, b).SeedBrokers()[0].Request(context.Background(), kmsg.NewPtrMetadataRequest())
	if err != nil {
		t.Fatal(err)
	}
	if m := raw.(*kmsg.MetadataResponse); len(m.Brokers) != 1 || m.ControllerID != b.opts.NodeID {
		t.Fatalf("metadata: brokers %v, controller %d", m.Brokers, m.ControllerID)
	}
	for _, name := range []string{"cluster.json", "metadata-raft"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s in a single-node data directory: %v", name, err)
		}
	}
}
