package assign

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProtocolName is the group protocol name of Weir's task balancer. Every
// instance of an application must use it: a group whose members share no
// protocol fails to form, which is the right outcome when someone points a
// different application at the same group id.
const ProtocolName = "weir-tasks-v1"

// Layout is what the balancer knows of the topology: which sub-topology
// reads each input topic. Every topic of a sub-topology is co-partitioned
// with the others: partition p of each belongs to task (sub-topology, p).
type Layout struct {
	// Topics maps each input topic to its sub-topology.
	Topics map[string]int
}

// subtopologyTopics returns each sub-topology's sorted topics.
func (l Layout) subtopologyTopics() map[int][]string {
	out := map[int][]string{}
	for t, s := range l.Topics {
		out[s] = append(out[s], t)
	}
	for _, ts := range out {
		sort.Strings(ts)
	}
	return out
}

// Tasks lists the tasks of the layout given each topic's partition count:
// a sub-topology has as many tasks as its widest input topic (task p reads
// partition p of every input that has one). Whether joined topics are truly
// co-partitioned is checked when the application starts. A sub-topology
// whose topics are all missing from counts has no tasks yet.
func (l Layout) Tasks(counts map[string]int32) []TaskID {
	var out []TaskID
	subs := l.subtopologyTopics()
	ids := make([]int, 0, len(subs))
	for s := range subs {
		ids = append(ids, s)
	}
	slices.Sort(ids)
	for _, s := range ids {
		n := int32(0)
		for _, t := range subs[s] {
			n = max(n, counts[t])
		}
		for p := range n {
			out = append(out, TaskID{Subtopology: s, Partition: p})
		}
	}
	return out
}

// Balancer is Weir's kgo.GroupBalancer. It speaks the ordinary "consumer"
// protocol (topics, owned partitions, generation), so any coordinator serves
// it, and carries the assignor's extra data in UserData: on join, the tasks
// the member holds local state for; on sync, the member's standby tasks.
// It is cooperative.
type Balancer struct {
	layout   Layout
	standbys int
	// local returns the tasks this member holds local state for; it is
	// called on every join. May be nil.
	local func() []TaskID

	// addr is the query address this member advertises; "" for none.
	// Set before the group client starts, read-only afterwards.
	addr string

	mu sync.Mutex
	// standby is the standby assignment of the last sync. Guarded by mu.
	standby []TaskID
	// hosts is the host map of the last sync: nil when no member
	// advertised a query address (or the leader predates them). Guarded
	// by mu.
	hosts *HostMap
	// active are the active tasks of the last sync, sorted. Guarded by mu.
	active []TaskID
}

var (
	_ kgo.GroupBalancer           = (*Balancer)(nil)
	_ kgo.ConsumerBalancerBalance = (*Balancer)(nil)
)

// NewBalancer returns a balancer for layout that places standbys standby
// replicas per task. local, if not nil, reports the tasks this member holds
// local state for.
func NewBalancer(layout Layout, standbys int, local func() []TaskID) *Balancer {
	return &Balancer{layout: layout, standbys: standbys, local: local}
}

// SetQueryAddr makes the member advertise addr (host:port) as its query
// address on every join. Call it before the group client starts.
func (b *Balancer) SetQueryAddr(addr string) { b.addr = addr }

// Hosts returns the host map of the last assignment received, nil when
// it carried none.
func (b *Balancer) Hosts() *HostMap {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hosts
}

// Active returns the active tasks of the last assignment received.
func (b *Balancer) Active() []TaskID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.active)
}

// ProtocolName implements kgo.GroupBalancer.
func (*Balancer) ProtocolName() string { return ProtocolName }

// IsCooperative implements kgo.GroupBalancer: always true.
func (*Balancer) IsCooperative() bool { return true }

