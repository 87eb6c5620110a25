package group

import (
	"container/heap"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator is the group state machine. It is not safe for concurrent
// use: its owner (normally a Driver) serialises calls.
type Coordinator struct {
	opts   Options
	groups map[GroupID]*group
	// owned[p] is set while the coordinator serves the groups of
	// __consumer_offsets partition p (see ownership.go). Invariant: every
	// group held belongs to an owned partition, except during a partition's
	// load (between its first Load and FinishLoadPartition).
	owned []bool

	// timers holds (deadline, group) entries, earliest first. Entries go
	// stale when a group's deadline moves; Tick re-examines a group whose
	// entry fires and pushes its true next deadline, so stale entries cost
	// one look. Invariant: every group with a deadline has an entry at or
	// before it.
	timers timerHeap

	records   []Record
	responses []Response
	// txnOffsets holds TxnOffsetCommit's pending offsets by producer id
	// (txnoffsets.go).
	txnOffsets map[int64]*txnPending
	// now is the time of the Step or Tick in progress.
	now time.Time
}

// New returns an empty coordinator that owns every __consumer_offsets
// partition. opts is copied before defaults are filled in.
func New(opts Options) (*Coordinator, error) {
	o := opts
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	owned := make([]bool, o.OffsetsPartitions)
	for i := range owned {
		owned[i] = true
	}
	return &Coordinator{opts: o, groups: make(map[GroupID]*group), owned: owned}, nil
}

// Step feeds one request to the coordinator. Its response, and anything else
// it causes, is collected by the next call to Ready.
func (c *Coordinator) Step(now time.Time, r Request) {
	c.now = now
	if c.refuseUnowned(r) {
		return
	}
	switch m := r.Msg.(type) {
	case *kmsg.JoinGroupRequest:
		c.join(now, r, m)
	case *kmsg.SyncGroupRequest:
		c.sync(now, r, m)
	case *kmsg.HeartbeatRequest:
		c.heartbeat(now, r, m)
	case *kmsg.LeaveGroupRequest:
		c.leave(now, r, m)
	case *kmsg.OffsetCommitRequest:
		c.commit(now, r, m)
	case *kmsg.TxnOffsetCommitRequest:
		c.txnCommit(now, r, m)
	case *kmsg.OffsetFetchRequest:
		c.fetchOffsets(r, m)
	case *kmsg.OffsetDeleteRequest:
		c.deleteOffsets(now, r, m)
	case *kmsg.DescribeGroupsRequest:
		c.describe(r, m)
	case *kmsg.ListGroupsRequest:
		c.list(r, m)
	case *kmsg.DeleteGroupsRequest:
		c.deleteGroups(now, r, m)
	default:
		panic(fmt.Sprintf("group: Step given %T, not a group request", r.Msg))
	}
}

// Tick tells the coordinator that time is now: rebalance and session
// timeouts fire and expired offsets go.
func (c *Coordinator) Tick(now time.Time) {
	c.now = now
	for len(c.timers) > 0 && !c.timers[0].at.After(now) {
		e := heap.Pop(&c.timers).(timer)
		g := c.groups[e.group]
		if g == nil || g.scheduled.After(now) {
			continue // stale entry: the group is gone or has a later one
		}
		g.scheduled = time.Time{}
		c.tickGroup(now, g)
		c.settle(now, g)
	}
}

// Ready returns and clears what the coordinator produced since the last call.
func (c *Coordinator) Ready() Ready {
	rd := Ready{Records: c.records, Responses: c.responses}
	c.records, c.responses = nil, nil
	if len(c.timers) > 0 {
		rd.Deadline = c.timers[0].at
	}
	return rd
}

func (c *Coordinator) respond(tok Token, msg kmsg.Response) {
	c.responses = append(c.responses, Response{Token: tok, Msg: msg})
}

// validGroupID returns the error code for an invalid group id, or 0.
func (c *Coordinator) validGroupID(id string) int16 {
	if id == "" || len(id) > c.opts.MaxGroupIDBytes {
		return kerr.InvalidGroupID.Code
	}
	return 0
}

// getOrCreate returns the group, creating an Empty one; nil when the
// coordinator is full.
func (c *Coordinator) getOrCreate(now time.Time, id GroupID) *group {
	if g := c.groups[id]; g != nil {
		return g
	}
	if len(c.groups) >= c.opts.MaxGroups {
		return nil
	}
	g := newGroup(id, now)
	c.groups[id] = g
	return g
}

// settle is called after anything touched g: it drops a group that holds
// nothing any more and schedules g's next deadline.
func (c *Coordinator) settle(now time.Time, g *group) {
	if c.groups[g.id] != g {
		return
	}
	if g.state == StateEmpty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 {
		if g.persisted {
			c.records = append(c.records, c.groupTombstone(g))
		}
		delete(c.groups, g.id)
		return
	}
	d := c.nextDeadline(g)
	if d.IsZero() {
		return
	}
	if g.scheduled.IsZero() || d.Before(g.scheduled) {
		g.scheduled = d
		heap.Push(&c.timers, timer{at: d, group: g.id})
	}
}

// touch is settle for requests that can only move g's deadlines later
// (heartbeats): while g has a timer pending, that timer is still at
// or before its next deadline, so the O(members) recomputation is skipped.
func (c *Coordinator) touch(now time.Time, g *group) {
	if g.scheduled.IsZero() {
		c.settle(now, g)
	}
}

// nextDeadline is the earliest time at which something in g times out.
func (c *Coordinator) nextDeadline(g *group) time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if g.state == StatePreparingRebalance || g.state == StateCompletingRebalance {
		min(g.rebalanceDeadline)
	}
	for _, m := range g.members {
		if m.join == nil && m.sync == nil {
			min(m.deadline)
		}
	}
	for _, t := range g.pending {
		min(t)
	}
	min(c.offsetsExpiry(g))
	return d
}

