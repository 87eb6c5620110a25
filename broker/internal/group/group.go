package group

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// group is one consumer group's state.
type group struct {
	id    GroupID
	state State
	// stateSince is when the group entered its state; for an Empty group it
	// starts the offsets retention clock.
	stateSince time.Time

	protocolType string // "" for a group that only commits offsets
	protocol     string // selected protocol; "" while none
	generation   Generation
	leader       MemberID

	members map[MemberID]*member
	static  map[string]MemberID // instance id -> member id
	// pending holds member ids handed out with MEMBER_ID_REQUIRED, until
	// they join with them or their deadline passes.
	pending map[MemberID]time.Time

	// rebalanceDeadline ends the join phase (PreparingRebalance) or the sync
	// phase (CompletingRebalance).
	rebalanceDeadline time.Time
	// initialDelay is set while an empty group waits for more members before
	// its first rebalance; remaining is how much more it may wait, and
	// newMemberAdded whether someone joined during the current delay.
	initialDelay   bool
	remaining      time.Duration
	newMemberAdded bool

	offsets map[topicPartition]offset
	// subscribed holds the topics the members of a consumer group subscribe
	// to, decoded when a generation starts; nil when unknown (not a consumer
	// group, or a subscription that does not decode).
	subscribed map[string]bool

	// persisted is set once a group metadata record is written, so that
	// dropping the group writes a tombstone.
	persisted bool
	// scheduled is the deadline of g's newest timer entry; zero if none.
	scheduled time.Time
}

type topicPartition struct {
	topic     string
	partition int32
}

type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	committed   time.Time
}

type member struct {
	id         MemberID
	instanceID string // "" for a dynamic member
	clientID   string
	clientHost string

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte

	// join and sync are the member's unanswered JoinGroup and SyncGroup.
	join *pendingJoin
	sync *pendingSync
	// deadline is when the member's session expires without a heartbeat.
	deadline time.Time
}

type pendingJoin struct {
	tok Token
	req *kmsg.JoinGroupRequest
}

type pendingSync struct {
	tok Token
	req *kmsg.SyncGroupRequest
}

func newGroup(id GroupID, now time.Time) *group {
	return &group{
		id:         id,
		state:      StateEmpty,
		stateSince: now,
		members:    make(map[MemberID]*member),
		static:     make(map[string]MemberID),
		pending:    make(map[MemberID]time.Time),
		offsets:    make(map[topicPartition]offset),
	}
}

func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, id := range sortedIDs(g.members) {
		ms = append(ms, g.members[id])
	}
	return ms
}

func (g *group) pendingIDs() []MemberID { return sortedIDs(g.pending) }

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// allJoined reports whether every member has a JoinGroup waiting and no
// MEMBER_ID_REQUIRED rejoin is outstanding.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

// supports reports whether a member with this protocol type and protocols
// may join: the type must match the group's, and at least one protocol must
// be supported by every other member.
func (g *group) supports(self MemberID, protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	others := 0
	for id, m := range g.members {
		if id != self {
			others++
			if m.protocolType != protocolType {
				return false
			}
		}
	}
	if others == 0 {
		return true
	}
	for _, p := range protocols {
		all := true
		for id, m := range g.members {
			if id != self && m.metadata(p.Name) == nil {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports that most members
// list first among those; ties go to the leader's preference.
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	common := func(name string) bool {
		for _, m := range ms {
			if m.metadata(name) == nil {
				return false
			}
		}
		return true
	}
	votes := make(map[string]int)
	for _, m := range ms {
		for _, p := range m.protocols {
			if common(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	ref := ms[0]
	if l := g.members[g.leader]; l != nil {
		ref = l
	}
	best, bestVotes := "", -1
	for _, p := range ref.protocols {
		if v, ok := votes[p.Name]; ok && v > bestVotes {
			best, bestVotes = p.Name, v
		}
	}
	return best
}

// metadata returns the member's metadata for protocol name; nil when it does
// not support it (a supported protocol's metadata is never nil).
func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			if p.Metadata == nil {
				return []byte{}
			}
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether a join carries exactly the member's current
// protocols, in order.
func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

func copyProtocols(ps []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(ps))
	for i, p := range ps {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)}
	}
	return out
}
