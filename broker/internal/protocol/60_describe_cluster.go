package protocol

// DescribeCluster, versions 0-2.
//
// One broker, which is also the controller. Both endpoint types (v1:
// brokers, controllers) are answered with this broker.
// ClusterAuthorizedOperations, when asked, comes from the authorizer
// (authorized_ops.go). v2's
// IncludeFencedBrokers: a single-node broker is never fenced; in cluster
// mode the fenced brokers are listed with IsFenced.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeCluster, 0, 2, handleDescribeCluster) }

func handleDescribeCluster(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	node := s.nodeFor(r)
	resp.EndpointType = req.EndpointType
	resp.ClusterID = s.ClusterID()
	resp.ControllerID = node.ID
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = node.ID, node.Host, node.Port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	return resp, nil
}
