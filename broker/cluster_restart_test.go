package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterRestartKeepsLocalLogs: a node restarted on its data
// directory keeps its partitions' records. Its image is rebuilt from the
// raft log at start, and until it holds every entry committed before the
// restart its topics must not be judged absent from the cluster (a
// reconcile on the partial image deleted and recreated them empty).
func TestClusterRestartKeepsLocalLogs(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.waitBrokers(t, ctx, 3)
	// Partition p on node p+1 alone, so every record stays where it was
	// written.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "keep", -1, -1
	for p := range int32(3) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, []int32{p + 1}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	if out := c.request(t, ctx, 1, req).(*kmsg.CreateTopicsResponse); out.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v", out.Topics[0])
	}
	c.waitLocal(t, "keep")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 10
	var recs []*kgo.Record
	for p := range int32(3) {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: "keep", Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	before, _ := c.brokers[1].reg.Get("keep")
	for _, i := range []int{1, 0} { // a follower of the raft leader or the leader itself, then node 1
		c.restart(t, i, nil)
		b := c.brokers[i]
		eventually(t, 15*time.Second, fmt.Sprintf("node %d serves its partition again", i+1), func() error {
			lt, ok := b.reg.Get("keep")
			if !ok {
				return fmt.Errorf("node %d holds no local topic", i+1)
			}
			lp, _ := lt.Partition(int32(i))
			if end, hw := lp.Log().LogEndOffset(), lp.Log().HighWatermark(); end != n || hw != n {
				return fmt.Errorf("node %d's partition %d ends at %d (high watermark %d), want %d", i+1, i, end, hw, n)
			}
			if lt.ID() != before.ID() {
				return fmt.Errorf("node %d's topic id changed", i+1)
			}
			return nil
		})
	}
	// Every record is still read from its partition's leader.
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics("keep"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := 0
	for got < 3*n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			var leaders []int32
			for _, p := range c.brokers[2].cn.View().Topics["keep"].Partitions {
				leaders = append(leaders, p.Leader)
			}
			t.Fatalf("read %d of %d records: %v (leaders by partition: %v)", got, 3*n, err, leaders)
		}
		got += fs.NumRecords()
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
	}
}
