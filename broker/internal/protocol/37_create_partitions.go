package protocol

// CreatePartitions, versions 0-3.
//
// Grows a topic to Count partitions (the count can only grow:
// INVALID_PARTITIONS otherwise). A manual Assignment is accepted only if it
// puts exactly this broker on every new partition (INVALID_REPLICA_ASSIGNMENT
// otherwise). A count above the broker's per-topic limit, or one that would
// take the broker past its per-broker limit, gets INVALID_PARTITIONS with a
// message giving the limit. ValidateOnly checks without creating; a topic
// named twice gets INVALID_REQUEST. Synchronous, so TimeoutMillis is not
// needed.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.CreatePartitions, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreatePartitionsResponseTopic()
		ot.Topic = rt.Topic
		err := createPartitions(s, rt, req.ValidateOnly)
		if err == nil && seen[rt.Topic] > 1 {
			err = wrapCode(kerr.InvalidRequest, errorf("topic %q named more than once", rt.Topic))
		}
		ot.ErrorCode, ot.ErrorMessage = codeAndMessage(err)
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func createPartitions(s *Server, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	t, ok := s.Topics.Get(rt.Topic)
	if !ok {
		return wrapCode(kerr.UnknownTopicOrPartition, errorf("unknown topic %q", rt.Topic))
	}
	have := t.NumPartitions()
	if rt.Count <= have {
		return wrapCode(kerr.InvalidPartitions, errorf("topic %q has %d partitions; the count can only grow", rt.Topic, have))
	}
	if limit := s.Topics.MaxPartitionsPerTopic(); rt.Count > limit {
		return wrapCode(kerr.InvalidPartitions, errorf("%d partitions requested for %q, at most %d per topic", rt.Count, rt.Topic, limit))
	}
	if rt.Assignment != nil {
		if len(rt.Assignment) != int(rt.Count-have) {
			return wrapCode(kerr.InvalidReplicaAssignment, errorf("%d assignments for %d new partitions", len(rt.Assignment), rt.Count-have))
		}
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != s.Node().ID {
				return wrapCode(kerr.InvalidReplicaAssignment, errorf("Weir has one broker (node %d); each partition must be assigned to it alone", s.Node().ID))
			}
		}
	}
	if validateOnly {
		return nil
	}
	return s.Topics.AddPartitions(rt.Topic, rt.Count)
}
