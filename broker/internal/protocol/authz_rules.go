package protocol

// The authorization rule of every API, as Kafka checks them.

import (
	"reflect"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

// Shorthands of the operations and resource types.
const (
	opRead            = kmsg.ACLOperationRead
	opWrite           = kmsg.ACLOperationWrite
	opCreate          = kmsg.ACLOperationCreate
	opDelete          = kmsg.ACLOperationDelete
	opAlter           = kmsg.ACLOperationAlter
	opDescribe        = kmsg.ACLOperationDescribe
	opClusterAction   = kmsg.ACLOperationClusterAction
	opDescribeConfigs = kmsg.ACLOperationDescribeConfigs
	opAlterConfigs    = kmsg.ACLOperationAlterConfigs
	opIdempotentWrite = kmsg.ACLOperationIdempotentWrite

	rtTopic   = kmsg.ACLResourceTypeTopic
	rtGroup   = kmsg.ACLResourceTypeGroup
	rtCluster = kmsg.ACLResourceTypeCluster
	rtTxn     = kmsg.ACLResourceTypeTransactionalId
)

func (z *authz) topic(op auth.Operation, name string) bool { return z.allowed(op, rtTopic, name) }
func (z *authz) group(op auth.Operation, name string) bool { return z.allowed(op, rtGroup, name) }
func (z *authz) cluster(op auth.Operation) bool            { return z.allowed(op, rtCluster, auth.ClusterName) }
func (z *authz) txn(op auth.Operation, id string) bool     { return z.allowed(op, rtTxn, id) }

// topicByID returns the name of the topic with id, or "" if none.
func (z *authz) topicByID(id [16]byte) string {
	if t, ok := z.s.Topics.GetByID(id); ok {
		return t.Name()
	}
	return ""
}

// canCreateTopic reports whether the principal may create topic name.
func (z *authz) canCreateTopic(name string) bool {
	return z.a.Authorized(z.principal, z.host, opCreate, rtCluster, auth.ClusterName) || z.topic(opCreate, name)
}

// split returns the items ok allows and those it does not.
func split[T any](items []T, ok func(*T) bool) (kept, denied []T) {
	kept = items[:0:0]
	for i := range items {
		if ok(&items[i]) {
			kept = append(kept, items[i])
		} else {
			denied = append(denied, items[i])
		}
	}
	return kept, denied
}

// topError is the response to r with its top-level ErrorCode set to code
// (every other field at its default).
func topError(r *Request, code *kerr.Error) kmsg.Response {
	resp := r.Body.ResponseKind()
	if d, ok := resp.(interface{ Default() }); ok {
		d.Default()
	}
	resp.SetVersion(r.Version)
	f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
	if f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(code.Code))
	}
	return resp
}

// only lets r through when allowed, and otherwise answers it with a
// top-level error code.
func only(allowed bool, r *Request, code *kerr.Error) (kmsg.Response, func(kmsg.Response)) {
	if allowed {
		return nil, nil
	}
	return topError(r, code), nil
}

