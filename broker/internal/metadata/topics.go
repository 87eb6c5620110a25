package metadata

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiError is a refusal of one topic or resource of a request: a Kafka
// error code and the message that explains it.
type apiError struct {
	err *kerr.Error
	msg string
}

func refuse(err *kerr.Error, format string, args ...any) *apiError {
	return &apiError{err: err, msg: fmt.Sprintf(format, args...)}
}

// maxTopicIDDraws bounds how often NewTopicID is asked for an unused id.
const maxTopicIDDraws = 100

// sourceDynamicTopicConfig is Kafka's DescribeConfigs source of a config set
// on the topic.
const sourceDynamicTopicConfig = 1

// CreateTopics creates the topics of req. Each topic succeeds or fails on
// its own (the reply carries a code per topic); the records of every topic
// created are one entry, so the request's topics commit together or not at
// all. Replicas are placed on unfenced brokers (see placer); a replication
// factor above their number is refused with INVALID_REPLICATION_FACTOR. An
// explicit replica assignment may name fenced brokers as long as each
// partition has an unfenced one, which leads it; its ISR is its unfenced
// replicas. The reply lists the configs the request set (not the defaults
// Kafka also lists). ValidateOnly checks everything and creates nothing.
func (c *Controller) CreateTopics(req *kmsg.CreateTopicsRequest) ([]Record, *kmsg.CreateTopicsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	listed := map[string]int{}
	for _, t := range req.Topics {
		listed[t.Topic]++
	}
	pl := c.newPlacer()
	budget := c.opts.MaxPartitionsPerRequest
	var out []Record
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		var aerr *apiError
		if listed[t.Topic] > 1 {
			aerr = refuse(kerr.InvalidRequest, "topic %q is listed more than once", t.Topic)
		} else {
			var records []Record
			records, aerr = c.planTopic(&t, pl, &budget, &rt)
			if req.ValidateOnly {
				rt.TopicID = TopicID{} // nothing was created
			}
			if aerr == nil && !req.ValidateOnly {
				if err := c.emit(&out, records...); err != nil {
					return nil, nil, err
				}
			}
		}
		if aerr != nil {
			rt = kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, aerr.err.Code, &aerr.msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return out, resp, nil
}

// planTopic validates one topic of a CreateTopics request and returns the
// records that create it, filling in rt's success fields.
func (c *Controller) planTopic(t *kmsg.CreateTopicsRequestTopic, pl *placer, budget *int32, rt *kmsg.CreateTopicsResponseTopic) ([]Record, *apiError) {
	name := TopicName(t.Topic)
	if why := checkTopicName(name); why != "" {
		return nil, refuse(kerr.InvalidTopicException, "%s", why)
	}
	if _, ok := c.img.names[name]; ok {
		return nil, refuse(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	// Metric names replace '.' with '_': Kafka refuses names that collide so.
	norm := strings.ReplaceAll(t.Topic, ".", "_")
	for other := range c.img.names {
		if strings.ReplaceAll(string(other), ".", "_") == norm {
			return nil, refuse(kerr.InvalidTopicException, "topic %q collides with existing topic %q ('.' and '_' are the same in metric names)", name, other)
		}
	}
	res := ConfigResource{Type: ConfigTopic, Name: t.Topic}
	configs := map[string]string{}
	for _, kv := range t.Configs {
		if _, dup := configs[kv.Name]; dup {
			return nil, refuse(kerr.InvalidRequest, "config %q is listed more than once", kv.Name)
		}
		if kv.Value == nil {
			return nil, refuse(kerr.InvalidConfig, "config %q has a null value", kv.Name)
		}
		if aerr := c.checkConfig(res, kv.Name, *kv.Value); aerr != nil {
			return nil, aerr
		}
		configs[kv.Name] = *kv.Value
	}

	var assignment [][]NodeID
	var rf int
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return nil, refuse(kerr.InvalidRequest, "with a replica assignment, partitions and replication factor must both be -1 (got %d and %d)", t.NumPartitions, t.ReplicationFactor)
		}
		assignment = make([][]NodeID, len(t.ReplicaAssignment))
		for _, a := range t.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(assignment) || assignment[a.Partition] != nil {
				return nil, refuse(kerr.InvalidReplicaAssignment, "the assignment's partitions must be 0 to %d, each once; partition %d is not", len(assignment)-1, a.Partition)
			}
			replicas := make([]NodeID, len(a.Replicas))
			for i, r := range a.Replicas {
				replicas[i] = NodeID(r)
			}
			assignment[a.Partition] = replicas
		}
		rf = len(assignment[0])
		for p, replicas := range assignment {
			if aerr := c.checkAssignment(int32(p), replicas, rf); aerr != nil {
				return nil, aerr
			}
		}
	} else {
		np := t.NumPartitions
		if np == -1 {
			np = c.opts.DefaultPartitions
		}
		if np <= 0 {
			return nil, refuse(kerr.InvalidPartitions, "number of partitions %d is not positive", t.NumPartitions)
		}
		rf = int(t.ReplicationFactor)
		if rf == -1 {
			rf = int(c.opts.DefaultReplicationFactor)
		}
		if rf <= 0 {
			return nil, refuse(kerr.InvalidReplicationFactor, "replication factor %d is not positive", t.ReplicationFactor)
		}
		if rf > len(pl.brokers) {
			return nil, refuse(kerr.InvalidReplicationFactor, "replication factor %d is larger than the %d unfenced brokers", rf, len(pl.brokers))
		}
		if np > *budget {
			return nil, refuse(kerr.InvalidPartitions, "%d partitions exceed the %d this request may still create", np, *budget)
		}
		assignment = make([][]NodeID, np)
	}
	if int32(len(assignment)) > *budget {
		return nil, refuse(kerr.InvalidPartitions, "%d partitions exceed the %d this request may still create", len(assignment), *budget)
	}

	id, aerr := c.newTopicID()
	if aerr != nil {
		return nil, aerr
	}
	*budget -= int32(len(assignment))
	records := []Record{TopicRecord{ID: id, Name: name}}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		v := configs[k]
		records = append(records, ConfigRecord{Resource: res, Key: k, Value: &v})
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsResponseTopicConfig{Name: k, Value: &v, Source: sourceDynamicTopicConfig})
	}
	records = append(records, c.newPartitions(id, 0, assignment, rf, pl)...)
	rt.TopicID, rt.NumPartitions, rt.ReplicationFactor = id, int32(len(assignment)), int16(rf)
	return records, nil
}

