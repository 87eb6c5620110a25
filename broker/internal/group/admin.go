package group

import (
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describe handles DescribeGroups v0-5. An unknown group is described as
// Dead with no error, as Kafka does before v6. Members carry their metadata
// and assignment only while the group is Stable.
func (c *Coordinator) describe(r Request, req *kmsg.DescribeGroupsRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	defer c.respond(r.Token, resp)
	for _, id := range req.Groups {
		out := kmsg.NewDescribeGroupsResponseGroup()
		out.Group = id
		out.AuthorizedOperations = -2147483648
		if code := c.validGroupID(id); code != 0 {
			out.ErrorCode = code
			out.State = StateDead.String()
			resp.Groups = append(resp.Groups, out)
			continue
		}
		if !c.owns(GroupID(id)) {
			out.ErrorCode = kerr.NotCoordinator.Code
			out.State = StateDead.String()
			resp.Groups = append(resp.Groups, out)
			continue
		}
		g := c.groups[GroupID(id)]
		if g == nil {
			out.State = StateDead.String()
			resp.Groups = append(resp.Groups, out)
			continue
		}
		out.State = g.state.String()
		out.ProtocolType = g.protocolType
		if g.state == StateStable {
			out.Protocol = g.protocol
		}
		for _, m := range g.sortedMembers() {
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID, dm.ClientID, dm.ClientHost = string(m.id), m.clientID, m.clientHost
			if m.instanceID != "" {
				dm.InstanceID = strp(m.instanceID)
			}
			if g.state == StateStable {
				dm.ProtocolMetadata = m.metadata(g.protocol)
				dm.MemberAssignment = m.assignment
			}
			out.Members = append(out.Members, dm)
		}
		resp.Groups = append(resp.Groups, out)
	}
}

// list handles ListGroups v0-4 (v4 filters by state).
func (c *Coordinator) list(r Request, req *kmsg.ListGroupsRequest) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	defer c.respond(r.Token, resp)
	for _, id := range sortedIDs(c.groups) {
		if !c.owns(id) {
			continue // being loaded
		}
		g := c.groups[id]
		st := g.state.String()
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, st) }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState = string(id), g.protocolType, st
		resp.Groups = append(resp.Groups, lg)
	}
}

// deleteGroups handles DeleteGroups v0-2: only groups without members go,
// with all their offsets.
func (c *Coordinator) deleteGroups(now time.Time, r Request, req *kmsg.DeleteGroupsRequest) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	defer c.respond(r.Token, resp)
	for _, id := range req.Groups {
		out := kmsg.NewDeleteGroupsResponseGroup()
		out.Group = id
		g := c.groups[GroupID(id)]
		switch {
		case c.validGroupID(id) != 0:
			out.ErrorCode = kerr.InvalidGroupID.Code
		case !c.owns(GroupID(id)):
			out.ErrorCode = kerr.NotCoordinator.Code
		case g == nil:
			out.ErrorCode = kerr.GroupIDNotFound.Code
		case g.state != StateEmpty || len(g.members) > 0:
			out.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			for _, tp := range sortedTPs(g.offsets) {
				c.records = append(c.records, c.offsetRecord(g.id, tp, nil))
			}
			clear(g.offsets)
			clear(g.pending)
			g.persisted = true // always write the tombstone on delete
			c.settle(now, g)
		}
		resp.Groups = append(resp.Groups, out)
	}
}