func init() {
	rules := map[kmsg.Key]func(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)){
		kmsg.Produce:                      authProduce,
		kmsg.Fetch:                        authFetch,
		kmsg.ListOffsets:                  authListOffsets,
		kmsg.Metadata:                     authMetadata,
		kmsg.OffsetCommit:                 authOffsetCommit,
		kmsg.OffsetFetch:                  authOffsetFetch,
		kmsg.FindCoordinator:              authFindCoordinator,
		kmsg.JoinGroup:                    authGroupTop(func(r *Request) string { return r.Body.(*kmsg.JoinGroupRequest).Group }),
		kmsg.Heartbeat:                    authGroupTop(func(r *Request) string { return r.Body.(*kmsg.HeartbeatRequest).Group }),
		kmsg.LeaveGroup:                   authGroupTop(func(r *Request) string { return r.Body.(*kmsg.LeaveGroupRequest).Group }),
		kmsg.SyncGroup:                    authGroupTop(func(r *Request) string { return r.Body.(*kmsg.SyncGroupRequest).Group }),
		kmsg.DescribeGroups:               authDescribeGroups,
		kmsg.ListGroups:                   authListGroups,
		kmsg.CreateTopics:                 authCreateTopics,
		kmsg.DeleteTopics:                 authDeleteTopics,
		kmsg.DeleteRecords:                authDeleteRecords,
		kmsg.InitProducerID:               authInitProducerID,
		kmsg.OffsetForLeaderEpoch:         authOffsetForLeaderEpoch,
		kmsg.AddPartitionsToTxn:           authAddPartitionsToTxn,
		kmsg.AddOffsetsToTxn:              authAddOffsetsToTxn,
		kmsg.EndTxn:                       authEndTxn,
		kmsg.WriteTxnMarkers:              authWriteTxnMarkers,
		kmsg.TxnOffsetCommit:              authTxnOffsetCommit,
		kmsg.DescribeACLs:                 authClusterTop(opDescribe),
		kmsg.CreateACLs:                   authCreateACLs,
		kmsg.DeleteACLs:                   authDeleteACLs,
		kmsg.DescribeConfigs:              authDescribeConfigs,
		kmsg.AlterConfigs:                 authAlterConfigs,
		kmsg.CreatePartitions:             authCreatePartitions,
		kmsg.DeleteGroups:                 authDeleteGroups,
		kmsg.IncrementalAlterConfigs:      authIncrementalAlterConfigs,
		kmsg.ElectLeaders:                 authClusterTop(opAlter),
		kmsg.AlterPartitionAssignments:    authClusterTop(opAlter),
		kmsg.ListPartitionReassignments:   authClusterTop(opDescribe),
		kmsg.OffsetDelete:                 authOffsetDelete,
		kmsg.DescribeUserSCRAMCredentials: authClusterTop(opDescribe),
		kmsg.AlterUserSCRAMCredentials:    authAlterUserSCRAM,
		kmsg.DescribeQuorum:               authClusterTop(opDescribe),
		kmsg.AlterPartition:               authClusterTop(opClusterAction),
		kmsg.DescribeCluster:              authClusterTop(opDescribe),
		kmsg.DescribeLogDirs:              authClusterTop(opDescribe),
		kmsg.DescribeProducers:            authDescribeProducers,
		kmsg.DescribeTransactions:         authDescribeTransactions,
		kmsg.ListTransactions:             authListTransactions,
	}
	for k, fn := range rules {
		authRules[k.Int16()] = authRule{check: fn}
	}
}

// authClusterTop needs op on the cluster, else CLUSTER_AUTHORIZATION_FAILED
// as the top-level error.
func authClusterTop(op auth.Operation) func(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	return func(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
		return only(z.cluster(op), r, kerr.ClusterAuthorizationFailed)
	}
}

// authGroupTop needs READ on the request's group, else
// GROUP_AUTHORIZATION_FAILED as the top-level error.
func authGroupTop(group func(*Request) string) func(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	return func(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
		return only(z.group(opRead, group(r)), r, kerr.GroupAuthorizationFailed)
	}
}

// Produce: WRITE on the transactional id if any, WRITE on each topic (and
// CREATE for a topic the broker would create).
func authProduce(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.ProduceRequest)
	txnDenied := req.TransactionID != nil && !z.txn(opWrite, *req.TransactionID)
	var unknown []kmsg.ProduceRequestTopic
	kept, denied := split(req.Topics, func(t *kmsg.ProduceRequestTopic) bool { return !txnDenied && z.topic(opWrite, t.Topic) })
	if z.s.cfg.AutoCreateTopics {
		kept, unknown = split(kept, func(t *kmsg.ProduceRequestTopic) bool {
			_, ok := z.s.Topics.Get(t.Topic)
			return ok || z.canCreateTopic(t.Topic)
		})
	}
	if len(denied) == 0 && len(unknown) == 0 {
		return nil, nil
	}
	req.Topics = kept
	code := kerr.TopicAuthorizationFailed.Code
	if txnDenied {
		code = kerr.TransactionalIDAuthorizationFailed.Code
	}
	return nil, func(resp kmsg.Response) {
		pr := resp.(*kmsg.ProduceResponse)
		add := func(ts []kmsg.ProduceRequestTopic, code int16) {
			for _, t := range ts {
				rt := kmsg.NewProduceResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewProduceResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				pr.Topics = append(pr.Topics, rt)
			}
		}
		add(denied, code)
		add(unknown, kerr.UnknownTopicOrPartition.Code)
	}
}

