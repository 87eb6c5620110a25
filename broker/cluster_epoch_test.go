package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// epochCluster is a partition whose leader epoch a leader change has
// bumped: "e"/0 on replicas 4 and 5, "a" and "b" (offsets 0 and 1)
// written by 4 in epoch first, "c" (offset 2) by 5 in epoch current after 4
// went down; 4 is back and follows 5, in the ISR. Node 1 holds no replica.
type epochCluster struct {
	c              *testCluster
	cl             *kgo.Client
	id             [16]byte
	first, current int32
}

func startEpochCluster(t *testing.T, ctx context.Context) *epochCluster {
	t.Helper()
	c := startLeadersCluster(t, 2, func(_ int, o *Options) { o.LeaderRebalanceInterval = -1 })
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	createAssigned(t, ctx, cl, "e", []int32{4, 5}, nil)
	waitPlacement(t, ctx, cl, 1, "e", 4, []int32{4, 5})
	_, first, _, err := partitionLeader(ctx, cl, 1, "e", 0)
	if err != nil {
		t.Fatal(err)
	}
	produceOnce(t, c.brokers[3].Addr(), "e", "a")
	produceOnce(t, c.brokers[3].Addr(), "e", "b")
	waitOn(t, c, "e", 2, 4, 5)
	c.nodes.Stop(4)
	waitPlacement(t, ctx, cl, 1, "e", 5, []int32{5})
	produceOnce(t, c.brokers[4].Addr(), "e", "c")
	c.restartNode(4)
	// A new client: 4 listens on a new port.
	cl.Close()
	brokerUnfenced(t, ctx, newClient(t, c.brokers[0]), 1, 4)
	cl = newClient(t, c.brokers[0])
	// Every node's view, so that each answers from the same placement.
	for _, via := range []int32{1, 4, 5} {
		waitPlacement(t, ctx, cl, via, "e", 5, []int32{4, 5})
	}
	waitOn(t, c, "e", 3, 4, 5)
	_, current, _, err := partitionLeader(ctx, cl, 5, "e", 0)
	if err != nil {
		t.Fatal(err)
	}
	if current <= first {
		t.Fatalf("leader epoch %d after the leader change, %d before", current, first)
	}
	tp, ok := c.brokers[4].reg.Get("e")
	if !ok {
		t.Fatal("node 5 has no topic e")
	}
	return &epochCluster{c: c, cl: cl, id: tp.ID(), first: first, current: current}
}