// tickGroup fires whatever of g's timeouts have passed.
func (c *Coordinator) tickGroup(now time.Time, g *group) {
	for _, id := range g.pendingIDs() {
		if !g.pending[id].After(now) {
			delete(g.pending, id)
		}
	}
	for _, m := range g.sortedMembers() {
		if m.join == nil && m.sync == nil && !m.deadline.After(now) {
			c.removeMember(now, g, m)
		}
	}
	switch g.state {
	case StatePreparingRebalance:
		if !g.rebalanceDeadline.After(now) {
			if g.initialDelay && g.newMemberAdded && g.remaining > 0 {
				d := min(c.opts.InitialRebalanceDelay, g.remaining)
				g.remaining -= d
				g.newMemberAdded = false
				g.rebalanceDeadline = g.rebalanceDeadline.Add(d) // from when it was due, however late the Tick
			} else {
				c.completeJoin(now, g)
			}
		} else {
			c.maybeCompleteJoin(now, g)
		}
	case StateCompletingRebalance:
		if !g.rebalanceDeadline.After(now) {
			// The leader (or someone) never synced: drop who did not and
			// start over with the rest. NB: choose first, remove after:
			// removeMember would start the rebalance, which answers every
			// waiting sync and so would make the members that did sync
			// look as if they had not.
			var late []*member
			for _, m := range g.sortedMembers() {
				if m.sync == nil {
					late = append(late, m)
				}
			}
			for _, m := range late {
				c.removeMemberOnly(g, m)
			}
			c.prepareRebalance(now, g)
			c.maybeCompleteJoin(now, g)
		}
	}
	c.expireOffsets(now, g)
}

type timer struct {
	at    time.Time
	group GroupID
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// sortedIDs returns the keys of m in order, for deterministic iteration.
func sortedIDs[K ~string, V any](m map[K]V) []K {
	ids := make([]K, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