// Fetch: CLUSTER_ACTION for a replica, READ on each topic for a consumer.
func authFetch(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.FetchRequest)
	if req.ReplicaID >= 0 || req.ReplicaState.ID >= 0 {
		return only(z.cluster(opClusterAction), r, kerr.ClusterAuthorizationFailed)
	}
	kept, denied := split(req.Topics, func(t *kmsg.FetchRequestTopic) bool {
		name := t.Topic
		if r.Version >= 13 {
			name = z.topicByID(t.TopicID)
			if name == "" {
				return true // the handler answers UNKNOWN_TOPIC_ID
			}
		}
		return z.topic(opRead, name)
	})
	if len(denied) == 0 {
		return nil, nil
	}
	req.Topics = kept
	return nil, func(resp kmsg.Response) {
		fr := resp.(*kmsg.FetchResponse)
		for _, t := range denied {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			fr.Topics = append(fr.Topics, rt)
		}
	}
}

// ListOffsets: DESCRIBE on each topic.
func authListOffsets(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.ListOffsetsRequest)
	kept, denied := split(req.Topics, func(t *kmsg.ListOffsetsRequestTopic) bool { return z.topic(opDescribe, t.Topic) })
	if len(denied) == 0 {
		return nil, nil
	}
	req.Topics = kept
	return nil, func(resp kmsg.Response) {
		lr := resp.(*kmsg.ListOffsetsResponse)
		for _, t := range denied {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			lr.Topics = append(lr.Topics, rt)
		}
	}
}

// Metadata: only the topics the principal may DESCRIBE are listed; a
// named topic it may not describe is TOPIC_AUTHORIZATION_FAILED; an
// unknown topic is auto-created only with CREATE (on the cluster or the
// topic), and is otherwise UNKNOWN_TOPIC_OR_PARTITION.
func authMetadata(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.MetadataRequest)
	all := req.Topics == nil || (r.Version == 0 && len(req.Topics) == 0)
	if all {
		return nil, func(resp kmsg.Response) {
			mr := resp.(*kmsg.MetadataResponse)
			mr.Topics, _ = split(mr.Topics, func(t *kmsg.MetadataResponseTopic) bool {
				return t.Topic != nil && z.topic(opDescribe, *t.Topic)
			})
		}
	}
	var denied, unknown []kmsg.MetadataRequestTopic
	kept, denied := split(req.Topics, func(t *kmsg.MetadataRequestTopic) bool {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		} else if name = z.topicByID(t.TopicID); name == "" {
			return true // the handler answers UNKNOWN_TOPIC_ID
		}
		return z.topic(opDescribe, name)
	})
	kept, unknown = split(kept, func(t *kmsg.MetadataRequestTopic) bool {
		if t.Topic == nil {
			return true
		}
		_, ok := z.s.Topics.Get(*t.Topic)
		return ok || z.canCreateTopic(*t.Topic)
	})
	if len(denied) == 0 && len(unknown) == 0 {
		return nil, nil
	}
	req.Topics = kept
	if req.Topics == nil {
		req.Topics = []kmsg.MetadataRequestTopic{} // not "every topic" (but in v0 it is: see below)
	}
	return nil, func(resp kmsg.Response) {
		mr := resp.(*kmsg.MetadataResponse)
		// A v0 request left with no topic asked for every topic.
		mr.Topics, _ = split(mr.Topics, func(t *kmsg.MetadataResponseTopic) bool {
			return t.Topic == nil || slices.ContainsFunc(kept, func(k kmsg.MetadataRequestTopic) bool { return k.Topic != nil && *k.Topic == *t.Topic })
		})
		add := func(ts []kmsg.MetadataRequestTopic, code int16) {
			for _, t := range ts {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic, mt.TopicID, mt.ErrorCode = t.Topic, t.TopicID, code
				mr.Topics = append(mr.Topics, mt)
			}
		}
		add(denied, kerr.TopicAuthorizationFailed.Code)
		add(unknown, kerr.UnknownTopicOrPartition.Code)
	}
}