// fetch sends node a Fetch of "e"/0 from offset, as replica (-1: a
// consumer), naming the leader epoch current and, when lastFetched >= 0,
// the epoch of the fetcher's last record (KIP-320). It does not wait for
// data.
func (ec *epochCluster) fetch(t *testing.T, ctx context.Context, node, replica, current, lastFetched int32, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.ReplicaState.ID = replica, replica
	req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "e", ec.id // kgo sends the broker's highest version, v13: by id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, offset, 1<<20
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = current, lastFetched
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := ec.cl.Broker(int(node)).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := raw.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch from %d: %v, topics %+v", node, kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// TestClusterCurrentLeaderEpoch: CurrentLeaderEpoch on Fetch (a
// consumer's and a follower's), ListOffsets and OffsetForLeaderEpoch is
// answered as Kafka's Partition.getLocalLog answers it: the epoch first,
// on any replica, FENCED_LEADER_EPOCH when older than the partition's and
// UNKNOWN_LEADER_EPOCH when newer; then the leadership: success on the
// leader, NOT_LEADER_OR_FOLLOWER on the follower. A broker that holds no
// replica has no epoch to compare and answers NOT_LEADER_OR_FOLLOWER
// whatever the epoch. (Produce carries no CurrentLeaderEpoch in Kafka's
// protocol: nothing to check there.)
func TestClusterCurrentLeaderEpoch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ec := startEpochCluster(t, ctx)
	const leader, follower, outsider = 5, 4, 1

	apis := []struct {
		name string
		send func(node, current int32) int16
	}{
		{"Fetch", func(node, current int32) int16 {
			return ec.fetch(t, ctx, node, -1, current, -1, 0).ErrorCode
		}},
		{"Fetch from a replica", func(node, current int32) int16 {
			replica := int32(follower) // the other replica fetches
			if node == follower {
				replica = leader
			}
			// From the log end offset, where the follower is.
			return ec.fetch(t, ctx, node, replica, current, -1, 3).ErrorCode
		}},
		{"ListOffsets", func(node, current int32) int16 {
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "e"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.Timestamp = 0, current, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			raw, err := ec.cl.Broker(int(node)).Request(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			return raw.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
		}},
		{"OffsetForLeaderEpoch", func(node, current int32) int16 {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "e"
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, current, ec.current
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			raw, err := ec.cl.Broker(int(node)).Request(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			return raw.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode
		}},
	}
	var (
		fenced    = kerr.FencedLeaderEpoch.Code
		unknown   = kerr.UnknownLeaderEpoch.Code
		notLeader = kerr.NotLeaderForPartition.Code
	)
	cases := []struct {
		node  int32
		epoch string
		want  int16
	}{
		{leader, "stale", fenced},
		{leader, "future", unknown},
		{leader, "current", 0},
		{leader, "none", 0},
		{follower, "stale", fenced}, // the epoch before the leadership
		{follower, "future", unknown},
		{follower, "current", notLeader},
		{follower, "none", notLeader},
		{outsider, "stale", notLeader},
		{outsider, "future", notLeader},
		{outsider, "current", notLeader},
		{outsider, "none", notLeader},
	}
	epochs := map[string]int32{"stale": ec.current - 1, "future": ec.current + 1, "current": ec.current, "none": -1}
	for _, api := range apis {
		for _, tc := range cases {
			e := epochs[tc.epoch]
			if got := api.send(tc.node, e); got != tc.want {
				t.Errorf("%s to node %d with the %s leader epoch %d (partition's %d): %v, want %v",
					api.name, tc.node, tc.epoch, e, ec.current, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
			}
		}
	}
}

// TestClusterFetchDivergingEpoch: a follower's Fetch whose last fetched
// epoch and fetch offset do not match the leader's epoch history gets
// DivergingEpoch (KIP-320): the largest epoch the leader knows that is <=
// the follower's, and the offset where it ends on the leader (the next
// epoch's start, or the log end offset for the newest); nothing is read.
// Where they match, no divergence is named.
func TestClusterFetchDivergingEpoch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ec := startEpochCluster(t, ctx)
	const leader, follower = 5, 4
	first, current := ec.first, ec.current
	cases := []struct {
		name        string
		lastFetched int32
		offset      int64
		// want is the DivergingEpoch; -1, -1: none.
		wantEpoch int32
		wantEnd   int64
	}{
		{"in step at the log end", current, 3, -1, -1},
		{"the first epoch held past its end", first, 3, first, 2},
		{"the newest epoch past the log end", current, 5, current, 3},
		{"an epoch newer than the leader's", current + 3, 3, current, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ec.fetch(t, ctx, leader, follower, current, tc.lastFetched, tc.offset)
			if got.ErrorCode != 0 {
				t.Fatalf("last fetched epoch %d at %d: %v", tc.lastFetched, tc.offset, kerr.ErrorForCode(got.ErrorCode))
			}
			if got.DivergingEpoch.Epoch != tc.wantEpoch || got.DivergingEpoch.EndOffset != tc.wantEnd {
				t.Fatalf("last fetched epoch %d at %d (epochs %d from 0, %d from 2, end 3): diverging epoch %d ending at %d, want %d ending at %d",
					tc.lastFetched, tc.offset, first, current, got.DivergingEpoch.Epoch, got.DivergingEpoch.EndOffset, tc.wantEpoch, tc.wantEnd)
			}
			if tc.wantEnd >= 0 && len(got.RecordBatches) != 0 {
				t.Fatalf("a diverging fetch read %d bytes", len(got.RecordBatches))
			}
		})
	}
}
