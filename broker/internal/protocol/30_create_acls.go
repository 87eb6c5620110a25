package protocol

// CreateAcls, versions 0-3: each creation is validated on its own (an
// invalid one is INVALID_REQUEST with the reason); the valid ones are
// written to the ACL file at once. Version 0 bindings are LITERAL.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

func init() { register(kmsg.CreateACLs, 0, 3, handleCreateACLs) }

func handleCreateACLs(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	store, _ := s.cfg.Security.ACLs.(ACLWriter)
	acls := make([]auth.ACL, len(req.Creations))
	for i, c := range req.Creations {
		acls[i] = auth.ACL{ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType}
		if r.Version == 0 {
			acls[i].PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
	}
	var errs []error
	var werr error
	if store != nil {
		errs, werr = store.Add(acls)
	}
	for i := range acls {
		res := kmsg.NewCreateACLsResponseResult()
		switch {
		case store == nil:
			res.ErrorCode, res.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(errNoAuthorizer)
		case errs != nil && errs[i] != nil:
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, errMessage(errs[i])
		case werr != nil:
			res.ErrorCode, res.ErrorMessage = kerr.KafkaStorageError.Code, errMessage(werr)
		}
		resp.Results = append(resp.Results, res)
	}
	if werr == nil && store != nil {
		s.Logger.Info("ACLs created", "remote", r.Remote, "principal", r.Session.principalOrAnonymous(), "count", len(acls))
	}
	return resp, nil
}