// OffsetCommit: READ on the group, READ on each topic.
func authOffsetCommit(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.OffsetCommitRequest)
	groupOK := z.group(opRead, req.Group)
	kept, denied := split(req.Topics, func(t *kmsg.OffsetCommitRequestTopic) bool { return groupOK && z.topic(opRead, t.Topic) })
	if len(denied) == 0 {
		return nil, nil
	}
	code := kerr.TopicAuthorizationFailed.Code
	if !groupOK {
		code = kerr.GroupAuthorizationFailed.Code
	}
	mirror := func(resp *kmsg.OffsetCommitResponse) {
		for _, t := range denied {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	if !groupOK {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		mirror(resp)
		return resp, nil
	}
	req.Topics = kept
	return nil, func(resp kmsg.Response) { mirror(resp.(*kmsg.OffsetCommitResponse)) }
}

// OffsetFetch: DESCRIBE on each group; a topic the principal may not
// DESCRIBE is TOPIC_AUTHORIZATION_FAILED when named, left out when every
// topic was asked for. Read-only: checked on the response.
func authOffsetFetch(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.OffsetFetchRequest)
	if r.Version < 8 {
		if !z.group(opDescribe, req.Group) {
			resp := topError(r, kerr.GroupAuthorizationFailed).(*kmsg.OffsetFetchResponse)
			for _, t := range req.Topics { // v0-1 carry the error per partition
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p, kerr.GroupAuthorizationFailed.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil
		}
		all := req.Topics == nil
		return nil, func(resp kmsg.Response) {
			or := resp.(*kmsg.OffsetFetchResponse)
			if all {
				or.Topics, _ = split(or.Topics, func(t *kmsg.OffsetFetchResponseTopic) bool { return z.topic(opDescribe, t.Topic) })
				return
			}
			for i := range or.Topics {
				if t := &or.Topics[i]; !z.topic(opDescribe, t.Topic) {
					for j := range t.Partitions {
						t.Partitions[j].ErrorCode, t.Partitions[j].Offset, t.Partitions[j].Metadata = kerr.TopicAuthorizationFailed.Code, -1, nil
					}
				}
			}
		}
	}
	allTopics := map[string]bool{}
	for _, g := range req.Groups {
		allTopics[g.Group] = g.Topics == nil
	}
	return nil, func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetFetchResponse)
		for i := range or.Groups {
			g := &or.Groups[i]
			if !z.group(opDescribe, g.Group) {
				g.Topics, g.ErrorCode = nil, kerr.GroupAuthorizationFailed.Code
				continue
			}
			if allTopics[g.Group] {
				g.Topics, _ = split(g.Topics, func(t *kmsg.OffsetFetchResponseGroupTopic) bool { return z.topic(opDescribe, t.Topic) })
				continue
			}
			for j := range g.Topics {
				if t := &g.Topics[j]; !z.topic(opDescribe, t.Topic) {
					for k := range t.Partitions {
						t.Partitions[k].ErrorCode, t.Partitions[k].Offset, t.Partitions[k].Metadata = kerr.TopicAuthorizationFailed.Code, -1, nil
					}
				}
			}
		}
	}
}

