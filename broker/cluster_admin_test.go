package broker

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// waitBrokers waits until every node of c shows n unfenced brokers.
func (c *testCluster) waitBrokers(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%d brokers registered", n), func() error {
		for _, b := range c.brokers {
			if b.cn == nil {
				continue
			}
			if got := len(b.cn.View().Brokers); got != n {
				return fmt.Errorf("node %d sees %d brokers", b.opts.NodeID, got)
			}
		}
		return nil
	})
}

// waitLocal waits until every node holds topic's local logs (created by
// its reconciler from the image), so that a leader serves at once.
func (c *testCluster) waitLocal(t *testing.T, topic string) {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("every node holds %s", topic), func() error {
		for _, b := range c.brokers {
			ct := b.cn.View().Topics[topic]
			lt, ok := b.reg.Get(topic)
			if ct == nil || !ok || lt.ID() != ct.ID || int(lt.NumPartitions()) != len(ct.Partitions) {
				return fmt.Errorf("node %d does not hold it yet", b.opts.NodeID)
			}
		}
		return nil
	})
}

// request sends req straight to node id (no client routing) and returns
// the reply.
func (c *testCluster) request(t *testing.T, ctx context.Context, id int32, req kmsg.Request) kmsg.Response {
	t.Helper()
	cl := newClient(t, c.brokers[id-1])
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("%s to node %d: %v", kmsg.NameForKey(req.Key()), id, err)
	}
	return resp
}

// restart closes node i (0-based) and opens it again on the same data
// directory and controller address; between the two, while (when not nil)
// waits for what the test wants to see happen without the node.
func (c *testCluster) restart(t *testing.T, i int, while func()) {
	t.Helper()
	old := c.brokers[i]
	if err := old.Close(); err != nil {
		t.Fatalf("close node %d: %v", i+1, err)
	}
	if while != nil {
		while()
	}
	opts := old.opts
	var ln net.Listener
	if old.opts.cluster.controllerListener != nil { // a voter
		var err error
		ln, err = net.Listen("tcp", opts.cluster.controllerListener.Addr().String())
		if err != nil {
			t.Fatalf("node %d's controller address again: %v", i+1, err)
		}
	}
	opts.cluster.controllerListener = ln
	b, err := Open(opts)
	if err != nil {
		if ln != nil {
			_ = ln.Close()
		}
		t.Fatalf("reopen node %d: %v", i+1, err)
	}
	c.brokers[i] = b
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close node %d: %v", i+1, err)
		}
	})
}

// describeTopicConfigs returns a topic's configs as node id describes
// them: value and source by name.
func (c *testCluster) describeTopicConfigs(t *testing.T, ctx context.Context, id int32, topic string) (map[string]string, error) {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	req.Resources = append(req.Resources, rr)
	resp := c.request(t, ctx, id, req).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		return nil, fmt.Errorf("describe %q on node %d: %+v", topic, id, resp.Resources)
	}
	out := map[string]string{}
	for _, cfg := range resp.Resources[0].Configs {
		if cfg.Source == kmsg.ConfigSourceDynamicTopicConfig {
			out[cfg.Name] = *cfg.Value
		}
	}
	return out, nil
}

