package quorum

import (
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Rejoining (Options.Rejoin). The voter set is static, so any configured
// voter missing from raft's voter set is one being taken back.
//
// A rejoining node asks every other voter, once an election timeout, to
// take it back: a raft message of type MsgUnreachable (raft only ever uses
// it inside one node, and refuses it from the network) whose Context is
// rejoinAsk and the node's incarnation (the random id of its rejoin mark).
// The leader answers by a voter set change: it removes the node if it is a
// voter not yet added back under this incarnation (the removal is committed
// by the other voters alone, so they hold every committed entry); once the
// node is not a voter, it adds it back, with the incarnation as the
// change's Context, and does so for any configured voter missing from the
// voter set (so a voter removed by a request that arrived late comes back
// by itself). The node drops its mark when it applies its own addition
// under its incarnation, or when a node that applied that addition tells
// it so (rejoinDone, with the addition's index as Index) and it has applied
// that far (it may have caught up from a snapshot taken after the
// addition).
//
// Until a node tells it that its addition under its incarnation was
// applied, a rejoining node takes no entries, snapshots or heartbeats and
// casts no vote: it acknowledges nothing, so its removal is committed by
// the other voters alone and they hold every committed entry (a leader of
// an older term could otherwise count the emptied node towards a commit).
// Once told (rejoinDone carries the addition's term as LogTerm), it takes
// them from leaders of the addition's term or later, and votes (it never
// campaigns) in later terms, before its log holds the addition: if the
// leader dies between committing the addition and catching the node up,
// the other voters need its vote to elect one.
//
// Why a vote is safe though the node forgot its term and its vote: a
// candidate X it voted for before the loss, in a term it may now vote in
// again, cannot have won that term. X began that campaign before the loss,
// so before the removal was proposed, and its log then lacked the removal.
// X needs a majority, and any majority holds a node N that acknowledged
// the removal (the removal's majority does not hold this node). Had N
// voted for X first, its term would be above the removal's and it would
// have refused the removal's entry; having acknowledged the removal
// first, it refuses X, whose log is behind its own (X's last term is at
// most the removal's: a later term's leader would have had N's majority
// in a later term too). Raft's up-to-date rule keeps the node's new votes
// from candidates lacking entries it holds.
var (
	rejoinAsk  = []byte("weir-rejoin-ask")
	rejoinDone = []byte("weir-rejoin-done")
)

// addition is the last addition of a voter this node applied.
type addition struct {
	incarnation uint64
	index, term uint64
}

func rejoinMessage(tag []byte, from, to NodeID, incarnation, index, term uint64) *pb.Message {
	return &pb.Message{Type: pb.MsgUnreachable.Enum(), From: new(from), To: new(to),
		Context: binary.BigEndian.AppendUint64(slices.Clip(tag), incarnation), Index: new(index), LogTerm: new(term)}
}

func isRejoin(m *pb.Message, tag []byte) bool {
	c := m.GetContext()
	return m.GetType() == pb.MsgUnreachable && len(c) == len(tag)+8 && string(c[:len(tag)]) == string(tag)
}

func incarnationOf(m *pb.Message) uint64 {
	c := m.GetContext()
	return binary.BigEndian.Uint64(c[len(c)-8:])
}

// rejoinTick takes the place of a raft tick while rejoining: a node that
// must not vote must not campaign either.
func (n *Node) rejoinTick() {
	if (n.ticks-1)%n.opts.ElectionTicks != 0 {
		return
	}
	var msgs []*pb.Message
	for _, v := range n.opts.Voters {
		if v.ID != n.opts.ID {
			msgs = append(msgs, rejoinMessage(rejoinAsk, n.opts.ID, v.ID, n.rejoinID, n.applied, 0))
		}
	}
	if n.ticks == 1 {
		n.log.Info("quorum: asking the voters to take this node back (its raft storage was lost)", "incarnation", n.rejoinID)
	}
	n.tr.send(msgs)
}

func (n *Node) leading() bool { return n.rn.BasicStatus().RaftState == raft.StateLeader }

// leaderTick adds back, once an election timeout, the first configured
// voter missing from the voter set. Raft takes one voter set change at a
// time and turns a second into an empty entry.
func (n *Node) leaderTick() {
	if (n.ticks-1)%n.opts.ElectionTicks != 0 || !n.leading() {
		return
	}
	for _, v := range n.opts.Voters {
		if !slices.Contains(n.confState.GetVoters(), v.ID) {
			n.proposeVoterChange(pb.ConfChangeAddNode, v.ID, n.asked[v.ID])
			return
		}
	}
}

// handleRejoinRequest is the leader's part (see the top of this file).
//
// Any node that applied the requester's addition under this incarnation
// answers that it was added, not only the leader: a node that caught up
// from a snapshot taken after its addition learns of it only so, and if
// the leader is gone by then, the others need its vote to elect one.
func (n *Node) handleRejoinRequest(m *pb.Message) {
	from, inc := m.GetFrom(), incarnationOf(m)
	if from == n.opts.ID || inc == 0 {
		return
	}
	if a := n.added[from]; a.incarnation == inc && slices.Contains(n.confState.GetVoters(), from) {
		n.tr.send([]*pb.Message{rejoinMessage(rejoinDone, n.opts.ID, from, inc, a.index, a.term)})
		return
	}
	if !n.leading() {
		return
	}
	n.asked[from] = inc
	if !slices.Contains(n.confState.GetVoters(), from) {
		n.proposeVoterChange(pb.ConfChangeAddNode, from, inc)
		return
	}
	n.proposeVoterChange(pb.ConfChangeRemoveNode, from, inc)
}

// handleRejoinDone is the rejoining node's part of another node's word
// that it was added back at an index, in a term: it votes from then on (in
// later terms), and is back once it has applied that far.
func (n *Node) handleRejoinDone(m *pb.Message) {
	if !n.rejoining || incarnationOf(m) != n.rejoinID {
		return
	}
	if n.applied < m.GetIndex() || !slices.Contains(n.confState.GetVoters(), n.opts.ID) {
		if t := m.GetLogTerm(); t > n.addedTerm {
			n.addedTerm = t
			n.log.Info("quorum: added back as a voter; catching up from leaders of the addition's term or later",
				"index", m.GetIndex(), "term", t, "from", m.GetFrom())
		}
		return
	}
	if err := n.rejoined(m.GetIndex()); err != nil {
		n.log.Error("quorum: rejoin mark not removed", "err", err)
	}
}

// takesWhileRejoining tells whether a rejoining node steps m, a vote
// request or a leader's message (see the top of this file).
func (n *Node) takesWhileRejoining(m *pb.Message) bool {
	switch m.GetType() {
	case pb.MsgVote, pb.MsgPreVote:
		return n.addedTerm > 0 && m.GetTerm() > n.addedTerm
	case pb.MsgApp, pb.MsgSnap, pb.MsgHeartbeat:
		return n.addedTerm > 0 && m.GetTerm() >= n.addedTerm
	}
	return false // MsgTimeoutNow: it does not campaign
}

func (n *Node) rejoined(index uint64) error {
	if err := n.st.SetRejoined(); err != nil {
		return err
	}
	n.rejoining, n.rejoinID, n.addedTerm = false, 0, 0
	n.log.Info("quorum: rejoined the voters", "index", index)
	return nil
}

func (n *Node) proposeVoterChange(change pb.ConfChangeType, id NodeID, incarnation uint64) {
	cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: change.Enum(), NodeId: new(id)}},
		Context: binary.BigEndian.AppendUint64(nil, incarnation)}
	if err := n.rn.ProposeConfChange(cc); err != nil {
		n.log.Warn("quorum: voter set change not proposed", "node", id, "change", change.String(), "err", err)
		return
	}
	n.log.Info("quorum: voter set change proposed", "node", id, "change", change.String(), "incarnation", incarnation)
}

// applyConfChange applies a committed voter set change.
func (n *Node) applyConfChange(idx, term uint64, data []byte) error {
	cc := &pb.ConfChangeV2{}
	if err := proto.Unmarshal(data, cc); err != nil {
		return fmt.Errorf("quorum: committed entry %d: voter set change does not decode: %w", idx, err)
	}
	n.setConfState(n.rn.ApplyConfChange(cc))
	n.confChanged, n.voterSetIndex = true, idx
	var inc uint64
	if c := cc.GetContext(); len(c) == 8 {
		inc = binary.BigEndian.Uint64(c)
	}
	for _, c := range cc.GetChanges() {
		if c.GetType() != pb.ConfChangeAddNode {
			continue
		}
		n.added[c.GetNodeId()] = addition{incarnation: inc, index: idx, term: term}
		if c.GetNodeId() == n.opts.ID && n.rejoining && inc == n.rejoinID {
			if err := n.rejoined(idx); err != nil {
				return err
			}
		}
	}
	n.log.Info("quorum: voter set changed", "index", idx, "voters", fmt.Sprint(n.confState.GetVoters()))
	return nil
}
