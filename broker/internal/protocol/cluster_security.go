package protocol

// Cluster mode, continued (see cluster.go): the security admin requests.
// CreateAcls, DeleteAcls and AlterUserScramCredentials go to the
// controller, which turns them into metadata records every broker applies
// (so a user or an ACL created through one broker is known to all of
// them once their images have the change; the forwarding broker waits for
// its own). DescribeAcls and DescribeUserScramCredentials are the
// single-node handlers, answered from Security's sources, which in
// cluster mode read the metadata image.
//
// Version 0 of CreateAcls and DeleteAcls has no pattern type: LITERAL is
// filled in before the request is forwarded at the highest version. When
// no controller answers, every entry gets NOT_CONTROLLER with a message.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	clusterHandlers[kmsg.CreateACLs.Int16()] = clusterCreateACLs
	clusterHandlers[kmsg.DeleteACLs.Int16()] = clusterDeleteACLs
	clusterHandlers[kmsg.AlterUserSCRAMCredentials.Int16()] = clusterAlterUserSCRAM
}

func clusterCreateACLs(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	if s.cfg.Security.ACLs == nil {
		return handleCreateACLs(ctx, s, r) // SECURITY_DISABLED
	}
	req := r.Body.(*kmsg.CreateACLsRequest)
	inner := *req
	inner.Creations = append([]kmsg.CreateACLsRequestCreation(nil), req.Creations...)
	if r.Version == 0 {
		for i := range inner.Creations {
			inner.Creations[i].ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
		}
	}
	out, err := s.forwardWithin(ctx, &inner, adminForwardTimeout)
	if err == nil {
		if fr := out.(*kmsg.CreateACLsResponse); len(fr.Results) == len(req.Creations) {
			s.Logger.Info("ACLs created", "remote", r.Remote, "principal", r.Session.principalOrAnonymous(), "count", len(req.Creations))
			return fr, nil
		}
		err = fmt.Errorf("protocol: the controller answered %d of %d ACL creations", len(out.(*kmsg.CreateACLsResponse).Results), len(req.Creations))
	}
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = kerr.NotController.Code, noControllerMessage(err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func clusterDeleteACLs(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	if s.cfg.Security.ACLs == nil {
		return handleDeleteACLs(ctx, s, r) // SECURITY_DISABLED
	}
	req := r.Body.(*kmsg.DeleteACLsRequest)
	inner := *req
	inner.Filters = append([]kmsg.DeleteACLsRequestFilter(nil), req.Filters...)
	if r.Version == 0 {
		for i := range inner.Filters {
			inner.Filters[i].ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
		}
	}
	out, err := s.forwardWithin(ctx, &inner, adminForwardTimeout)
	if err == nil {
		if fr := out.(*kmsg.DeleteACLsResponse); len(fr.Results) == len(req.Filters) {
			return fr, nil
		}
		err = fmt.Errorf("protocol: the controller answered %d of %d ACL filters", len(out.(*kmsg.DeleteACLsResponse).Results), len(req.Filters))
	}
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = kerr.NotController.Code, noControllerMessage(err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func clusterAlterUserSCRAM(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterUserSCRAMCredentialsRequest)
	out, err := s.forwardWithin(ctx, req, adminForwardTimeout)
	if err == nil {
		return out, nil
	}
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	seen := map[string]bool{}
	add := func(user string) {
		if seen[user] {
			return
		}
		seen[user] = true
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = user, kerr.NotController.Code, noControllerMessage(err)
		resp.Results = append(resp.Results, res)
	}
	for _, d := range req.Deletions {
		add(d.Name)
	}
	for _, u := range req.Upsertions {
		add(u.Name)
	}
	return resp, nil
}