// JoinGroupMetadata implements kgo.GroupBalancer.
func (b *Balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	topics := make([]string, 0, len(current))
	for t := range current {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic = t
		op.Partitions = current[t]
		meta.OwnedPartitions = append(meta.OwnedPartitions, op)
	}
	var local []TaskID
	if b.local != nil {
		local = slices.Clone(b.local())
		slices.SortFunc(local, TaskID.Compare)
	}
	meta.UserData = EncodeJoin(nil, local, b.addr)
	return meta.AppendTo(nil)
}

// ParseSyncAssignment implements kgo.GroupBalancer. It also records the
// standby tasks carried in the assignment's user data (see Standbys).
func (b *Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("assign: bad sync assignment: %w", err)
	}
	standby, hosts, err := DecodeSync(a.UserData)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.standby = standby
	b.hosts = hosts
	b.mu.Unlock()
	m := make(map[string][]int32, len(a.Topics))
	var active []TaskID
	for _, t := range a.Topics {
		m[t.Topic] = t.Partitions
		if s, ok := b.layout.Topics[t.Topic]; ok {
			for _, p := range t.Partitions {
				active = append(active, TaskID{Subtopology: s, Partition: p})
			}
		}
	}
	slices.SortFunc(active, TaskID.Compare)
	active = slices.Compact(active)
	b.mu.Lock()
	b.active = active
	b.mu.Unlock()
	return m, nil
}

// Standbys returns the standby tasks of the last assignment received.
func (b *Balancer) Standbys() []TaskID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.standby)
}

// MemberBalancer implements kgo.GroupBalancer.
func (b *Balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, fmt.Errorf("assign: %w", err)
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance: it runs Assign over the
// group and turns tasks into partitions.
func (b *Balancer) Balance(cb *kgo.ConsumerBalancer, counts map[string]int32) kgo.IntoSyncAssignment {
	tasks := b.layout.Tasks(counts)
	in := Input{Tasks: tasks, Standbys: b.standbys}
	var bad error
	addrs := map[string]string{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		mem := Member{ID: m.MemberID, Generation: meta.Generation}
		seen := map[TaskID]bool{}
		for _, op := range meta.OwnedPartitions {
			s, ok := b.layout.Topics[op.Topic]
			if !ok {
				continue
			}
			for _, p := range op.Partitions {
				t := TaskID{Subtopology: s, Partition: p}
				if !seen[t] {
					seen[t] = true
					mem.Owned = append(mem.Owned, t)
				}
			}
		}
		local, addr, err := DecodeJoin(meta.UserData)
		if err != nil && bad == nil {
			bad = fmt.Errorf("member %s: %w", m.MemberID, err)
		}
		mem.State = local
		if addr != "" {
			addrs[m.MemberID] = addr
		}
		in.Members = append(in.Members, mem)
	})
	if bad != nil {
		cb.SetError(bad)
		return nil
	}
	a := Assign(in)
	hosts := hostMap(a, addrs)
	subs := b.layout.subtopologyTopics()
	plan := syncPlan{}
	for id, active := range a.Active {
		var ca kmsg.ConsumerMemberAssignment
		byTopic := map[string][]int32{}
		for _, t := range active {
			for _, topic := range subs[t.Subtopology] {
				if t.Partition < counts[topic] {
					byTopic[topic] = append(byTopic[topic], t.Partition)
				}
			}
		}
		topics := make([]string, 0, len(byTopic))
		for t := range byTopic {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic = t
			at.Partitions = byTopic[t]
			ca.Topics = append(ca.Topics, at)
		}
		ca.UserData = EncodeSync(nil, a.Standby[id], hosts)
		plan = append(plan, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: ca.AppendTo(nil)})
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].MemberID < plan[j].MemberID })
	return plan
}

// hostMap builds the host map of assignment a for the members with an
// address; nil when none has one.
func hostMap(a Assignment, addrs map[string]string) *HostMap {
	if len(addrs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(addrs))
	for id := range addrs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	m := &HostMap{}
	for _, id := range ids {
		m.Hosts = append(m.Hosts, Host{Addr: addrs[id], Active: a.Active[id], Standby: a.Standby[id]})
	}
	return m
}

type syncPlan []kmsg.SyncGroupRequestGroupAssignment

func (p syncPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return p }
