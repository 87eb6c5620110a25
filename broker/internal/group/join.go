package group

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func strp(s string) *string { return &s }

// join handles JoinGroup v0-9.
func (c *Coordinator) join(now time.Time, r Request, req *kmsg.JoinGroupRequest) {
	fail := func(code int16, member string) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = code
		resp.Generation = -1
		resp.MemberID = member
		c.respond(r.Token, resp)
	}
	if code := c.validGroupID(req.Group); code != 0 {
		fail(code, req.MemberID)
		return
	}
	session := millis(req.SessionTimeoutMillis)
	rebalance := session
	if req.Version >= 1 {
		rebalance = millis(req.RebalanceTimeoutMillis)
	}
	if session < c.opts.MinSessionTimeout || session > c.opts.MaxSessionTimeout {
		fail(kerr.InvalidSessionTimeout.Code, req.MemberID)
		return
	}
	if rebalance <= 0 {
		rebalance = session
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
		return
	}
	size := 0
	for _, p := range req.Protocols {
		size += len(p.Name) + len(p.Metadata)
	}
	if len(req.Protocols) > c.opts.MaxProtocols || size > c.opts.MaxProtocolMetadataBytes {
		fail(kerr.InvalidRequest.Code, req.MemberID)
		return
	}

	id := GroupID(req.Group)
	g := c.groups[id]
	if g == nil {
		if req.MemberID != "" {
			fail(kerr.UnknownMemberID.Code, req.MemberID)
			return
		}
		if g = c.getOrCreate(now, id); g == nil {
			fail(kerr.CoordinatorNotAvailable.Code, req.MemberID)
			return
		}
	}
	defer c.settle(now, g)

	if !g.supports(MemberID(req.MemberID), req.ProtocolType, req.Protocols) {
		fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
		return
	}
	instance := deref(req.InstanceID)
	j := joinArgs{r: r, req: req, session: session, rebalance: rebalance, instance: instance}

	if req.MemberID == "" {
		prefix := r.ClientID
		if instance != "" {
			prefix = instance
		}
		newID := MemberID(prefix + "-" + c.opts.NewMemberSuffix())
		if old, ok := g.static[instance]; ok && instance != "" {
			c.replaceStatic(now, g, g.members[old], newID, j)
			return
		}
		if len(g.members)+len(g.pending) >= c.opts.MaxMembers {
			fail(kerr.GroupMaxSizeReached.Code, "")
			return
		}
		if instance == "" && req.Version >= 4 {
			// KIP-394: hand out the id and make the client come back
			// with it, so that a client that never does costs only a
			// pending entry that expires.
			g.pending[newID] = now.Add(session)
			fail(kerr.MemberIDRequired.Code, string(newID))
			return
		}
		c.addMember(now, g, newID, j)
		return
	}

	mid := MemberID(req.MemberID)
	if _, ok := g.pending[mid]; ok {
		if instance != "" {
			if cur, ok := g.static[instance]; ok && cur != mid {
				fail(kerr.FencedInstanceID.Code, req.MemberID)
				return
			}
		}
		c.addMember(now, g, mid, j)
		return
	}
	if instance != "" {
		if cur, ok := g.static[instance]; ok && cur != mid {
			fail(kerr.FencedInstanceID.Code, req.MemberID)
			return
		}
	}
	m := g.members[mid]
	if m == nil {
		fail(kerr.UnknownMemberID.Code, req.MemberID)
		return
	}
	switch g.state {
	case StatePreparingRebalance:
		c.updateMember(g, m, j)
		c.maybeCompleteJoin(now, g)
	case StateCompletingRebalance:
		if m.sameProtocols(req.Protocols) {
			// The member lost our answer: give it again.
			c.respond(r.Token, c.joinResponse(g, m, req, false))
			return
		}
		c.updateMember(g, m, j)
		c.prepareRebalance(now, g)
		c.maybeCompleteJoin(now, g) // a member alone has now joined
	case StateStable:
		if m.id == g.leader || !m.sameProtocols(req.Protocols) {
			c.updateMember(g, m, j)
			c.prepareRebalance(now, g)
			c.maybeCompleteJoin(now, g)
			return
		}
		m.deadline = now.Add(m.sessionTimeout)
		c.respond(r.Token, c.joinResponse(g, m, req, false))
	default:
		fail(kerr.UnknownMemberID.Code, req.MemberID)
	}
}

