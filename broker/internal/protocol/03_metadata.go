package protocol

// Metadata, versions 0-12.
//
// One broker (this node) leads every partition, with itself as the only
// replica and ISR member; leader epochs are always 0. Unknown topics are
// created when the request allows it (always before v4, AllowAutoTopicCreation
// from v4) and the broker has auto-creation on; unlike Kafka, the creation is
// synchronous, so the answer carries the new topic's partitions instead of
// LEADER_NOT_AVAILABLE. Topics named by id (v10+) are looked up by id.
// Authorized-operations fields are left at "not requested" (no ACLs).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.Metadata, 0, 12, handleMetadata) }

func handleMetadata(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	node := s.nodeFor(r)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = node.ID, node.Host, node.Port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	cid := s.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = node.ID

	all := req.Topics == nil || (r.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range s.Topics.List() {
			resp.Topics = append(resp.Topics, metadataTopic(node, t))
		}
		return resp, nil
	}
	autoCreate := s.cfg.AutoCreateTopics && (r.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *topics.Topic
		var ok bool
		if rt.Topic == nil {
			if t, ok = s.Topics.GetByID(rt.TopicID); !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		} else if t, ok = s.Topics.Get(*rt.Topic); !ok {
			var err error
			if autoCreate {
				t, err = s.autoCreate(ctx, *rt.Topic)
			} else {
				err = topics.ErrUnknownTopic
			}
			if err != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = rt.Topic
				mt.ErrorCode = errorCode(err)
				if errors.Is(err, topics.ErrInvalidTopic) {
					mt.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		resp.Topics = append(resp.Topics, metadataTopic(node, t))
	}
	return resp, nil
}

// autoCreate creates an unknown topic with the broker defaults.
func (s *Server) autoCreate(ctx context.Context, name string) (*topics.Topic, error) {
	t, err := s.Topics.Ensure(ctx, name, topics.Spec{Partitions: s.cfg.DefaultPartitions})
	if err == nil {
		s.Logger.Debug("auto-created topic", "topic", name)
	}
	return t, err
}

func metadataTopic(node Node, t *topics.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name()
	mt.Topic = &name
	mt.TopicID = t.ID()
	mt.IsInternal = t.Internal()
	n := t.NumPartitions()
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, n)
	replicas := []int32{node.ID}
	for i := range n {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = i
		p.Leader = node.ID
		p.LeaderEpoch = 0
		p.Replicas = replicas
		p.ISR = replicas
		mt.Partitions[i] = p
	}
	return mt
}