// FindCoordinator: DESCRIBE on the group or transactional id.
func authFindCoordinator(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.FindCoordinatorRequest)
	check := func(key string) int16 {
		switch req.CoordinatorType {
		case 0:
			if !z.group(opDescribe, key) {
				return kerr.GroupAuthorizationFailed.Code
			}
		case 1:
			if !z.txn(opDescribe, key) {
				return kerr.TransactionalIDAuthorizationFailed.Code
			}
		}
		return 0
	}
	return nil, func(resp kmsg.Response) {
		fr := resp.(*kmsg.FindCoordinatorResponse)
		if r.Version < 4 {
			if code := check(req.CoordinatorKey); code != 0 {
				fr.ErrorCode, fr.ErrorMessage, fr.NodeID, fr.Host, fr.Port = code, nil, -1, "", -1
			}
			return
		}
		for i := range fr.Coordinators {
			c := &fr.Coordinators[i]
			if code := check(c.Key); code != 0 {
				c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port = code, nil, -1, "", -1
			}
		}
	}
}

// DescribeGroups: DESCRIBE on each group.
func authDescribeGroups(z *authz, _ *Request) (kmsg.Response, func(kmsg.Response)) {
	return nil, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DescribeGroupsResponse)
		for i := range dr.Groups {
			if g := &dr.Groups[i]; !z.group(opDescribe, g.Group) {
				ng := kmsg.NewDescribeGroupsResponseGroup()
				ng.Group, ng.ErrorCode = g.Group, kerr.GroupAuthorizationFailed.Code
				*g = ng
			}
		}
	}
}

// ListGroups: every group with DESCRIBE on the cluster, else those the
// principal may DESCRIBE.
func authListGroups(z *authz, _ *Request) (kmsg.Response, func(kmsg.Response)) {
	if z.a.Authorized(z.principal, z.host, opDescribe, rtCluster, auth.ClusterName) {
		return nil, nil
	}
	return nil, func(resp kmsg.Response) {
		lr := resp.(*kmsg.ListGroupsResponse)
		lr.Groups, _ = split(lr.Groups, func(g *kmsg.ListGroupsResponseGroup) bool { return z.group(opDescribe, g.Group) })
	}
}

// CreateTopics: CREATE on the cluster or on each topic.
func authCreateTopics(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.CreateTopicsRequest)
	kept, denied := split(req.Topics, func(t *kmsg.CreateTopicsRequestTopic) bool { return z.canCreateTopic(t.Topic) })
	if len(denied) == 0 {
		return nil, nil
	}
	req.Topics = kept
	return nil, func(resp kmsg.Response) {
		cr := resp.(*kmsg.CreateTopicsResponse)
		for _, t := range denied {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, kerr.TopicAuthorizationFailed.Code
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
			cr.Topics = append(cr.Topics, rt)
		}
	}
}

// DeleteTopics: DELETE on each topic.
func authDeleteTopics(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.DeleteTopicsRequest)
	var deniedNames []string
	var deniedTopics []kmsg.DeleteTopicsRequestTopic
	req.TopicNames, deniedNames = split(req.TopicNames, func(n *string) bool { return z.topic(opDelete, *n) })
	req.Topics, deniedTopics = split(req.Topics, func(t *kmsg.DeleteTopicsRequestTopic) bool {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		} else if name = z.topicByID(t.TopicID); name == "" {
			return true
		}
		return z.topic(opDelete, name)
	})
	if len(deniedNames) == 0 && len(deniedTopics) == 0 {
		return nil, nil
	}
	return nil, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DeleteTopicsResponse)
		for _, n := range deniedNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(n), kerr.TopicAuthorizationFailed.Code
			dr.Topics = append(dr.Topics, rt)
		}
		for _, t := range deniedTopics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, kerr.TopicAuthorizationFailed.Code
			dr.Topics = append(dr.Topics, rt)
		}
	}
}

// DeleteRecords: DELETE on each topic.
func authDeleteRecords(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.DeleteRecordsRequest)
	kept, denied := split(req.Topics, func(t *kmsg.DeleteRecordsRequestTopic) bool { return z.topic(opDelete, t.Topic) })
	if len(denied) == 0 {
		return nil, nil
	}
	req.Topics = kept
	return nil, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DeleteRecordsResponse)
		for _, t := range denied {
			rt := kmsg.NewDeleteRecordsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDeleteRecordsResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.LowWatermark = p.Partition, kerr.TopicAuthorizationFailed.Code, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			dr.Topics = append(dr.Topics, rt)
		}
	}
}

