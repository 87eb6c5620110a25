package protocol

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// committedOffsets asks the broker, with a raw OffsetFetch naming the
// partitions, what group has committed for topic's partitions 0..n-1 (-1:
// nothing).
func committedOffsets(t *testing.T, b *groupBroker, group, topic string, n int32) []int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	for p := range n {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), b.client())
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("offset fetch: error code %d", resp.ErrorCode)
	}
	out := make([]int64, n)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("offset fetch %s/%d: error code %d", rt.Topic, rp.Partition, rp.ErrorCode)
			}
			out[rp.Partition] = rp.Offset
		}
	}
	return out
}

func TestDeleteTopicDropsCommittedOffsets(t *testing.T) {
	b := startGroupBroker(t, testGroupOptions())
	ctx := context.Background()
	adm := kadm.NewClient(b.client())
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "doomed"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "kept"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g1", "g2"} {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "doomed", Partition: 0, At: 5, LeaderEpoch: -1})
		offs.Add(kadm.Offset{Topic: "doomed", Partition: 1, At: 9, LeaderEpoch: -1})
		offs.Add(kadm.Offset{Topic: "kept", Partition: 0, At: 3, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, g, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %s: %v", g, err)
		}
	}
	if diff := cmp.Diff([]int64{5, 9}, committedOffsets(t, b, "g1", "doomed", 2)); diff != "" {
		t.Fatalf("committed before delete (-want +got):\n%s", diff)
	}

	dr, err := adm.DeleteTopics(ctx, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if err := dr.Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "doomed"); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, g := range []string{"g1", "g2"} {
			if diff := cmp.Diff([]int64{-1, -1}, committedOffsets(t, b, g, "doomed", 2)); diff != "" {
				t.Errorf("%s: %s's offsets of the re-created topic (-want +got):\n%s", when, g, diff)
			}
			if diff := cmp.Diff([]int64{3}, committedOffsets(t, b, g, "kept", 1)); diff != "" {
				t.Errorf("%s: %s's offsets of the other topic (-want +got):\n%s", when, g, diff)
			}
		}
	}
	check("after re-create")
	// The tombstones are stored: a restart (the topic exists again, so
	// only they can keep the old offsets away) shows the same.
	b.restart()
	check("after restart")
}