// newPartitions returns the records creating partitions first,
// first+1, ... of topic id: with the replicas of assignment where it names
// them, else placed by pl.
func (c *Controller) newPartitions(id TopicID, first int32, assignment [][]NodeID, rf int, pl *placer) []Record {
	out := make([]Record, 0, len(assignment))
	for i, replicas := range assignment {
		var isr []NodeID
		if replicas == nil {
			replicas = pl.place(rf)
			isr = replicas
		} else {
			for _, r := range replicas {
				if !c.img.brokers[r].Fenced {
					isr = append(isr, r)
				}
			}
			pl.added(replicas, isr[0])
		}
		out = append(out, PartitionRecord{
			Topic: id, Partition: first + int32(i),
			Replicas: replicas, ISR: isr, Leader: isr[0],
		})
	}
	return out
}

// checkAssignment checks the replicas an admin chose for partition p.
func (c *Controller) checkAssignment(p int32, replicas []NodeID, rf int) *apiError {
	if len(replicas) == 0 || len(replicas) != rf {
		return refuse(kerr.InvalidReplicaAssignment, "partition %d has %d replicas; every partition must have the same number, at least one (%d)", p, len(replicas), max(rf, 1))
	}
	unfenced := false
	for i, r := range replicas {
		if slices.Contains(replicas[:i], r) {
			return refuse(kerr.InvalidReplicaAssignment, "partition %d lists broker %d twice", p, r)
		}
		b, ok := c.img.brokers[r]
		if !ok {
			return refuse(kerr.InvalidReplicaAssignment, "partition %d: broker %d is not registered", p, r)
		}
		unfenced = unfenced || !b.Fenced
	}
	if !unfenced {
		return refuse(kerr.InvalidReplicaAssignment, "partition %d: every broker of %v is fenced", p, replicas)
	}
	return nil
}

func (c *Controller) newTopicID() (TopicID, *apiError) {
	for range maxTopicIDDraws {
		id := c.opts.NewTopicID()
		if _, taken := c.img.topics[id]; !id.IsZero() && !taken {
			return id, nil
		}
	}
	return TopicID{}, refuse(kerr.UnknownServerError, "no unused topic id in %d draws", maxTopicIDDraws)
}