// InitProducerId: WRITE on the transactional id; an idempotent producer
// needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
func authInitProducerID(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.InitProducerIDRequest)
	if req.TransactionalID != nil {
		return only(z.txn(opWrite, *req.TransactionalID), r, kerr.TransactionalIDAuthorizationFailed)
	}
	ok := z.a.Authorized(z.principal, z.host, opIdempotentWrite, rtCluster, auth.ClusterName) ||
		z.a.AnyAllowed(z.principal, z.host, opWrite, rtTopic)
	if !ok {
		z.s.sec.denied.Inc()
	}
	return only(ok, r, kerr.ClusterAuthorizationFailed)
}

// OffsetForLeaderEpoch: CLUSTER_ACTION for a replica, DESCRIBE on each
// topic for a consumer (read-only: checked on the response).
func authOffsetForLeaderEpoch(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.OffsetForLeaderEpochRequest)
	if req.ReplicaID >= 0 && r.Version >= 3 {
		if !z.cluster(opClusterAction) {
			resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
			for _, t := range req.Topics {
				rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, kerr.ClusterAuthorizationFailed.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil
		}
		return nil, nil
	}
	return nil, func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetForLeaderEpochResponse)
		for i := range or.Topics {
			if t := &or.Topics[i]; !z.topic(opDescribe, t.Topic) {
				for j := range t.Partitions {
					p := &t.Partitions[j]
					p.ErrorCode, p.LeaderEpoch, p.EndOffset = kerr.TopicAuthorizationFailed.Code, -1, -1
				}
			}
		}
	}
}

// AddPartitionsToTxn: WRITE on the transactional id and on each topic
// (v0-3); the batched broker form (v4+) needs CLUSTER_ACTION.
func authAddPartitionsToTxn(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.AddPartitionsToTxnRequest)
	if r.Version >= 4 {
		return only(z.cluster(opClusterAction), r, kerr.ClusterAuthorizationFailed)
	}
	txnOK := z.txn(opWrite, req.TransactionalID)
	kept, denied := split(req.Topics, func(t *kmsg.AddPartitionsToTxnRequestTopic) bool { return txnOK && z.topic(opWrite, t.Topic) })
	if len(denied) == 0 {
		return nil, nil
	}
	// Kafka fails the whole request: the topics allowed are answered
	// OPERATION_NOT_ATTEMPTED.
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	add := func(ts []kmsg.AddPartitionsToTxnRequestTopic, code int16) {
		for _, t := range ts {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	code := kerr.TopicAuthorizationFailed.Code
	if !txnOK {
		code = kerr.TransactionalIDAuthorizationFailed.Code
	}
	add(denied, code)
	add(kept, kerr.OperationNotAttempted.Code)
	return resp, nil
}

// AddOffsetsToTxn: WRITE on the transactional id, READ on the group.
func authAddOffsetsToTxn(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.AddOffsetsToTxnRequest)
	if !z.txn(opWrite, req.TransactionalID) {
		return topError(r, kerr.TransactionalIDAuthorizationFailed), nil
	}
	return only(z.group(opRead, req.Group), r, kerr.GroupAuthorizationFailed)
}

// EndTxn: WRITE on the transactional id.
func authEndTxn(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.EndTxnRequest)
	return only(z.txn(opWrite, req.TransactionalID), r, kerr.TransactionalIDAuthorizationFailed)
}

// WriteTxnMarkers: CLUSTER_ACTION (brokers only).
func authWriteTxnMarkers(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	if z.cluster(opClusterAction) {
		return nil, nil
	}
	req := r.Body.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition, rp.ErrorCode = p, kerr.ClusterAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp, nil
}

