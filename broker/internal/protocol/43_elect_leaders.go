package protocol

// ElectLeaders, versions 0-2 (cluster mode only: a single node has no
// leaders to elect, and neither serves nor advertises it).
//
// Forwarded to the active controller, which answers it
// (metadata.Controller.ElectLeaders): ElectionType 0 (preferred: the
// partition's first replica leads again if it is an unfenced ISR member)
// and 1 (unclean: a leaderless partition gets a live replica, outside its
// ISR if need be); v0 is always preferred. Topics null means every
// partition. Where Kafka waits up to TimeoutMillis for the new leaders to
// take over, Weir answers once the elections are committed to the
// metadata log and in this broker's view; the timeout bounds the wait for
// a controller. With none reachable, every partition named (or the
// request, for all partitions) gets NOT_CONTROLLER.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerClusterOnly(kmsg.ElectLeaders, 0, 2, handleElectLeaders) }

func handleElectLeaders(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ElectLeadersRequest)
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	resp, err := s.cfg.Cluster.Forward(ctx, req)
	if err == nil {
		return resp, nil
	}
	out := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	msg := fmt.Sprintf("weir: %v", err)
	if req.Topics == nil {
		out.ErrorCode = kerr.NotController.Code
		return out, nil
	}
	for _, t := range req.Topics {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, kerr.NotController.Code, &msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}
