package protocol

// Authorized operations (KIP-430): Metadata v8+ (topics, and the cluster
// up to v10), DescribeCluster and DescribeGroups v3+ answer, when asked,
// the operations the request's principal may perform on each resource, as
// a bit field indexed by Kafka's operation codes. Without an authorizer,
// every operation the resource type supports is reported, as Kafka does.
// Resources with an error answer nothing (Kafka's "not requested",
// math.MinInt32).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

// supportedOps are the operations Kafka lists for each resource type.
var supportedOps = map[auth.ResourceType][]auth.Operation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
		kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe},
}

// authorizedOps returns the bit field of the operations the principal of
// r may perform on the resource rt named name; every supported operation
// when az is nil (no authorizer; then r.Session is not read).
func (s *Server) authorizedOps(az *auth.Authorizer, r *Request, rt auth.ResourceType, name string) int32 {
	var bits int32
	for _, op := range supportedOps[rt] {
		if az == nil || az.Authorized(r.Session.principal, r.Session.Host, op, rt, name) {
			bits |= 1 << uint(op)
		}
	}
	return bits
}

// withAuthorizedOps wraps the handler of the requests that can ask for
// authorized operations so that the answer carries them.
func (s *Server) withAuthorizedOps(key int16, fn HandlerFunc) HandlerFunc {
	switch key {
	case kmsg.Metadata.Int16(), kmsg.DescribeCluster.Int16(), kmsg.DescribeGroups.Int16():
	default:
		return fn
	}
	return func(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
		resp, err := fn(ctx, s, r)
		if err != nil || resp == nil {
			return resp, err
		}
		var az *auth.Authorizer
		if s.cfg.Security.ACLs != nil && r.Session != nil {
			az = s.cfg.Security.ACLs.Authorizer()
		}
		fill := func(resp kmsg.Response) { s.fillAuthorizedOps(az, r, resp) }
		if d, ok := resp.(*Deferred); ok {
			wait := d.Wait
			d.Wait = func() {
				if wait != nil {
					wait()
				}
				fill(d.Response)
			}
			return d, nil
		}
		fill(resp)
		return resp, nil
	}
}

// fillAuthorizedOps sets the authorized operations r asked for in resp.
func (s *Server) fillAuthorizedOps(az *auth.Authorizer, r *Request, resp kmsg.Response) {
	switch req := r.Body.(type) {
	case *kmsg.MetadataRequest:
		mr, ok := resp.(*kmsg.MetadataResponse)
		if !ok {
			return
		}
		if req.IncludeClusterAuthorizedOperations && r.Version >= 8 && r.Version <= 10 {
			mr.AuthorizedOperations = s.authorizedOps(az, r, kmsg.ACLResourceTypeCluster, auth.ClusterName)
		}
		if req.IncludeTopicAuthorizedOperations && r.Version >= 8 {
			for i := range mr.Topics {
				t := &mr.Topics[i]
				if t.ErrorCode == 0 && t.Topic != nil {
					t.AuthorizedOperations = s.authorizedOps(az, r, kmsg.ACLResourceTypeTopic, *t.Topic)
				}
			}
		}
	case *kmsg.DescribeClusterRequest:
		if dr, ok := resp.(*kmsg.DescribeClusterResponse); ok && req.IncludeClusterAuthorizedOperations && dr.ErrorCode == 0 {
			dr.ClusterAuthorizedOperations = s.authorizedOps(az, r, kmsg.ACLResourceTypeCluster, auth.ClusterName)
		}
	case *kmsg.DescribeGroupsRequest:
		gr, ok := resp.(*kmsg.DescribeGroupsResponse)
		if !ok || !req.IncludeAuthorizedOperations || r.Version < 3 {
			return
		}
		for i := range gr.Groups {
			if g := &gr.Groups[i]; g.ErrorCode == 0 {
				g.AuthorizedOperations = s.authorizedOps(az, r, kmsg.ACLResourceTypeGroup, g.Group)
			}
		}
	}
}
