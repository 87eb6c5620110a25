package quorum

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A rejoining node (Options.Rejoin) asks every other voter, once an
// election timeout, to take it back. The request travels as a raft message
// of type MsgUnreachable, which raft only ever uses inside one node (and
// refuses from the network), with rejoinContext as its Context and the
// sender's applied index as its Index. Only the leader acts on it, by a
// voter set change: remove the sender if it is a voter, else add it.
var rejoinContext = []byte("weir-rejoin")

func isRejoinRequest(m *pb.Message) bool {
	return m.GetType() == pb.MsgUnreachable && string(m.GetContext()) == string(rejoinContext)
}

// rejoinTick takes the place of a raft tick while rejoining: a node that
// must not vote must not campaign either.
func (n *Node) rejoinTick() {
	n.rejoinTicks++
	if (n.rejoinTicks-1)%n.opts.ElectionTicks != 0 {
		return
	}
	var msgs []*pb.Message
	for _, v := range n.opts.Voters {
		if v.ID == n.opts.ID {
			continue
		}
		msgs = append(msgs, &pb.Message{Type: pb.MsgUnreachable.Enum(), From: new(n.opts.ID), To: new(v.ID),
			Context: rejoinContext, Index: new(n.applied)})
	}
	if n.rejoinTicks == 1 {
		n.log.Info("quorum: asking the voters to take this node back (its raft storage was lost)")
	}
	n.tr.send(msgs)
}

// handleRejoinRequest is the leader's part: the first change removes the
// node, so that the entries it lost are committed by the other voters
// alone; the second adds it back as a voter that catches up from nothing.
// A request sent before its sender applied its last re-addition is stale.
// Raft refuses a change while another is not applied yet, so requests
// repeated meanwhile change nothing.
func (n *Node) handleRejoinRequest(m *pb.Message) {
	from := m.GetFrom()
	if n.rn.BasicStatus().RaftState != raft.StateLeader || from == n.opts.ID {
		return
	}
	change := pb.ConfChangeAddNode
	if slices.Contains(n.confState.GetVoters(), from) {
		if m.GetIndex() < n.addedAt[from] {
			return
		}
		change = pb.ConfChangeRemoveNode
	}
	cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: change.Enum(), NodeId: new(from)}}}
	if err := n.rn.ProposeConfChange(cc); err != nil {
		n.log.Warn("quorum: voter set change for a rejoining node not proposed", "node", from, "change", change.String(), "err", err)
		return
	}
	n.log.Info("quorum: voter set change proposed for a rejoining node", "node", from, "change", change.String())
}

// applyConfChange applies a committed voter set change.
func (n *Node) applyConfChange(idx uint64, data []byte) error {
	cc := &pb.ConfChangeV2{}
	if err := proto.Unmarshal(data, cc); err != nil {
		return fmt.Errorf("quorum: committed entry %d: voter set change does not decode: %w", idx, err)
	}
	n.confState = n.rn.ApplyConfChange(cc)
	n.confChanged = true
	for _, c := range cc.GetChanges() {
		if c.GetType() != pb.ConfChangeAddNode {
			continue
		}
		n.addedAt[c.GetNodeId()] = idx
		if c.GetNodeId() == n.opts.ID && n.rejoining {
			if err := n.st.SetRejoined(); err != nil {
				return err
			}
			n.rejoining = false
			n.log.Info("quorum: rejoined the voters", "index", idx)
		}
	}
	n.log.Info("quorum: voter set changed", "index", idx, "voters", fmt.Sprint(n.confState.GetVoters()))
	return nil
}
