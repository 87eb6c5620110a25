package protocol

// Cluster mode, continued (see cluster.go): the config requests and the
// partition and producer-id requests whose answer the cluster decides.
//
//   - AlterConfigs and IncrementalAlterConfigs: TOPIC resources go to the
//     controller (config records in the metadata log), which validates them
//     as the single-node path does and answers per resource with a message;
//     IncrementalAlterConfigs also forwards a BROKER resource (cluster-wide
//     "" or one node id) whose every key is a dynamic broker config
//     (dynamicBrokerConfigs); other resources are refused here, as on a
//     single node. Every
//     broker applies a topic's configs from its image to its local logs
//     (the cluster package's reconciler).
//   - DescribeConfigs: a topic's configs come from the metadata image, so
//     a change made through any broker is seen through every broker once
//     its image has it (the broker that forwarded the change waits for
//     that before answering).
//   - DeleteRecords: served by the partition's leader;
//     NOT_LEADER_OR_FOLLOWER from every other broker.
//   - InitProducerId (non-transactional): the id comes from a block the
//     controller allocated to this broker (ProducerIDAllocator).
//
// When no controller answers within the request's timeout (the quorum is
// lost, or electing), the resources get NOT_CONTROLLER, which clients
// retry, with a message saying why; InitProducerId, which has no message,
// gets COORDINATOR_NOT_AVAILABLE once this broker's block is used up.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProducerIDAllocator is implemented by a Cluster that hands out producer
// ids from blocks the controller allocates; without it InitProducerId
// uses the local registry's ids.
type ProducerIDAllocator interface {
	// NextProducerID returns an id never handed out before in the
	// cluster, or an error (retriable) when none can be had now.
	NextProducerID(ctx context.Context) (int64, error)
}

// adminForwardTimeout bounds the forwarding of an admin request that
// carries no timeout of its own (AlterConfigs, IncrementalAlterConfigs,
// InitProducerId), below the clients' request timeouts.
const adminForwardTimeout = 5 * time.Second

func init() {
	clusterHandlers[kmsg.AlterConfigs.Int16()] = clusterAlterConfigs
	clusterHandlers[kmsg.IncrementalAlterConfigs.Int16()] = clusterIncrementalAlterConfigs
	clusterHandlers[kmsg.DescribeConfigs.Int16()] = clusterDescribeConfigs
	clusterHandlers[kmsg.DeleteRecords.Int16()] = clusterDeleteRecords
	clusterHandlers[kmsg.InitProducerID.Int16()] = clusterInitProducerID
}

// forwardWithin forwards req to the controller within timeout.
func (s *Server) forwardWithin(ctx context.Context, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.cfg.Cluster.Forward(ctx, req)
}

// noControllerMessage is the message resources get when no controller
// answered.
func noControllerMessage(err error) *string {
	msg := fmt.Sprintf("weir: %v", err)
	return &msg
}

