package protocol

// DescribeQuorum, versions 0-1.
//
// The metadata quorum is the topic "__cluster_metadata", partition 0, as in
// Kafka. Where Weir differs: every voter answers, not only the leader, and
// it answers for itself: LeaderID and LeaderEpoch are the raft leader and
// term it knows, HighWatermark is its raft commit index, and in
// CurrentVoters its own entry's LogEndOffset is the metadata offset it has
// applied to its image; the other voters' offsets and every timestamp are
// -1 (unknown to it). A broker-only node answers as well, from what the
// voters it fetches from told it, and lists itself among the Observers
// with its applied offset. `weir cluster describe` asks each node to
// learn every node's commit and applied offsets. A single-node broker has no quorum and
// answers UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeQuorum, 0, 1, handleDescribeQuorum) }

// MetadataTopic is the name of the metadata log's topic, whose partition 0
// DescribeQuorum describes.
const MetadataTopic = "__cluster_metadata"

// QuorumState is one node's own view of the metadata quorum (a voter's,
// or a broker-only node's, which is no voter).
type QuorumState struct {
	// NodeID is the answering node.
	NodeID int32
	// LeaderID is the raft leader it knows, -1 if none.
	LeaderID int32
	// Term is the raft term.
	Term uint64
	// Commit is the raft commit index; Applied the offset its image has
	// applied (Applied <= Commit).
	Commit, Applied uint64
	// Voters are the voters' node ids.
	Voters []int32
}

// QuorumDescriber is implemented by a Cluster (a voter or a broker-only
// node); DescribeQuorum answers from it.
type QuorumDescriber interface {
	QuorumState() QuorumState
}

func handleDescribeQuorum(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeQuorumRequest)
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	var qs *QuorumState
	if d, ok := s.cfg.Cluster.(QuorumDescriber); ok {
		st := d.QuorumState()
		qs = &st
	}
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			if qs == nil || rt.Topic != MetadataTopic || rp.Partition != 0 {
				p.ErrorCode, p.LeaderID, p.LeaderEpoch, p.HighWatermark = kerr.UnknownTopicOrPartition.Code, -1, -1, -1
				t.Partitions = append(t.Partitions, p)
				continue
			}
			p.LeaderID, p.LeaderEpoch, p.HighWatermark = qs.LeaderID, int32(qs.Term), int64(qs.Commit)
			for _, id := range qs.Voters {
				v := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
				v.ReplicaID, v.LogEndOffset, v.LastFetchTimestamp, v.LastCaughtUpTimestamp = id, -1, -1, -1
				if id == qs.NodeID {
					v.LogEndOffset = int64(qs.Applied)
				}
				p.CurrentVoters = append(p.CurrentVoters, v)
			}
			if !slices.Contains(qs.Voters, qs.NodeID) {
				// A broker-only node: it follows the log as an observer.
				o := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
				o.ReplicaID, o.LogEndOffset, o.LastFetchTimestamp, o.LastCaughtUpTimestamp = qs.NodeID, int64(qs.Applied), -1, -1
				p.Observers = append(p.Observers, o)
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