// TxnOffsetCommit: WRITE on the transactional id, READ on the group and
// on each topic.
func authTxnOffsetCommit(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.TxnOffsetCommitRequest)
	var whole int16
	switch {
	case !z.txn(opWrite, req.TransactionalID):
		whole = kerr.TransactionalIDAuthorizationFailed.Code
	case !z.group(opRead, req.Group):
		whole = kerr.GroupAuthorizationFailed.Code
	}
	kept, denied := split(req.Topics, func(t *kmsg.TxnOffsetCommitRequestTopic) bool { return whole == 0 && z.topic(opRead, t.Topic) })
	if len(denied) == 0 {
		return nil, nil
	}
	code := whole
	if code == 0 {
		code = kerr.TopicAuthorizationFailed.Code
	}
	mirror := func(resp *kmsg.TxnOffsetCommitResponse) {
		for _, t := range denied {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	if whole != 0 {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		mirror(resp)
		return resp, nil
	}
	req.Topics = kept
	return nil, func(resp kmsg.Response) { mirror(resp.(*kmsg.TxnOffsetCommitResponse)) }
}

// CreateAcls: ALTER on the cluster.
func authCreateACLs(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	if z.cluster(opAlter) {
		return nil, nil
	}
	req := r.Body.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// DeleteAcls: ALTER on the cluster.
func authDeleteACLs(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	if z.cluster(opAlter) {
		return nil, nil
	}
	req := r.Body.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// configAllowed reports whether op is allowed on a config resource: a
// topic, or the broker (the cluster resource).
func (z *authz) configAllowed(op auth.Operation, rt kmsg.ConfigResourceType, name string) (bool, int16) {
	if rt == kmsg.ConfigResourceTypeTopic {
		return z.topic(op, name), kerr.TopicAuthorizationFailed.Code
	}
	return z.cluster(op), kerr.ClusterAuthorizationFailed.Code
}

// DescribeConfigs: DESCRIBE_CONFIGS on each topic or on the cluster.
func authDescribeConfigs(z *authz, _ *Request) (kmsg.Response, func(kmsg.Response)) {
	return nil, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DescribeConfigsResponse)
		for i := range dr.Resources {
			res := &dr.Resources[i]
			if ok, code := z.configAllowed(opDescribeConfigs, res.ResourceType, res.ResourceName); !ok {
				res.ErrorCode, res.ErrorMessage, res.Configs = code, nil, nil
			}
		}
	}
}

// AlterConfigs: ALTER_CONFIGS on each topic or on the cluster.
func authAlterConfigs(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.AlterConfigsRequest)
	kept, denied := split(req.Resources, func(res *kmsg.AlterConfigsRequestResource) bool {
		ok, _ := z.configAllowed(opAlterConfigs, res.ResourceType, res.ResourceName)
		return ok
	})
	if len(denied) == 0 {
		return nil, nil
	}
	req.Resources = kept
	return nil, func(resp kmsg.Response) {
		ar := resp.(*kmsg.AlterConfigsResponse)
		for _, res := range denied {
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
			_, rr.ErrorCode = z.configAllowed(opAlterConfigs, res.ResourceType, res.ResourceName)
			ar.Resources = append(ar.Resources, rr)
		}
	}
}

// IncrementalAlterConfigs: ALTER_CONFIGS on each topic or on the cluster.
func authIncrementalAlterConfigs(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.IncrementalAlterConfigsRequest)
	kept, denied := split(req.Resources, func(res *kmsg.IncrementalAlterConfigsRequestResource) bool {
		ok, _ := z.configAllowed(opAlterConfigs, res.ResourceType, res.ResourceName)
		return ok
	})
	if len(denied) == 0 {
		return nil, nil
	}
	req.Resources = kept
	return nil, func(resp kmsg.Response) {
		ar := resp.(*kmsg.IncrementalAlterConfigsResponse)
		for _, res := range denied {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
			_, rr.ErrorCode = z.configAllowed(opAlterConfigs, res.ResourceType, res.ResourceName)
			ar.Resources = append(ar.Resources, rr)
		}
	}
}