func clusterAlterConfigs(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	inner := *req
	inner.Resources = nil
	for _, rr := range req.Resources {
		if rr.ResourceType == kmsg.ConfigResourceTypeTopic {
			inner.Resources = append(inner.Resources, rr)
		}
	}
	var fwd []kmsg.AlterConfigsResponseResource
	var ferr error
	if len(inner.Resources) > 0 {
		out, err := s.forwardWithin(ctx, &inner, adminForwardTimeout)
		if err == nil {
			fwd = out.(*kmsg.AlterConfigsResponse).Resources
			if len(fwd) != len(inner.Resources) {
				err = fmt.Errorf("protocol: the controller answered %d of %d resources", len(fwd), len(inner.Resources))
			}
		}
		ferr = err
	}
	j := 0
	for _, rr := range req.Resources {
		or := kmsg.NewAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		switch {
		case rr.ResourceType != kmsg.ConfigResourceTypeTopic:
			or.ErrorCode, or.ErrorMessage = codeAndMessage(checkAlterableType(rr.ResourceType))
		case ferr != nil:
			or.ErrorCode, or.ErrorMessage = kerr.NotController.Code, noControllerMessage(ferr)
		default:
			or.ErrorCode, or.ErrorMessage = fwd[j].ErrorCode, fwd[j].ErrorMessage
			j++
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp, nil
}

func clusterIncrementalAlterConfigs(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	inner := *req
	inner.Resources = nil
	for _, rr := range req.Resources {
		if forwardIncremental(rr) {
			inner.Resources = append(inner.Resources, rr)
		}
	}
	var fwd []kmsg.IncrementalAlterConfigsResponseResource
	var ferr error
	if len(inner.Resources) > 0 {
		out, err := s.forwardWithin(ctx, &inner, adminForwardTimeout)
		if err == nil {
			fwd = out.(*kmsg.IncrementalAlterConfigsResponse).Resources
			if len(fwd) != len(inner.Resources) {
				err = fmt.Errorf("protocol: the controller answered %d of %d resources", len(fwd), len(inner.Resources))
			}
		}
		ferr = err
	}
	j := 0
	for _, rr := range req.Resources {
		or := kmsg.NewIncrementalAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		switch {
		case !forwardIncremental(rr):
			or.ErrorCode, or.ErrorMessage = codeAndMessage(checkAlterableType(rr.ResourceType))
		case ferr != nil:
			or.ErrorCode, or.ErrorMessage = kerr.NotController.Code, noControllerMessage(ferr)
		default:
			or.ErrorCode, or.ErrorMessage = fwd[j].ErrorCode, fwd[j].ErrorMessage
			j++
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp, nil
}

// dynamicBrokerConfigs are the broker configs that a cluster keeps in its
// metadata log and that IncrementalAlterConfigs changes on a BROKER
// resource: follower.replication.throttled.rate (replica.ThrottleRateConfig,
// `weir topic reassign --throttle`). Every other broker config is
// read-only (weir broker flags).
var dynamicBrokerConfigs = map[string]bool{"follower.replication.throttled.rate": true}

// forwardIncremental reports whether an IncrementalAlterConfigs resource
// goes to the controller: a topic's, or a broker's that changes dynamic
// broker configs only.
func forwardIncremental(rr kmsg.IncrementalAlterConfigsRequestResource) bool {
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		return true
	case kmsg.ConfigResourceTypeBroker:
		if len(rr.Configs) == 0 {
			return false
		}
		for _, c := range rr.Configs {
			if !dynamicBrokerConfigs[c.Name] {
				return false
			}
		}
		return true
	}
	return false
}

// clusterDescribeConfigs answers topic configs from the metadata image.
// Internal topics ("__" names) are each broker's own for now: theirs come
// from the local topic.
func clusterDescribeConfigs(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	v := s.cfg.Cluster.View()
	return describeConfigs(s, r, func(name string) (map[string]string, bool) {
		if ct := v.Topics[name]; ct != nil {
			return ct.Configs, true
		}
		if strings.HasPrefix(name, "__") {
			if t, ok := s.Topics.Get(name); ok {
				return t.Configs(), true
			}
		}
		return nil, false
	})
}

// clusterDeleteRecords answers the partitions this broker does not lead
// and hands the rest to the single-node handler.
func clusterDeleteRecords(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteRecordsRequest)
	v := s.cfg.Cluster.View()
	var refused []kmsg.DeleteRecordsResponseTopic
	kept := req.Topics[:0:0]
	for _, rt := range req.Topics {
		ct := v.Topics[rt.Topic]
		var keep []kmsg.DeleteRecordsRequestTopicPartition
		out := kmsg.NewDeleteRecordsResponseTopic()
		out.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			if _, code := s.leads(v, ct, rp.Partition); code != 0 {
				op := kmsg.NewDeleteRecordsResponseTopicPartition()
				op.Partition, op.ErrorCode, op.LowWatermark = rp.Partition, code, -1
				out.Partitions = append(out.Partitions, op)
				continue
			}
			keep = append(keep, rp)
		}
		if len(out.Partitions) > 0 {
			refused = append(refused, out)
		}
		if len(keep) > 0 {
			rt.Partitions = keep
			kept = append(kept, rt)
		}
	}
	inner := *req
	inner.Topics = kept
	ir := *r
	ir.Body = &inner
	out, err := handleDeleteRecords(ctx, s, &ir)
	if err != nil {
		return nil, err
	}
	resp := out.(*kmsg.DeleteRecordsResponse)
	resp.Topics = append(resp.Topics, refused...)
	return resp, nil
}

// clusterInitProducerID hands an idempotent producer an id from this
// broker's block; transactional ids are refused as on a single node.
func clusterInitProducerID(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.InitProducerIDRequest)
	alloc, ok := s.cfg.Cluster.(ProducerIDAllocator)
	if !ok || req.TransactionalID != nil {
		return handleInitProducerID(ctx, s, r)
	}
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	ctx, cancel := context.WithTimeout(ctx, adminForwardTimeout)
	defer cancel()
	id, err := alloc.NextProducerID(ctx)
	if err != nil {
		s.Logger.Warn("protocol: no producer id for InitProducerId", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code // retriable
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
