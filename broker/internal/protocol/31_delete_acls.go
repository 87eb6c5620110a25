package protocol

// DeleteAcls, versions 0-3: each filter deletes the bindings it selects
// and lists them in its result; all deletions are written at once.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

func init() { register(kmsg.DeleteACLs, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	store, _ := s.cfg.Security.ACLs.(ACLWriter)
	filters := make([]auth.Filter, 0, len(req.Filters))
	invalid := make([]error, len(req.Filters))
	for i, f := range req.Filters {
		af := auth.Filter{ResourceType: f.ResourceType, ResourceName: f.ResourceName, PatternType: f.ResourcePatternType,
			Principal: f.Principal, Host: f.Host, Operation: f.Operation, Permission: f.PermissionType}
		if r.Version == 0 {
			af.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		if invalid[i] = af.Validate(); invalid[i] == nil {
			filters = append(filters, af)
		}
	}
	var deleted [][]auth.ACL
	var werr error
	if store != nil {
		deleted, werr = store.Delete(filters)
	}
	next := 0
	for i := range req.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		switch {
		case store == nil:
			res.ErrorCode, res.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(errNoAuthorizer)
		case invalid[i] != nil:
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, errMessage(invalid[i])
		case werr != nil:
			res.ErrorCode, res.ErrorMessage = kerr.KafkaStorageError.Code, errMessage(werr)
			next++
		default:
			for _, a := range deleted[next] {
				m := kmsg.NewDeleteACLsResponseResultMatchingACL()
				m.ResourceType, m.ResourceName, m.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
				m.Principal, m.Host, m.Operation, m.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
				res.MatchingACLs = append(res.MatchingACLs, m)
			}
			next++
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