// CreatePartitions: ALTER on each topic.
func authCreatePartitions(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.CreatePartitionsRequest)
	kept, denied := split(req.Topics, func(t *kmsg.CreatePartitionsRequestTopic) bool { return z.topic(opAlter, t.Topic) })
	if len(denied) == 0 {
		return nil, nil
	}
	req.Topics = kept
	return nil, func(resp kmsg.Response) {
		cr := resp.(*kmsg.CreatePartitionsResponse)
		for _, t := range denied {
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, kerr.TopicAuthorizationFailed.Code
			cr.Topics = append(cr.Topics, rt)
		}
	}
}

// DeleteGroups: DELETE on each group.
func authDeleteGroups(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.DeleteGroupsRequest)
	kept, denied := split(req.Groups, func(g *string) bool { return z.group(opDelete, *g) })
	if len(denied) == 0 {
		return nil, nil
	}
	req.Groups = kept
	return nil, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DeleteGroupsResponse)
		for _, g := range denied {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
			dr.Groups = append(dr.Groups, rg)
		}
	}
}

// OffsetDelete: DELETE on the group, READ on each topic.
func authOffsetDelete(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	req := r.Body.(*kmsg.OffsetDeleteRequest)
	if !z.group(opDelete, req.Group) {
		return topError(r, kerr.GroupAuthorizationFailed), nil
	}
	kept, denied := split(req.Topics, func(t *kmsg.OffsetDeleteRequestTopic) bool { return z.topic(opRead, t.Topic) })
	if len(denied) == 0 {
		return nil, nil
	}
	req.Topics = kept
	return nil, func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetDeleteResponse)
		for _, t := range denied {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			or.Topics = append(or.Topics, rt)
		}
	}
}

// AlterUserScramCredentials: ALTER on the cluster.
func authAlterUserSCRAM(z *authz, r *Request) (kmsg.Response, func(kmsg.Response)) {
	if z.cluster(opAlter) {
		return nil, nil
	}
	req := r.Body.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	seen := map[string]bool{}
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = u, kerr.ClusterAuthorizationFailed.Code
			resp.Results = append(resp.Results, res)
		}
	}
	for _, d := range req.Deletions {
		add(d.Name)
	}
	for _, u := range req.Upsertions {
		add(u.Name)
	}
	return resp, nil
}

// DescribeProducers: READ on each topic (read-only: checked on the
// response).
func authDescribeProducers(z *authz, _ *Request) (kmsg.Response, func(kmsg.Response)) {
	return nil, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DescribeProducersResponse)
		for i := range dr.Topics {
			if t := &dr.Topics[i]; !z.topic(opRead, t.Topic) {
				for j := range t.Partitions {
					t.Partitions[j].ErrorCode, t.Partitions[j].ErrorMessage, t.Partitions[j].ActiveProducers = kerr.TopicAuthorizationFailed.Code, nil, nil
				}
			}
		}
	}
}

// DescribeTransactions: DESCRIBE on each transactional id.
func authDescribeTransactions(z *authz, _ *Request) (kmsg.Response, func(kmsg.Response)) {
	return nil, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DescribeTransactionsResponse)
		for i := range dr.TransactionStates {
			if s := &dr.TransactionStates[i]; !z.txn(opDescribe, s.TransactionalID) {
				ns := kmsg.NewDescribeTransactionsResponseTransactionState()
				ns.TransactionalID, ns.ErrorCode = s.TransactionalID, kerr.TransactionalIDAuthorizationFailed.Code
				*s = ns
			}
		}
	}
}

// ListTransactions: only the transactional ids the principal may
// DESCRIBE.
func authListTransactions(z *authz, _ *Request) (kmsg.Response, func(kmsg.Response)) {
	return nil, func(resp kmsg.Response) {
		lr := resp.(*kmsg.ListTransactionsResponse)
		lr.TransactionStates, _ = split(lr.TransactionStates, func(s *kmsg.ListTransactionsResponseTransactionState) bool {
			return z.txn(opDescribe, s.TransactionalID)
		})
	}
}
