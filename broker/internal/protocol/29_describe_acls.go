package protocol

// DescribeAcls, versions 0-3; CreateAcls (30) and DeleteAcls (31) are in
// 30_create_acls.go and 31_delete_acls.go. All three answer
// SECURITY_DISABLED when the broker runs without an authorizer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

func init() { register(kmsg.DescribeACLs, 0, 3, handleDescribeACLs) }

// errNoAuthorizer is the message of SECURITY_DISABLED answers.
const errNoAuthorizer = "no authorizer is configured on the broker (weir broker --authorizer)"

func handleDescribeACLs(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	store := s.cfg.Security.ACLs
	if store == nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(errNoAuthorizer)
		return resp, nil
	}
	f := auth.Filter{ResourceType: req.ResourceType, ResourceName: req.ResourceName, PatternType: req.ResourcePatternType,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType}
	if r.Version == 0 {
		f.PatternType = kmsg.ACLResourcePatternTypeLiteral
	}
	if err := f.Validate(); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, errMessage(err)
		return resp, nil
	}
	type resKey struct {
		rt   auth.ResourceType
		name string
		pt   auth.PatternType
	}
	idx := map[resKey]int{}
	for _, a := range store.List(f) {
		k := resKey{a.ResourceType, a.ResourceName, a.PatternType}
		i, ok := idx[k]
		if !ok {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
			resp.Resources = append(resp.Resources, res)
			i = len(resp.Resources) - 1
			idx[k] = i
		}
		acl := kmsg.NewDescribeACLsResponseResourceACL()
		acl.Principal, acl.Host, acl.Operation, acl.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, acl)
	}
	return resp, nil
}