// TestClusterAlterConfigs: config changes of a topic made through any
// broker go through the controller: every broker describes them from its
// image and applies them to its local logs; AlterConfigs replaces the
// whole set; bad configs are refused per resource with a message, and
// broker configs stay read-only, as on a single node.
func TestClusterAlterConfigs(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.waitBrokers(t, ctx, 3)
	if r, err := kadm.NewClient(newClient(t, c.brokers[0])).CreateTopic(ctx, 3, 1, nil, "cfg"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}

	// Through node 2: set retention.ms, append to cleanup.policy (from its
	// default, delete).
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "cfg"
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("123456")},
		{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: kmsg.StringPtr("compact")},
	}
	inc.Resources = append(inc.Resources, res)
	out := c.request(t, ctx, 2, inc).(*kmsg.IncrementalAlterConfigsResponse)
	if len(out.Resources) != 1 || out.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter through node 2: %+v", out.Resources)
	}
	want := map[string]string{"retention.ms": "123456", "cleanup.policy": "delete,compact"}
	// Node 2 answered once its image had the change: it describes it at
	// once; the others within a moment.
	if got, err := c.describeTopicConfigs(t, ctx, 2, "cfg"); err != nil || !maps.Equal(got, want) {
		t.Fatalf("node 2 describes %v (%v) right after its alter, want %v", got, err, want)
	}
	eventually(t, 5*time.Second, "every broker describes and applies the change", func() error {
		for _, b := range c.brokers {
			id := b.opts.NodeID
			if got, err := c.describeTopicConfigs(t, ctx, id, "cfg"); err != nil || !maps.Equal(got, want) {
				return fmt.Errorf("node %d describes %v (%v)", id, got, err)
			}
			lt, ok := b.reg.Get("cfg")
			if !ok {
				return fmt.Errorf("node %d has no local topic", id)
			}
			if lc := lt.LogConfig(); lc.RetentionMS != 123456 || !lc.Compact || !lc.Delete {
				return fmt.Errorf("node %d's logs run with %+v", id, lc)
			}
		}
		return nil
	})

	// Refusals, each resource on its own: an unknown key, a bad value, a
	// broker resource (read-only), an unknown topic; the good one of the
	// same request goes through.
	inc = kmsg.NewPtrIncrementalAlterConfigsRequest()
	add := func(typ kmsg.ConfigResourceType, name, key, value string, op kmsg.IncrementalAlterConfigOp) {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = typ, name
		r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: key, Op: op, Value: kmsg.StringPtr(value)}}
		inc.Resources = append(inc.Resources, r)
	}
	if r, err := kadm.NewClient(newClient(t, c.brokers[0])).CreateTopic(ctx, 1, 1, nil, "cfg2"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	if r, err := kadm.NewClient(newClient(t, c.brokers[0])).CreateTopic(ctx, 1, 1, nil, "cfg3"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	add(kmsg.ConfigResourceTypeTopic, "cfg", "no.such.config", "1", kmsg.IncrementalAlterConfigOpSet)
	add(kmsg.ConfigResourceTypeBroker, "1", "num.io.threads", "4", kmsg.IncrementalAlterConfigOpSet)
	add(kmsg.ConfigResourceTypeTopic, "cfg2", "retention.ms", "soon", kmsg.IncrementalAlterConfigOpSet)
	add(kmsg.ConfigResourceTypeTopic, "nope", "retention.ms", "1", kmsg.IncrementalAlterConfigOpSet)
	add(kmsg.ConfigResourceTypeTopic, "cfg3", "segment.ms", "5000", kmsg.IncrementalAlterConfigOpSet)
	add(kmsg.ConfigResourceTypeTopic, "cfg2", "retention.ms", "5", kmsg.IncrementalAlterConfigOpAppend)
	// Same resource twice (cfg2) is refused for both.
	out = c.request(t, ctx, 3, inc).(*kmsg.IncrementalAlterConfigsResponse)
	type verdict struct {
		name string
		code int16
		msg  string // a substring of the message
	}
	wantV := []verdict{
		{"cfg", kerr.InvalidConfig.Code, "no.such.config"},
		{"1", kerr.InvalidRequest.Code, "read-only"},
		{"cfg2", kerr.InvalidRequest.Code, "more than once"},
		{"nope", kerr.UnknownTopicOrPartition.Code, "nope"},
		{"cfg3", 0, ""},
		{"cfg2", kerr.InvalidRequest.Code, "more than once"},
	}
	if len(out.Resources) != len(wantV) {
		t.Fatalf("%d resources answered, want %d: %+v", len(out.Resources), len(wantV), out.Resources)
	}
	for i, w := range wantV {
		got := out.Resources[i]
		msg := ""
		if got.ErrorMessage != nil {
			msg = *got.ErrorMessage
		}
		if got.ResourceName != w.name || got.ErrorCode != w.code || !strings.Contains(msg, w.msg) {
			t.Errorf("resource %d: %q %v %q, want %q %v containing %q", i, got.ResourceName,
				kerr.ErrorForCode(got.ErrorCode), msg, w.name, kerr.ErrorForCode(w.code), w.msg)
		}
	}
	// A bad value alone, to see its message.
	inc = kmsg.NewPtrIncrementalAlterConfigsRequest()
	add(kmsg.ConfigResourceTypeTopic, "cfg2", "retention.ms", "soon", kmsg.IncrementalAlterConfigOpSet)
	add(kmsg.ConfigResourceTypeTopic, "cfg3", "retention.ms", "1", kmsg.IncrementalAlterConfigOpAppend)
	out = c.request(t, ctx, 1, inc).(*kmsg.IncrementalAlterConfigsResponse)
	for i, w := range []string{`retention.ms: "soon" is not an integer`, "not a list config"} {
		got := out.Resources[i]
		if got.ErrorCode != kerr.InvalidConfig.Code || got.ErrorMessage == nil || !strings.Contains(*got.ErrorMessage, w) {
			t.Errorf("resource %d: %v %v, want INVALID_CONFIG containing %q", i, kerr.ErrorForCode(got.ErrorCode), got.ErrorMessage, w)
		}
	}
	// Node 3 answered the mixed request once its image had the change.
	if got, err := c.describeTopicConfigs(t, ctx, 3, "cfg3"); err != nil || !maps.Equal(got, map[string]string{"segment.ms": "5000"}) {
		t.Fatalf("cfg3 after the mixed request: %v %v", got, err)
	}

	// kadm, routed as a client routes: set and describe through the cluster.
	adm := kadm.NewClient(newClient(t, c.brokers[2]))
	kr, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kmsg.StringPtr("2048")}}, "cfg3")
	if err != nil || kr[0].Err != nil {
		t.Fatalf("kadm alter: %v %+v", err, kr)
	}
	eventually(t, 5*time.Second, "kadm describes the change through every broker", func() error {
		for _, b := range c.brokers {
			rcs, err := kadm.NewClient(newClient(t, b)).DescribeTopicConfigs(ctx, "cfg3")
			if err != nil {
				return err
			}
			rc, err := rcs.On("cfg3", nil)
			if err != nil {
				return err
			}
			got := "<absent>"
			for _, cfg := range rc.Configs {
				if cfg.Key == "max.message.bytes" {
					got = deref(cfg.Value)
				}
			}
			if got != "2048" {
				return fmt.Errorf("node %d: max.message.bytes %s", b.opts.NodeID, got)
			}
		}
		return nil
	})

	// AlterConfigs through node 3 replaces cfg's whole set.
	alt := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeTopic, "cfg"
	ar.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "segment.ms", Value: kmsg.StringPtr("60000")}}
	alt.Resources = append(alt.Resources, ar)
	br := kmsg.NewAlterConfigsRequestResource()
	br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, ""
	alt.Resources = append(alt.Resources, br)
	aout := c.request(t, ctx, 3, alt).(*kmsg.AlterConfigsResponse)
	if len(aout.Resources) != 2 || aout.Resources[0].ErrorCode != 0 || aout.Resources[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("AlterConfigs through node 3: %+v", aout.Resources)
	}
	want = map[string]string{"segment.ms": "60000"}
	eventually(t, 5*time.Second, "every broker describes and applies the replaced set", func() error {
		for _, b := range c.brokers {
			id := b.opts.NodeID
			if got, err := c.describeTopicConfigs(t, ctx, id, "cfg"); err != nil || !maps.Equal(got, want) {
				return fmt.Errorf("node %d describes %v (%v)", id, got, err)
			}
			lt, _ := b.reg.Get("cfg")
			if lc := lt.LogConfig(); lc.SegmentMS != 60000 || lc.RetentionMS == 123456 || lc.Compact {
				return fmt.Errorf("node %d's logs run with %+v", id, lc)
			}
		}
		return nil
	})
}

