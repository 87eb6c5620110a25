package protocol

// AlterPartitionAssignments, versions 0-1, and ListPartitionReassignments
// (46), version 0: cluster mode only (a single node has nothing to move),
// neither served nor advertised by a single node.
//
// Both are forwarded to the active controller, which answers them
// (metadata.Controller.AlterPartitionReassignments and
// ListPartitionReassignments): a reassignment adds the target replicas as
// followers, switches the assignment once they are all in the ISR and
// drops the removed replicas' copies. The reply comes once the start of
// the reassignment (not its end) is committed; ListPartitionReassignments
// follows it. With no controller reachable within TimeoutMillis, every
// partition named gets NOT_CONTROLLER (a ListPartitionReassignments, the
// top-level error).

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerClusterOnly(kmsg.AlterPartitionAssignments, 0, 1, handleAlterPartitionAssignments)
	registerClusterOnly(kmsg.ListPartitionReassignments, 0, 0, handleListPartitionReassignments)
}

// forwardWithin forwards req to the controller within timeoutMS (when
// positive).
func forwardWithin(ctx context.Context, s *Server, req kmsg.Request, timeoutMS int32) (kmsg.Response, error) {
	if timeoutMS > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutMS)*time.Millisecond)
		defer cancel()
	}
	return s.cfg.Cluster.Forward(ctx, req)
}

func handleAlterPartitionAssignments(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterPartitionAssignmentsRequest)
	resp, err := forwardWithin(ctx, s, req, req.TimeoutMillis)
	if err == nil {
		return resp, nil
	}
	out := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	msg := fmt.Sprintf("weir: %v", err)
	for _, t := range req.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, kerr.NotController.Code, &msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func handleListPartitionReassignments(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ListPartitionReassignmentsRequest)
	resp, err := forwardWithin(ctx, s, req, req.TimeoutMillis)
	if err == nil {
		return resp, nil
	}
	out := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	msg := fmt.Sprintf("weir: %v", err)
	out.ErrorCode, out.ErrorMessage = kerr.NotController.Code, &msg
	return out, nil
}
