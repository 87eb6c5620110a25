package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterNewLeaderServesAtOnce: a broker whose own Metadata answer
// names it the leader of a new topic's partition takes a produce sent to
// it right after, without NOT_LEADER_OR_FOLLOWER. (The answer comes from
// the metadata image, which a broker applies before its replica manager
// takes the role; a client refused there waits for a metadata refresh that
// sends it back.) 8 topics of 3 partitions, each leader produced to as
// soon as it names itself.
func TestClusterNewLeaderServesAtOnce(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, adm := c.adminWithController(t, ctx)
	produced := 0
	for i := range 8 {
		name := fmt.Sprintf("ready%d", i)
		if r, err := adm.CreateTopic(ctx, 3, 3, nil, name); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, r.Err)
		}
		for id := int32(1); id <= 3; id++ {
			b := cl.Broker(int(id))
			var leads []int32
			eventually(t, 10*time.Second, fmt.Sprintf("broker %d's metadata of %s", id, name), func() error {
				req := kmsg.NewPtrMetadataRequest()
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(name)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, b)
				if err != nil {
					return err
				}
				if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 3 {
					return fmt.Errorf("%s not (fully) known yet", name)
				}
				leads = leads[:0]
				for _, p := range resp.Topics[0].Partitions {
					if p.Leader < 0 {
						return fmt.Errorf("%s partition %d has no leader yet", name, p.Partition)
					}
					if p.Leader == id {
						leads = append(leads, p.Partition)
					}
				}
				return nil
			})
			for _, p := range leads {
				req := kmsg.NewPtrProduceRequest()
				req.Acks = 1
				req.TimeoutMillis = 5000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = name
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition = p
				rp.Records = rawBatch("first")
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, b)
				if err != nil {
					t.Fatalf("produce to %s/%d on broker %d: %v", name, p, id, err)
				}
				if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
					t.Fatalf("produce to %s/%d on broker %d, which its metadata names the leader: %v", name, p, id, kerr.ErrorForCode(code))
				}
				produced++
			}
		}
	}
	if produced != 8*3 {
		t.Fatalf("produced to %d partitions, want %d", produced, 8*3)
	}
}