// TestClusterDeleteRecords: DeleteRecords is served by each partition's
// leader: kadm (which routes by leader) moves every partition's log start;
// a broker that does not lead a partition answers NOT_LEADER_OR_FOLLOWER
// and leaves the leader's log alone.
func TestClusterDeleteRecords(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.waitBrokers(t, ctx, 3)
	// Partition p on node p+1.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "dr", -1, -1
	for p := range int32(3) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, []int32{p + 1}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	if out := c.request(t, ctx, 1, req).(*kmsg.CreateTopicsResponse); out.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v", out.Topics[0])
	}
	c.waitLocal(t, "dr")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range int32(3) {
		for i := range 10 {
			recs = append(recs, &kgo.Record{Topic: "dr", Partition: p, Value: []byte(fmt.Sprint(i))})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	logStart := func(p int32) int64 {
		lt, _ := c.brokers[p].reg.Get("dr")
		lp, _ := lt.Partition(p)
		return int64(lp.Log().LogStartOffset())
	}

	// Node 1 does not lead partitions 1 and 2: refused, logs untouched.
	dreq := kmsg.NewPtrDeleteRecordsRequest()
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "dr"
	for p := range int32(3) {
		dp := kmsg.NewDeleteRecordsRequestTopicPartition()
		dp.Partition, dp.Offset = p, 4
		dt.Partitions = append(dt.Partitions, dp)
	}
	dreq.Topics = append(dreq.Topics, dt)
	dreq.TimeoutMillis = 5000
	dout := c.request(t, ctx, 1, dreq).(*kmsg.DeleteRecordsResponse)
	got := map[int32]int16{}
	for _, ot := range dout.Topics {
		for _, op := range ot.Partitions {
			got[op.Partition] = op.ErrorCode
		}
	}
	wantCodes := map[int32]int16{0: 0, 1: kerr.NotLeaderForPartition.Code, 2: kerr.NotLeaderForPartition.Code}
	for p, w := range wantCodes {
		if got[p] != w {
			t.Errorf("DeleteRecords of partition %d on node 1: %v, want %v", p, kerr.ErrorForCode(got[p]), kerr.ErrorForCode(w))
		}
	}
	if s0, s1, s2 := logStart(0), logStart(1), logStart(2); s0 != 4 || s1 != 0 || s2 != 0 {
		t.Fatalf("log starts after node 1's DeleteRecords: %d %d %d, want 4 0 0", s0, s1, s2)
	}

	// kadm routes each partition to its leader.
	os := kadm.Offsets{}
	for p := range int32(3) {
		os.Add(kadm.Offset{Topic: "dr", Partition: p, At: 7})
	}
	rs, err := kadm.NewClient(cl).DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Error(); err != nil {
		t.Fatalf("kadm DeleteRecords: %v", err)
	}
	for p := range int32(3) {
		if r, ok := rs.Lookup("dr", p); !ok || r.LowWatermark != 7 || logStart(p) != 7 {
			t.Errorf("partition %d: %+v, leader's log start %d, want 7", p, r, logStart(p))
		}
	}
}

// initProducerID asks node id for a producer id.
func (c *testCluster) initProducerID(t *testing.T, ctx context.Context, id int32) int64 {
	t.Helper()
	var pid int64
	eventually(t, 10*time.Second, fmt.Sprintf("a producer id from node %d", id), func() error {
		resp := c.request(t, ctx, id, kmsg.NewPtrInitProducerIDRequest()).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 {
			return kerr.ErrorForCode(resp.ErrorCode)
		}
		pid = resp.ProducerID
		return nil
	})
	return pid
}

// TestClusterProducerIDs: producer ids handed out by every broker are
// distinct, also after the active controller is restarted (a controller
// change and a broker restart in one), and an idempotent producer on each
// broker works.
func TestClusterProducerIDs(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.waitBrokers(t, ctx, 3)
	seen := map[int64]int32{}
	take := func(round string) {
		t.Helper()
		for _, b := range c.brokers {
			for range 3 {
				id := b.opts.NodeID
				pid := c.initProducerID(t, ctx, id)
				if other, dup := seen[pid]; dup {
					t.Fatalf("%s: node %d handed out producer id %d, already handed out by node %d", round, id, pid, other)
				}
				seen[pid] = id
			}
		}
	}
	take("first round")

	ctl := int(c.brokers[0].cn.Status().Leader)
	if ctl < 1 {
		t.Fatal("no raft leader")
	}
	t.Logf("restarting the active controller, node %d", ctl)
	c.restart(t, ctl-1, func() {
		eventually(t, 15*time.Second, "another controller", func() error {
			for i, b := range c.brokers {
				if i == ctl-1 {
					continue // stopped
				}
				if l := int(b.cn.Status().Leader); l == 0 || l == ctl {
					return fmt.Errorf("node %d sees leader %d", b.opts.NodeID, l)
				}
			}
			return nil
		})
	})
	c.waitBrokers(t, ctx, 3)
	take("after the controller's restart")

	// Idempotent producers (kgo's default) on every broker.
	for _, b := range c.brokers {
		cl := newClient(t, b, kgo.AllowAutoTopicCreation())
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "pids", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("idempotent produce through node %d: %v", b.opts.NodeID, err)
		}
	}
	if got := len(seen); got != 18 {
		t.Fatalf("%d distinct ids, want 18", got)
	}
	ids := make([]int64, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	t.Logf("producer ids %v", ids)
}

// TestClusterQuorumCutOff: every link between the three voters is cut
// (the fault layer on their node-to-node connections; clients keep their
// direct ones), so no node has a quorum. Admin requests to node 1 fail
// within their timeout with NOT_CONTROLLER (retriable) and a message
// naming the lost quorum; its metadata stays as it was (frozen, not
// wrong: no broker is fenced, no leader moves, configs still describe);
// produce and fetch to the partitions node 1 and node 2 lead keep
// working, idempotent producers included. Once the links heal, admin
// requests succeed again.
func TestClusterQuorumCutOff(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("fault layer seed %d", seed)
	fnet := faultnet.New(seed, testLogger())
	c := startTestClusterWith(t, make([]string, 3), func(i int, o *Options) {
		fnet.Register(uint64(i+1), o.cluster.controllerListener.Addr().String())
		d := fnet.Dialer(uint64(i + 1))
		o.cluster.dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.waitBrokers(t, ctx, 3)
	// Partition p led by node p+1; a config to describe later.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t", -1, -1
	rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: kmsg.StringPtr("777000")}}
	for p := range int32(3) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, []int32{p + 1}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	if out := c.request(t, ctx, 1, req).(*kmsg.CreateTopicsResponse); out.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v", out.Topics[0])
	}
	// Every broker holds a producer-id block before the cut.
	for _, b := range c.brokers {
		c.initProducerID(t, ctx, b.opts.NodeID)
	}
	c.waitLocal(t, "t")
	metadataOf := func() (brokers []int32, leaders []int32) {
		t.Helper()
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("t")
		mreq.Topics = append(mreq.Topics, mt)
		m := c.request(t, ctx, 1, mreq).(*kmsg.MetadataResponse)
		for _, b := range m.Brokers {
			brokers = append(brokers, b.NodeID)
		}
		slices.Sort(brokers)
		for _, p := range m.Topics[0].Partitions {
			leaders = append(leaders, p.Leader)
		}
		return brokers, leaders
	}
	brokersBefore, leadersBefore := metadataOf()
	if !slices.Equal(brokersBefore, []int32{1, 2, 3}) || !slices.Equal(leadersBefore, []int32{1, 2, 3}) {
		t.Fatalf("before the cut: brokers %v, leaders %v", brokersBefore, leadersBefore)
	}

	for i := uint64(1); i <= 3; i++ {
		for j := uint64(1); j <= 3; j++ {
			if i != j {
				fnet.Cut(i, j)
			}
		}
	}
	t.Log("every link between the voters cut")

	// Admin requests: each fails within its timeout, retriably, saying why.
	check := func(what string, timeout time.Duration, send func() (int16, *string)) {
		t.Helper()
		start := time.Now()
		code, msg := send()
		took := time.Since(start)
		if code != kerr.NotController.Code || msg == nil || !strings.Contains(*msg, "metadata quorum") {
			t.Errorf("%s without quorum: %v %q, want NOT_CONTROLLER naming the metadata quorum", what, kerr.ErrorForCode(code), deref(msg))
		} else {
			t.Logf("%s without quorum: %v after %v: %s", what, kerr.ErrorForCode(code), took.Round(time.Millisecond), *msg)
		}
		if took > timeout+2*time.Second {
			t.Errorf("%s without quorum took %v, beyond its %v timeout", what, took, timeout)
		}
	}
	check("CreateTopics", time.Second, func() (int16, *string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "u", 1, 1
		req.Topics, req.TimeoutMillis = append(req.Topics, rt), 1000
		got := c.request(t, ctx, 1, req).(*kmsg.CreateTopicsResponse).Topics[0]
		return got.ErrorCode, got.ErrorMessage
	})
	check("DeleteTopics", time.Second, func() (int16, *string) {
		req := kmsg.NewPtrDeleteTopicsRequest()
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = kmsg.StringPtr("t")
		req.Topics, req.TopicNames, req.TimeoutMillis = []kmsg.DeleteTopicsRequestTopic{dt}, []string{"t"}, 1000
		got := c.request(t, ctx, 1, req).(*kmsg.DeleteTopicsResponse).Topics[0]
		return got.ErrorCode, got.ErrorMessage
	})
	check("IncrementalAlterConfigs", 5*time.Second, func() (int16, *string) {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("1")}}
		req.Resources = append(req.Resources, r)
		got := c.request(t, ctx, 1, req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
		return got.ErrorCode, got.ErrorMessage
	})

	// Frozen, not wrong: past the session timeout (3 s here) nobody was
	// fenced, no leader moved, and configs describe as before.
	if b, l := metadataOf(); !slices.Equal(b, brokersBefore) || !slices.Equal(l, leadersBefore) {
		t.Fatalf("metadata without quorum: brokers %v, leaders %v; before: %v, %v", b, l, brokersBefore, leadersBefore)
	}
	if got, err := c.describeTopicConfigs(t, ctx, 1, "t"); err != nil || got["retention.ms"] != "777000" {
		t.Fatalf("configs without quorum: %v %v", got, err)
	}

	// Produce and fetch on the partitions node 1 and node 2 lead, with an
	// idempotent producer started after the cut.
	for _, p := range []int32{0, 1} {
		b := c.brokers[p]
		cl := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {p: kgo.NewOffset().AtStart()}}))
		v := fmt.Sprintf("still here %d", p)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d (node %d) without quorum: %v", p, b.opts.NodeID, err)
		}
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != v {
			t.Fatalf("fetch partition %d without quorum: %v, %d records", p, err, fs.NumRecords())
		}
	}

	fnet.HealAll()
	t.Log("links healed")
	eventually(t, 20*time.Second, "an admin request through node 1 succeeds again", func() error {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("888000")}}
		req.Resources = append(req.Resources, r)
		got := c.request(t, ctx, 1, req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
		if got.ErrorCode != 0 {
			return fmt.Errorf("%v %v", kerr.ErrorForCode(got.ErrorCode), got.ErrorMessage)
		}
		return nil
	})
}