type joinArgs struct {
	r         Request
	req       *kmsg.JoinGroupRequest
	session   time.Duration
	rebalance time.Duration
	instance  string
}

// addMember adds a member whose join waits for the rebalance, and starts
// one if the group is not already rebalancing.
func (c *Coordinator) addMember(now time.Time, g *group, id MemberID, j joinArgs) {
	delete(g.pending, id)
	m := &member{id: id, instanceID: j.instance, clientID: j.r.ClientID, clientHost: j.r.ClientHost}
	g.members[id] = m
	if j.instance != "" {
		g.static[j.instance] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	c.updateMember(g, m, j)
	m.deadline = now.Add(j.session)
	if g.state == StatePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	if g.state != StatePreparingRebalance {
		c.prepareRebalance(now, g)
	}
	c.maybeCompleteJoin(now, g)
}

// updateMember records a member's (re)join, answering an older join of the
// same member that was still waiting.
func (c *Coordinator) updateMember(g *group, m *member, j joinArgs) {
	if m.join != nil && m.join.tok != j.r.Token {
		c.failJoin(m, kerr.RebalanceInProgress.Code)
	}
	m.protocolType = j.req.ProtocolType
	m.protocols = copyProtocols(j.req.Protocols)
	m.sessionTimeout = j.session
	m.rebalanceTimeout = j.rebalance
	if j.r.ClientID != "" || m.clientID == "" {
		m.clientID, m.clientHost = j.r.ClientID, j.r.ClientHost
	}
	m.join = &pendingJoin{tok: j.r.Token, req: j.req}
}

// replaceStatic handles a static member rejoining with an unknown member id
// (it restarted): the new id takes over the old member and fences the old
// id. In a Stable group whose protocol the new incarnation still supports
// (and would still be chosen), the member gets its assignment back without
// a rebalance, whatever its new metadata.
func (c *Coordinator) replaceStatic(now time.Time, g *group, old *member, newID MemberID, j joinArgs) {
	c.failJoin(old, kerr.FencedInstanceID.Code)
	c.failSync(old, kerr.FencedInstanceID.Code)
	delete(g.members, old.id)
	if g.leader == old.id {
		g.leader = newID
	}
	old.id = newID
	g.members[newID] = old
	g.static[j.instance] = newID
	m := old

	if g.state == StateStable {
		// Take the new incarnation's protocols (a sticky or cooperative
		// client's metadata changes on restart); only a change of the
		// group's protocol needs a rebalance.
		prev := m.protocols
		m.protocols = copyProtocols(j.req.Protocols)
		if m.metadata(g.protocol) == nil || g.selectProtocol() != g.protocol {
			m.protocols = prev
			c.updateMember(g, m, j)
			m.deadline = now.Add(j.session)
			c.prepareRebalance(now, g)
			c.maybeCompleteJoin(now, g)
			return
		}
		m.clientID, m.clientHost = j.r.ClientID, j.r.ClientHost
		m.sessionTimeout, m.rebalanceTimeout = j.session, j.rebalance
		m.deadline = now.Add(j.session)
		c.records = append(c.records, c.groupRecord(g))
		c.respond(j.r.Token, c.joinResponse(g, m, j.req, true))
		return
	}
	c.updateMember(g, m, j)
	m.deadline = now.Add(j.session)
	if g.state != StatePreparingRebalance {
		c.prepareRebalance(now, g)
	}
	c.maybeCompleteJoin(now, g)
}

func (c *Coordinator) failJoin(m *member, code int16) {
	if m.join == nil {
		return
	}
	resp := m.join.req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = string(m.id)
	c.respond(m.join.tok, resp)
	m.join = nil
	m.deadline = c.now.Add(m.sessionTimeout) // its session resumes now
}

func (c *Coordinator) failSync(m *member, code int16) {
	if m.sync == nil {
		return
	}
	resp := m.sync.req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	c.respond(m.sync.tok, resp)
	m.sync = nil
	m.deadline = c.now.Add(m.sessionTimeout) // its session resumes now
}

// prepareRebalance moves g to PreparingRebalance.
func (c *Coordinator) prepareRebalance(now time.Time, g *group) {
	if g.state == StateCompletingRebalance {
		for _, m := range g.sortedMembers() {
			c.failSync(m, kerr.RebalanceInProgress.Code)
			m.assignment = nil
		}
	}
	maxRT := g.maxRebalanceTimeout()
	if g.state == StateEmpty && c.opts.InitialRebalanceDelay > 0 {
		delay := min(c.opts.InitialRebalanceDelay, maxRT)
		g.initialDelay = true
		g.newMemberAdded = false
		g.remaining = max(maxRT-c.opts.InitialRebalanceDelay, 0)
		g.rebalanceDeadline = now.Add(delay)
	} else {
		g.initialDelay = false
		g.rebalanceDeadline = now.Add(maxRT)
	}
	g.state, g.stateSince = StatePreparingRebalance, now
}

func (c *Coordinator) maybeCompleteJoin(now time.Time, g *group) {
	if g.state == StatePreparingRebalance && !g.initialDelay && g.allJoined() {
		c.completeJoin(now, g)
	}
}

// completeJoin ends the join phase: members that did not rejoin go (static
// members stay until their session expires), the generation advances and
// every waiting join is answered, the leader's with the member list.
func (c *Coordinator) completeJoin(now time.Time, g *group) {
	g.initialDelay = false
	for _, m := range g.sortedMembers() {
		if m.join == nil && m.instanceID == "" {
			c.removeMemberOnly(g, m)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader, g.subscribed = "", "", nil
		g.state, g.stateSince = StateEmpty, now
		c.records = append(c.records, c.groupRecord(g))
		return
	}
	if g.members[g.leader] == nil {
		g.leader = g.sortedMembers()[0].id
	}
	g.protocolType = g.members[g.leader].protocolType
	g.protocol = g.selectProtocol()
	g.subscribed = g.subscribedTopics()
	g.state, g.stateSince = StateCompletingRebalance, now
	g.rebalanceDeadline = now.Add(g.maxRebalanceTimeout())
	for _, m := range g.sortedMembers() {
		if m.join != nil {
			c.respond(m.join.tok, c.joinResponse(g, m, m.join.req, false))
			m.join = nil
		}
		m.deadline = now.Add(m.sessionTimeout)
	}
}

// joinResponse is a successful JoinGroup answer for m in g's current
// generation; the leader gets the members and their metadata.
func (c *Coordinator) joinResponse(g *group, m *member, req *kmsg.JoinGroupRequest, skipAssignment bool) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = int32(g.generation)
	resp.ProtocolType = strp(g.protocolType)
	resp.Protocol = strp(g.protocol)
	resp.LeaderID = string(g.leader)
	resp.MemberID = string(m.id)
	if m.id == g.leader {
		if skipAssignment && req.Version >= 9 {
			resp.SkipAssignment = true
		}
		for _, o := range g.sortedMembers() {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = string(o.id)
			if o.instanceID != "" {
				jm.InstanceID = strp(o.instanceID)
			}
			jm.ProtocolMetadata = o.metadata(g.protocol)
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp
}

// validMember finds the member a request names, or the error code for why
// it cannot.
func (c *Coordinator) validMember(g *group, memberID, instance string) (*member, int16) {
	if instance != "" {
		if cur, ok := g.static[instance]; ok && cur != MemberID(memberID) {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[MemberID(memberID)]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// sync handles SyncGroup v0-5.
func (c *Coordinator) sync(now time.Time, r Request, req *kmsg.SyncGroupRequest) {
	fail := func(code int16) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		c.respond(r.Token, resp)
	}
	if code := c.validGroupID(req.Group); code != 0 {
		fail(code)
		return
	}
	g := c.groups[GroupID(req.Group)]
	if g == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	defer c.settle(now, g)
	m, code := c.validMember(g, req.MemberID, deref(req.InstanceID))
	if code != 0 {
		fail(code)
		return
	}
	if Generation(req.Generation) != g.generation {
		fail(kerr.IllegalGeneration.Code)
		return
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	switch g.state {
	case StatePreparingRebalance:
		fail(kerr.RebalanceInProgress.Code)
	case StateStable:
		m.deadline = now.Add(m.sessionTimeout)
		c.respond(r.Token, c.syncResponse(g, m, req))
	case StateCompletingRebalance:
		if m.sync != nil {
			c.failSync(m, kerr.RebalanceInProgress.Code)
		}
		m.sync = &pendingSync{tok: r.Token, req: req}
		m.deadline = now.Add(m.sessionTimeout)
		if m.id != g.leader {
			return
		}
		assigned := make(map[MemberID][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			assigned[MemberID(a.MemberID)] = a.MemberAssignment
		}
		for _, o := range g.sortedMembers() {
			o.assignment = bytes.Clone(assigned[o.id])
			if o.assignment == nil {
				o.assignment = []byte{}
			}
		}
		g.state, g.stateSince = StateStable, now
		c.records = append(c.records, c.groupRecord(g))
		for _, o := range g.sortedMembers() {
			if o.sync != nil {
				c.respond(o.sync.tok, c.syncResponse(g, o, o.sync.req))
				o.sync = nil
				o.deadline = now.Add(o.sessionTimeout)
			}
		}
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

func (c *Coordinator) syncResponse(g *group, m *member, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ProtocolType = strp(g.protocolType)
	resp.Protocol = strp(g.protocol)
	resp.MemberAssignment = m.assignment
	return resp
}

// heartbeat handles Heartbeat v0-4.
func (c *Coordinator) heartbeat(now time.Time, r Request, req *kmsg.HeartbeatRequest) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	defer c.respond(r.Token, resp)
	if code := c.validGroupID(req.Group); code != 0 {
		resp.ErrorCode = code
		return
	}
	g := c.groups[GroupID(req.Group)]
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return
	}
	defer c.touch(now, g) // a heartbeat only moves a deadline later
	m, code := c.validMember(g, req.MemberID, deref(req.InstanceID))
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	if Generation(req.Generation) != g.generation {
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return
	}
	switch g.state {
	case StateEmpty:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	case StatePreparingRebalance:
		m.deadline = now.Add(m.sessionTimeout)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	default:
		m.deadline = now.Add(m.sessionTimeout)
	}
}

// leave handles LeaveGroup v0-5 (v3+ leaves a batch of members).
func (c *Coordinator) leave(now time.Time, r Request, req *kmsg.LeaveGroupRequest) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	defer c.respond(r.Token, resp)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if code := c.validGroupID(req.Group); code != 0 {
		resp.ErrorCode = code
		return
	}
	g := c.groups[GroupID(req.Group)]
	if g != nil {
		defer c.settle(now, g)
	}
	for _, l := range leaving {
		code := c.leaveOne(now, g, l)
		if req.Version < 3 {
			resp.ErrorCode = code
			return
		}
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = l.MemberID, l.InstanceID, code
		resp.Members = append(resp.Members, rm)
	}
}

func (c *Coordinator) leaveOne(now time.Time, g *group, l kmsg.LeaveGroupRequestMember) int16 {
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	id := MemberID(l.MemberID)
	if inst := deref(l.InstanceID); inst != "" {
		cur, ok := g.static[inst]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if id != "" && cur != id {
			return kerr.FencedInstanceID.Code
		}
		id = cur
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		c.maybeCompleteJoin(now, g)
		return 0
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	c.removeMember(now, g, m)
	return 0
}

// removeMember drops m (it left or its session expired) and moves the group
// on: a rebalance if it was settled, completion if the others have joined.
func (c *Coordinator) removeMember(now time.Time, g *group, m *member) {
	c.removeMemberOnly(g, m)
	switch g.state {
	case StateStable, StateCompletingRebalance:
		c.prepareRebalance(now, g)
		c.maybeCompleteJoin(now, g)
	case StatePreparingRebalance:
		c.maybeCompleteJoin(now, g)
	}
}

func (c *Coordinator) removeMemberOnly(g *group, m *member) {
	c.failJoin(m, kerr.UnknownMemberID.Code)
	c.failSync(m, kerr.UnknownMemberID.Code)
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}