// CreatePartitions adds partitions to existing topics: each topic grows to
// its Count, with the new partitions' replicas given by its Assignment or
// placed as CreateTopics places them, with the replication factor of the
// topic's partition 0.
func (c *Controller) CreatePartitions(req *kmsg.CreatePartitionsRequest) ([]Record, *kmsg.CreatePartitionsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	listed := map[string]int{}
	for _, t := range req.Topics {
		listed[t.Topic]++
	}
	pl := c.newPlacer()
	budget := c.opts.MaxPartitionsPerRequest
	var out []Record
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		var aerr *apiError
		if listed[t.Topic] > 1 {
			aerr = refuse(kerr.InvalidRequest, "topic %q is listed more than once", t.Topic)
		} else {
			var records []Record
			records, aerr = c.planPartitions(&t, pl, &budget)
			if aerr == nil && !req.ValidateOnly {
				if err := c.emit(&out, records...); err != nil {
					return nil, nil, err
				}
			}
		}
		if aerr != nil {
			rt.ErrorCode, rt.ErrorMessage = aerr.err.Code, &aerr.msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return out, resp, nil
}

func (c *Controller) planPartitions(t *kmsg.CreatePartitionsRequestTopic, pl *placer, budget *int32) ([]Record, *apiError) {
	id, ok := c.img.names[TopicName(t.Topic)]
	if !ok {
		return nil, refuse(kerr.UnknownTopicOrPartition, "topic %q does not exist", t.Topic)
	}
	parts := c.img.topics[id].parts
	have := int32(len(parts))
	if t.Count <= have {
		return nil, refuse(kerr.InvalidPartitions, "topic %q has %d partitions; the count %d must be more", t.Topic, have, t.Count)
	}
	add := t.Count - have
	if add > *budget {
		return nil, refuse(kerr.InvalidPartitions, "%d partitions exceed the %d this request may still create", add, *budget)
	}
	rf := len(parts[0].Replicas)
	assignment := make([][]NodeID, add)
	if t.Assignment != nil {
		if int32(len(t.Assignment)) != add {
			return nil, refuse(kerr.InvalidReplicaAssignment, "%d assignments for %d new partitions", len(t.Assignment), add)
		}
		for i, a := range t.Assignment {
			replicas := make([]NodeID, len(a.Replicas))
			for j, r := range a.Replicas {
				replicas[j] = NodeID(r)
			}
			if aerr := c.checkAssignment(have+int32(i), replicas, rf); aerr != nil {
				return nil, aerr
			}
			assignment[i] = replicas
		}
	} else if rf > len(pl.brokers) {
		return nil, refuse(kerr.InvalidReplicationFactor, "topic %q has replication factor %d but only %d brokers are unfenced", t.Topic, rf, len(pl.brokers))
	}
	*budget -= add
	return c.newPartitions(id, have, assignment, rf, pl), nil
}

// DeleteTopics deletes topics by name (v0-v5, and v6+ entries with a name)
// or by id (v6+). Each is answered on its own; the removals of all of them
// are one entry.
func (c *Controller) DeleteTopics(req *kmsg.DeleteTopicsRequest) ([]Record, *kmsg.DeleteTopicsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   TopicID
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			if t.Topic != nil && *t.Topic == "" {
				t.Topic = nil
			}
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}
	// Resolve first, so that a topic named twice (by name, or by name and
	// by id) is refused in both places.
	ids := make([]TopicID, len(targets))
	listed := map[TopicID]int{}
	for i, t := range targets {
		if t.name != nil {
			ids[i] = c.img.names[TopicName(*t.name)]
		} else if _, ok := c.img.topics[t.id]; ok {
			ids[i] = t.id
		}
		if !ids[i].IsZero() {
			listed[ids[i]]++
		}
	}
	var out []Record
	for i, t := range targets {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = t.name, t.id
		var aerr *apiError
		switch {
		case ids[i].IsZero() && t.name != nil:
			aerr = refuse(kerr.UnknownTopicOrPartition, "topic %q does not exist", *t.name)
		case ids[i].IsZero():
			aerr = refuse(kerr.UnknownTopicID, "no topic has id %s", t.id)
		case listed[ids[i]] > 1:
			aerr = refuse(kerr.InvalidRequest, "topic %q is listed more than once", c.img.topics[ids[i]].name)
		}
		if aerr != nil {
			rt.ErrorCode, rt.ErrorMessage = aerr.err.Code, &aerr.msg
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		name := string(c.img.topics[ids[i]].name)
		rt.Topic, rt.TopicID = &name, ids[i]
		resp.Topics = append(resp.Topics, rt)
		if err := c.emit(&out, RemoveTopicRecord{ID: ids[i]}); err != nil {
			return nil, nil, err
		}
	}
	return out, resp, nil
}