// TestClusterDeleteTopicsOldVersion: a DeleteTopics of a version before 6
// (names in TopicNames, as kafka-python and older clients send it) is
// forwarded with its names and deletes the topic; before, the controller
// saw an empty request and the reply listed no topic.
func TestClusterDeleteTopicsOldVersion(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.waitBrokers(t, ctx, 3)
	if r, err := kadm.NewClient(newClient(t, c.brokers[0])).CreateTopic(ctx, 1, 1, nil, "old"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	cl := newClient(t, c.brokers[1], kgo.MaxVersions(kversion.V2_4_0())) // DeleteTopics v4
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames, req.TimeoutMillis = []string{"old"}, 5000
	raw, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := raw.(*kmsg.DeleteTopicsResponse)
	if resp.Version != 4 || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "old" {
		t.Fatalf("DeleteTopics v%d: %+v", resp.Version, resp.Topics)
	}
	eventually(t, 5*time.Second, "old gone from every node", func() error {
		for _, b := range c.brokers {
			if _, ok := b.cn.Image().Topic("old"); ok {
				return fmt.Errorf("node %d still has it", b.opts.NodeID)
			}
		}
		return nil
	})
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestClusterBrokerOnlyNode: three voters and node 4 with --roles broker,
// which is no voter and follows the metadata log by fetching it from the
// voters. It registers and is listed by every broker; a topic created
// through it (forwarded) with partition 0 on it is served by it, produce
// and consume; a config changed through a voter reaches its image and its
// logs; restarted (no raft storage: it rebuilds its image from a voter), it
// serves its partition again with its records.
func TestClusterBrokerOnlyNode(t *testing.T) {
	c := startTestClusterRoles(t, []string{"", "", "", "broker"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.waitBrokers(t, ctx, 4)
	if st := c.brokers[3].cn.Status(); st.Role != "observer" || st.Leader == 0 || st.Leader == 4 {
		t.Fatalf("node 4's quorum status: %+v", st)
	}
	if voters := c.brokers[0].cn.QuorumState().Voters; !slices.Equal(voters, []int32{1, 2, 3}) {
		t.Fatalf("voters %v, want 1 2 3", voters)
	}
	// DescribeQuorum from node 4: the voters, and itself as an observer.
	dq := kmsg.NewPtrDescribeQuorumRequest()
	dt := kmsg.NewDescribeQuorumRequestTopic()
	dt.Topic = "__cluster_metadata"
	dt.Partitions = append(dt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	dq.Topics = append(dq.Topics, dt)
	qp := c.request(t, ctx, 4, dq).(*kmsg.DescribeQuorumResponse).Topics[0].Partitions[0]
	var qv []int32
	for _, v := range qp.CurrentVoters {
		qv = append(qv, v.ReplicaID)
	}
	if qp.ErrorCode != 0 || !slices.Equal(qv, []int32{1, 2, 3}) || len(qp.Observers) != 1 || qp.Observers[0].ReplicaID != 4 || qp.Observers[0].LogEndOffset <= 0 || qp.LeaderID < 1 {
		t.Fatalf("DescribeQuorum from node 4: %v, leader %d, voters %v, observers %+v", kerr.ErrorForCode(qp.ErrorCode), qp.LeaderID, qv, qp.Observers)
	}

	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "b4", -1, -1
	for p, n := range []int32{4, 1} {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(p), []int32{n}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics, req.TimeoutMillis = append(req.Topics, rt), 5000
	if out := c.request(t, ctx, 4, req).(*kmsg.CreateTopicsResponse); out.Topics[0].ErrorCode != 0 {
		t.Fatalf("create through node 4: %v %v", kerr.ErrorForCode(out.Topics[0].ErrorCode), deref(out.Topics[0].ErrorMessage))
	}
	c.waitLocal(t, "b4")
	produce := func(v string) {
		t.Helper()
		cl := newClient(t, c.brokers[3], kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "b4", Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to node 4's partition: %v", err)
		}
	}
	consume := func(want ...string) {
		t.Helper()
		cl := newClient(t, c.brokers[0], kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"b4": {0: kgo.NewOffset().AtStart()}}))
		var got []string
		for len(got) < len(want) {
			fs := cl.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatalf("consume node 4's partition: %v (got %v)", err, got)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if !slices.Equal(got, want) {
			t.Fatalf("consumed %v, want %v", got, want)
		}
	}
	produce("one")
	consume("one")
	lt, _ := c.brokers[3].reg.Get("b4")
	if lp, _ := lt.Partition(0); lp.Log().HighWatermark() != 1 {
		t.Fatalf("node 4's log of partition 0 holds %d records, want 1", lp.Log().HighWatermark())
	}

	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "b4"
	r.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("4444")}}
	inc.Resources = append(inc.Resources, r)
	if out := c.request(t, ctx, 2, inc).(*kmsg.IncrementalAlterConfigsResponse); out.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter through node 2: %+v", out.Resources[0])
	}
	eventually(t, 5*time.Second, "node 4 describes and applies the change", func() error {
		got, err := c.describeTopicConfigs(t, ctx, 4, "b4")
		if err != nil || got["retention.ms"] != "4444" {
			return fmt.Errorf("%v %v", got, err)
		}
		lt, _ := c.brokers[3].reg.Get("b4")
		if rms := lt.LogConfig().RetentionMS; rms != 4444 {
			return fmt.Errorf("node 4's logs run with retention.ms %d", rms)
		}
		return nil
	})

	c.restart(t, 3, nil)
	c.waitBrokers(t, ctx, 4)
	eventually(t, 10*time.Second, "node 4 serves its partition again", func() error {
		cl := newClient(t, c.brokers[3], kgo.RecordPartitioner(kgo.ManualPartitioner()))
		return cl.ProduceSync(ctx, &kgo.Record{Topic: "b4", Partition: 0, Value: []byte("two")}).FirstErr()
	})
	consume("one", "two")
}
