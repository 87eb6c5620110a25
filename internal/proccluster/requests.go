package proccluster

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// request sends req to this node alone.
func (n *Node) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	cl, err := n.Client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return cl.SeedBrokers()[0].Request(ctx, req)
}

// Metadata asks this node for the metadata of every topic, as its own
// image has it.
func (n *Node) Metadata(ctx context.Context) (*kmsg.MetadataResponse, error) {
	resp, err := n.request(ctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		return nil, fmt.Errorf("proccluster: metadata from node %d: %w", n.ID, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// QuorumView is what one node knows of the metadata quorum.
type QuorumView struct {
	// Leader is the raft leader's node id; -1 when the node knows none.
	Leader int32
	// Term is the node's raft term (DescribeQuorum's leader epoch).
	Term int32
	// HighWatermark is the node's commit index.
	HighWatermark int64
}

// Quorum asks this node with DescribeQuorum for its view of the quorum.
func (n *Node) Quorum(ctx context.Context) (QuorumView, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	raw, err := n.request(ctx, req)
	if err != nil {
		return QuorumView{}, fmt.Errorf("proccluster: describe quorum on node %d: %w", n.ID, err)
	}
	resp := raw.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return QuorumView{}, fmt.Errorf("proccluster: describe quorum on node %d: %w", n.ID, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return QuorumView{}, fmt.Errorf("proccluster: describe quorum on node %d: %d topics in the answer", n.ID, len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return QuorumView{}, fmt.Errorf("proccluster: describe quorum on node %d: %w", n.ID, err)
	}
	return QuorumView{Leader: p.LeaderID, Term: p.LeaderEpoch, HighWatermark: p.HighWatermark}, nil
}
