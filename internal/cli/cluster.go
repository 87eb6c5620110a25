package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataTopic is the metadata log's topic, whose partition 0
// DescribeQuorum describes.
const metadataTopic = "__cluster_metadata"

// ClusterDescription is the output of `weir cluster describe`.
type ClusterDescription struct {
	ClusterID string `json:"cluster_id"`
	// Controller is the node clients send controller requests to, -1 if
	// none is known.
	Controller int32 `json:"controller"`
	// Nodes are the voters and brokers, by node id.
	Nodes []ClusterNode `json:"nodes"`
}

// ClusterNode is one node of a ClusterDescription: what the cluster's
// metadata says of it as a broker, and what it says of the quorum itself.
type ClusterNode struct {
	ID int32 `json:"id"`
	// Voter: a controller voter of the metadata quorum.
	Voter bool `json:"voter"`
	// Broker is its client address, empty when it is not a registered
	// broker.
	Broker string `json:"broker,omitempty"`
	Fenced bool   `json:"fenced,omitempty"`
	// Controller: the node clients are told is the controller.
	Controller bool `json:"controller,omitempty"`
	// Leader and Term are the raft leader and term this node knows; Commit
	// and Applied its raft commit index and the metadata offset its image
	// has applied. Only set when Err is empty.
	Leader  int32  `json:"leader"`
	Term    int32  `json:"term"`
	Commit  int64  `json:"commit"`
	Applied int64  `json:"applied"`
	Err     string `json:"error,omitempty"`
}

// DescribeCluster prints the cluster's brokers (fenced or not), its
// controller, and every node's own view of the metadata quorum: the
// brokers come from DescribeCluster (v2, fenced brokers included), and
// each live broker is asked DescribeQuorum for itself. A fenced broker or
// a voter that is not a live broker cannot be asked; its row says so.
func DescribeCluster(ctx context.Context, cl *kgo.Client, w io.Writer, out Output) error {
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("cli: describe cluster: %w", err)
	}
	if err := kerr.ErrorForCode(dresp.ErrorCode); err != nil {
		return fmt.Errorf("cli: describe cluster: %w", KafkaError(err, strOr(dresp.ErrorMessage)))
	}
	d := ClusterDescription{ClusterID: dresp.ClusterID, Controller: dresp.ControllerID}
	type asked struct {
		id   int32
		resp *kmsg.DescribeQuorumResponse
		err  error
	}
	var answers []asked
	for _, b := range dresp.Brokers {
		if b.IsFenced {
			continue
		}
		q := kmsg.NewPtrDescribeQuorumRequest()
		t := kmsg.NewDescribeQuorumRequestTopic()
		t.Topic = metadataTopic
		p := kmsg.NewDescribeQuorumRequestTopicPartition()
		t.Partitions = append(t.Partitions, p)
		q.Topics = append(q.Topics, t)
		r, err := cl.Broker(int(b.NodeID)).Request(ctx, q)
		a := asked{id: b.NodeID, err: err}
		if err == nil {
			a.resp = r.(*kmsg.DescribeQuorumResponse)
		}
		answers = append(answers, a)
	}
	ids := map[int32]bool{}
	for _, b := range dresp.Brokers {
		ids[b.NodeID] = true
	}
	for _, a := range answers {
		if st, ok := quorumPartition(a.resp); ok {
			for _, v := range st.CurrentVoters {
				ids[v.ReplicaID] = true
			}
		}
	}
	sorted := make([]int32, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	// d.Nodes is not appended to after this, so the pointers stay valid.
	d.Nodes = make([]ClusterNode, len(sorted))
	byID := map[int32]*ClusterNode{}
	for i, id := range sorted {
		d.Nodes[i] = ClusterNode{ID: id, Leader: -1, Term: -1, Commit: -1, Applied: -1}
		byID[id] = &d.Nodes[i]
	}
	node := func(id int32) *ClusterNode { return byID[id] }
	for _, b := range dresp.Brokers {
		n := node(b.NodeID)
		n.Broker = b.Host + ":" + strconv.Itoa(int(b.Port))
		n.Fenced = b.IsFenced
		n.Controller = b.NodeID == dresp.ControllerID
		if b.IsFenced {
			n.Err = "fenced broker: not asked"
		}
	}
	for _, a := range answers {
		n := node(a.id)
		st, ok := quorumPartition(a.resp)
		switch {
		case a.err != nil:
			n.Err = a.err.Error()
		case !ok:
			n.Err = "no answer for " + metadataTopic
		case st.ErrorCode != 0:
			n.Err = KafkaError(kerr.ErrorForCode(st.ErrorCode), strOr(st.ErrorMessage)).Error()
		default:
			n.Leader, n.Term, n.Commit = st.LeaderID, st.LeaderEpoch, st.HighWatermark
			for _, v := range st.CurrentVoters {
				node(v.ReplicaID).Voter = true
				if v.ReplicaID == a.id {
					n.Applied = v.LogEndOffset
				}
			}
		}
	}
	for i := range d.Nodes {
		if n := &d.Nodes[i]; n.Broker == "" && n.Err == "" {
			n.Err = "not a live broker: not asked"
		}
	}
	if out.JSON {
		return writeJSON(w, d)
	}
	fmt.Fprintf(w, "cluster %s, controller %s\n", d.ClusterID, idOrNone(d.Controller))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tVOTER\tBROKER\tFENCED\tCONTROLLER\tLEADER\tTERM\tCOMMIT\tAPPLIED\tERROR")
	for _, n := range d.Nodes {
		broker := n.Broker
		if broker == "" {
			broker = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, yesNo(n.Voter), broker, yesNo(n.Fenced),
			yesNo(n.Controller), idOrNone(n.Leader), numOrDash(int64(n.Term)), numOrDash(n.Commit), numOrDash(n.Applied), n.Err)
	}
	return tw.Flush()
}

// quorumPartition returns partition 0 of the metadata topic in resp.
func quorumPartition(resp *kmsg.DescribeQuorumResponse) (kmsg.DescribeQuorumResponseTopicPartition, bool) {
	if resp == nil {
		return kmsg.DescribeQuorumResponseTopicPartition{}, false
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic == metadataTopic && p.Partition == 0 {
				return p, true
			}
		}
	}
	return kmsg.DescribeQuorumResponseTopicPartition{}, false
}

func strOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func idOrNone(id int32) string {
	if id < 0 {
		return "none"
	}
	return strconv.Itoa(int(id))
}

func numOrDash(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}
