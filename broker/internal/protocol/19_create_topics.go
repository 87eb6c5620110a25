package protocol

// CreateTopics, versions 0-7.
//
// NumPartitions -1 takes the broker default; a count above the broker's
// per-topic limit, or one that would take the broker past its per-broker
// limit, gets INVALID_PARTITIONS with a message giving the limit (clients
// print the code's generic text, "Number of partitions is below 1", beside
// it). A name that differs from an existing topic's only in '.' against '_'
// gets INVALID_TOPIC_EXCEPTION naming that topic, as in Kafka (their metric
// names would clash). ReplicationFactor must be 1 or
// -1 (a larger one is refused with INVALID_REPLICATION_FACTOR and a message
// saying so, until replication exists). A manual ReplicaAssignment is
// accepted only if it puts exactly this broker on every partition, numbered
// 0..n-1. Configs are validated against the configs Weir supports
// (INVALID_CONFIG names the offender). ValidateOnly checks without creating.
// A topic named twice in one request gets INVALID_REQUEST for every mention.
// From v5 the answer carries the effective configs. TimeoutMillis is not
// needed: creation is synchronous.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

func init() { register(kmsg.CreateTopics, 0, 7, handleCreateTopics) }

func handleCreateTopics(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreateTopicsResponseTopic()
		ot.Topic = rt.Topic
		ot.NumPartitions, ot.ReplicationFactor = -1, -1
		spec, err := createSpec(s, rt)
		if err == nil && seen[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %q named more than once", kerr.InvalidRequest, rt.Topic)
		}
		var t *topics.Topic
		if err == nil {
			if req.ValidateOnly {
				err = s.Topics.CheckSpec(rt.Topic, spec)
				if _, exists := s.Topics.Get(rt.Topic); err == nil && exists {
					err = fmt.Errorf("%w: %q", topics.ErrTopicExists, rt.Topic)
				}
			} else {
				t, err = s.Topics.Create(ctx, rt.Topic, spec)
			}
		}
		if err != nil {
			ot.ErrorCode = errorCode(err)
			ot.ErrorMessage = errMessage(err)
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		ot.NumPartitions, ot.ReplicationFactor = spec.Partitions, 1
		if t != nil {
			ot.TopicID = t.ID()
		}
		for _, e := range effectiveConfigs(s.Topics.Defaults(), spec.Configs) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name = e.name
			v := e.value
			c.Value = &v
			c.Source = e.source
			c.IsSensitive = e.sensitive
			ot.Configs = append(ot.Configs, c)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// createSpec turns one requested topic into a spec, checking what the
// registry cannot: replication and replica assignment.
func createSpec(s *Server, rt kmsg.CreateTopicsRequestTopic) (topics.Spec, error) {
	spec := topics.Spec{Partitions: rt.NumPartitions, Configs: map[string]string{}}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, fmt.Errorf("%w: replica assignment given with partition count or replication factor", kerr.InvalidRequest)
		}
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) || len(a.Replicas) != 1 || a.Replicas[0] != s.Node().ID {
				return spec, fmt.Errorf("%w: Weir has one broker (node %d); partition %d must be assigned to it alone",
					kerr.InvalidReplicaAssignment, s.Node().ID, a.Partition)
			}
		}
		spec.Partitions = int32(len(rt.ReplicaAssignment))
	} else {
		if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
			return spec, fmt.Errorf("%w: replication factor %d requested, but Weir does not replicate yet: use 1",
				kerr.InvalidReplicationFactor, rt.ReplicationFactor)
		}
		if spec.Partitions == -1 {
			spec.Partitions = s.cfg.DefaultPartitions
		}
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue // null means "use the default"
		}
		spec.Configs[c.Name] = *c.Value
	}
	if err := topics.CheckConfigs(spec.Configs); err != nil {
		return spec, err
	}
	return spec, nil
}
