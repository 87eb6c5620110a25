package protocol

// Cluster mode: the handlers a broker of a Weir cluster uses in place of the
// single-node ones for the requests whose answer depends on the cluster's
// metadata (Metadata, DescribeCluster, FindCoordinator), for the admin
// requests only the controller decides (CreateTopics, DeleteTopics,
// CreatePartitions: forwarded to it), and for the partition requests only a
// partition's leader may serve (Produce, Fetch, ListOffsets: the partitions
// this broker does not lead get NOT_LEADER_OR_FOLLOWER, naming the current
// leader where the version carries it (KIP-951: Produce v10 with the
// leaders' endpoints, Fetch v12+), the rest go to the single-node handler
// unchanged).
//
// A Server without Config.Cluster installs none of this: the single-node
// path does no extra work.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// ClusterView is the cluster metadata as of one applied offset of the
// metadata log, in the shape the handlers need. A view is immutable once
// published: the cluster package builds a new one at every change.
type ClusterView struct {
	// Applied is the metadata log offset the view stands for.
	Applied uint64
	// ClusterID is the cluster's id (the quorum's), served in place of the
	// single-node broker's.
	ClusterID string
	// ControllerID is the active controller's node id, -1 if none is known.
	ControllerID int32
	// Brokers are the registered, unfenced brokers, by node id, with their
	// advertised client address.
	Brokers []Node
	// Fenced are the registered brokers that are fenced, by node id
	// (DescribeCluster v2 lists them when asked).
	Fenced []Node
	// Topics by name and by id.
	Topics map[string]*ClusterTopic
	ByID   map[[16]byte]*ClusterTopic
}

// ClusterTopic is one topic of a ClusterView.
type ClusterTopic struct {
	Name       string
	ID         [16]byte
	Partitions []ClusterPartition // index = partition
	// Configs are the topic's explicit configs (not the defaults); nil
	// when none is set. Read only.
	Configs map[string]string
}

// ClusterPartition is one partition's placement.
type ClusterPartition struct {
	// Leader is the leader's node id, -1 if the partition has none.
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

// Cluster is what a Server in cluster mode asks of the cluster package.
type Cluster interface {
	// View returns the current view (never nil).
	View() *ClusterView
	// Forward sends a request only the controller answers to the active
	// controller and returns its reply once this broker's view includes
	// what the reply reports. An error means no answer was had (the caller
	// answers with a retriable code).
	Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// MetadataSyncer is a Cluster that can bring its view up to the active
// controller's metadata: SyncMetadata returns once the view includes
// everything the controller had applied when it answered, or an error
// when no controller answered or the view did not get there in time.
type MetadataSyncer interface {
	SyncMetadata(ctx context.Context) error
}

// LocalTopicAwaiter is a Cluster that can wait (briefly, bounded) for the
// local log of a topic its view already names, so that a request for a
// partition led here is not refused only because it came first.
type LocalTopicAwaiter interface {
	AwaitLocalTopic(name string, id [16]byte) bool
}

// ErrNoController is returned (wrapped) by Cluster.Forward when no
// controller could be reached; handlers answer NOT_CONTROLLER, which
// clients retry.
var ErrNoController = errors.New("protocol: no active controller reachable")

// clusterHandlers replace the handlers of these keys in cluster mode.
var clusterHandlers = map[int16]HandlerFunc{
	kmsg.Metadata.Int16():         clusterMetadata,
	kmsg.DescribeCluster.Int16():  clusterDescribeCluster,
	kmsg.FindCoordinator.Int16():  clusterFindCoordinator,
	kmsg.CreateTopics.Int16():     clusterForward,
	kmsg.DeleteTopics.Int16():     clusterForward,
	kmsg.CreatePartitions.Int16(): clusterForward,
	kmsg.Produce.Int16():          clusterProduce,
	kmsg.Fetch.Int16():            clusterFetch,
	kmsg.ListOffsets.Int16():      clusterListOffsets,
}

// handlerFor returns the handler to run for f: the cluster one in cluster
// mode, else the registered one.
func (s *Server) handlerFor(f *frame) HandlerFunc {
	if s.cfg.Cluster != nil {
		if fn, ok := clusterHandlers[f.req.Key]; ok {
			return fn
		}
	}
	return f.h.fn
}

// leads reports whether this node leads partition p of topic t in v, and
// the local partition to serve it from: the local topic must be the same
// topic (same id), or the partition is not served yet.
func (s *Server) leads(v *ClusterView, ct *ClusterTopic, p int32) (*topics.Partition, int16) {
	if ct == nil {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if p < 0 || int(p) >= len(ct.Partitions) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if ct.Partitions[p].Leader != s.cfg.Node.ID {
		return nil, kerr.NotLeaderForPartition.Code
	}
	t, ok := s.Topics.Get(ct.Name)
	if !ok || t.ID() != ct.ID {
		// Led here, but the local log is not created yet: wait for it a
		// little, else answer retriable.
		a, can := s.cfg.Cluster.(LocalTopicAwaiter)
		if !can || !a.AwaitLocalTopic(ct.Name, ct.ID) {
			return nil, kerr.NotLeaderForPartition.Code
		}
		if t, ok = s.Topics.Get(ct.Name); !ok || t.ID() != ct.ID {
			return nil, kerr.NotLeaderForPartition.Code
		}
	}
	lp, ok := t.Partition(p)
	if !ok {
		return nil, kerr.NotLeaderForPartition.Code
	}
	return lp, 0
}

// leadsInEpoch is leads for a request naming the leader epoch its client
// knows (CurrentLeaderEpoch, -1: none), checked as Kafka's
// Partition.getLocalLog does: the epoch first, against this broker's
// replica whether or not it leads (FENCED_LEADER_EPOCH when older,
// UNKNOWN_LEADER_EPOCH when newer: a client sent here by stale metadata
// learns that its metadata is stale, and a consumer that its leader may
// have truncated), then the leadership (NOT_LEADER_OR_FOLLOWER). A broker
// that holds no replica has no epoch to compare.
func (s *Server) leadsInEpoch(v *ClusterView, ct *ClusterTopic, p, epoch int32) (*topics.Partition, int16) {
	lp, code := s.leads(v, ct, p)
	if code == 0 {
		if code = s.replicaCheckEpoch(lp, epoch); code != 0 {
			return nil, code
		}
		return lp, 0
	}
	if code != kerr.NotLeaderForPartition.Code || epoch < 0 {
		return nil, code
	}
	if t, ok := s.Topics.Get(ct.Name); ok && t.ID() == ct.ID {
		if rp, ok := t.Partition(p); ok {
			switch c := s.replicaCheckEpoch(rp, epoch); c {
			case kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code:
				return nil, c
			}
		}
	}
	return nil, code
}

func clusterMetadata(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	v := s.cfg.Cluster.View()
	all := req.Topics == nil || (r.Version == 0 && len(req.Topics) == 0)
	autoCreate := s.cfg.AutoCreateTopics && (r.Version < 4 || req.AllowAutoTopicCreation)
	if !all && autoCreate {
		var create []string
		for _, rt := range req.Topics {
			// NB: internal topics are never auto-created for a client
			// (__consumer_offsets is created by FindCoordinator,
			// group_cluster.go).
			if rt.Topic != nil && v.Topics[*rt.Topic] == nil && topics.ValidateName(*rt.Topic) == nil && !strings.HasPrefix(*rt.Topic, "__") {
				create = append(create, *rt.Topic)
			}
		}
		if len(create) > 0 {
			s.clusterAutoCreate(ctx, create)
			v = s.cfg.Cluster.View()
		}
	}
	for _, b := range v.Brokers {
		b = b.For(r)
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.ID, b.Host, b.Port
		resp.Brokers = append(resp.Brokers, mb)
	}
	cid := v.ClusterID
	resp.ClusterID = &cid
	resp.ControllerID = v.ControllerID
	if all {
		for _, name := range sortedTopicNames(v) {
			resp.Topics = append(resp.Topics, clusterMetadataTopic(v.Topics[name]))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		var ct *ClusterTopic
		if rt.Topic == nil {
			ct = v.ByID[rt.TopicID]
		} else {
			ct = v.Topics[*rt.Topic]
		}
		if ct == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				mt.ErrorCode = kerr.UnknownTopicID.Code
			} else if topics.ValidateName(*rt.Topic) != nil {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			} else if autoCreate {
				mt.ErrorCode = kerr.LeaderNotAvailable.Code // being created: retriable
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, clusterMetadataTopic(ct))
	}
	return resp, nil
}

// clusterAutoCreate asks the controller to create topics with the defaults
// (bounded to a few seconds); failures are left to the caller, which finds
// the topics missing.
func (s *Server) clusterAutoCreate(ctx context.Context, names []string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, n := range names {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = n, s.cfg.DefaultPartitions, -1
		req.Topics = append(req.Topics, t)
	}
	if _, err := s.cfg.Cluster.Forward(ctx, req); err != nil {
		s.Logger.Debug("protocol: auto-create through the controller failed", "topics", names, "err", err)
	}
}

func sortedTopicNames(v *ClusterView) []string {
	out := make([]string, 0, len(v.Topics))
	for n := range v.Topics {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func clusterMetadataTopic(ct *ClusterTopic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := ct.Name
	mt.Topic, mt.TopicID = &name, ct.ID
	mt.IsInternal = len(name) > 2 && name[:2] == "__"
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(ct.Partitions))
	for i, cp := range ct.Partitions {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = int32(i)
		p.Leader, p.LeaderEpoch = cp.Leader, cp.LeaderEpoch
		p.Replicas, p.ISR = cp.Replicas, cp.ISR
		if cp.Leader < 0 {
			p.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions[i] = p
	}
	return mt
}

func clusterDescribeCluster(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	v := s.cfg.Cluster.View()
	resp.EndpointType = req.EndpointType
	resp.ClusterID = v.ClusterID
	resp.ControllerID = v.ControllerID
	for _, b := range v.Brokers {
		b = b.For(r)
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port = b.ID, b.Host, b.Port
		resp.Brokers = append(resp.Brokers, db)
	}
	if req.IncludeFencedBrokers {
		for _, b := range v.Fenced {
			b = b.For(r)
			db := kmsg.NewDescribeClusterResponseBroker()
			db.NodeID, db.Host, db.Port, db.IsFenced = b.ID, b.Host, b.Port, true
			resp.Brokers = append(resp.Brokers, db)
		}
	}
	return resp, nil
}

// clusterForward sends an admin request to the controller. When none
// answers, every topic of the request gets NOT_CONTROLLER with a message.
func clusterForward(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	// The request's own timeout bounds the wait for a controller.
	var timeout int32
	switch req := r.Body.(type) {
	case *kmsg.CreateTopicsRequest:
		timeout = req.TimeoutMillis
	case *kmsg.DeleteTopicsRequest:
		timeout = req.TimeoutMillis
	case *kmsg.CreatePartitionsRequest:
		timeout = req.TimeoutMillis
	}
	fctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Millisecond)
		defer cancel()
	}
	resp, err := s.cfg.Cluster.Forward(fctx, r.Body)
	if err == nil {
		return resp, nil
	}
	msg := fmt.Sprintf("weir: %v", err)
	// NOT_CONTROLLER is retriable: clients refresh metadata and retry.
	code := kerr.NotController.Code
	switch req := r.Body.(type) {
	case *kmsg.CreateTopicsRequest:
		out := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, t := range req.Topics {
			ot := kmsg.NewCreateTopicsResponseTopic()
			ot.Topic, ot.ErrorCode, ot.ErrorMessage = t.Topic, code, &msg
			out.Topics = append(out.Topics, ot)
		}
		return out, nil
	case *kmsg.DeleteTopicsRequest:
		out := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
		for _, name := range req.TopicNames {
			ot := kmsg.NewDeleteTopicsResponseTopic()
			n := name
			ot.Topic, ot.ErrorCode, ot.ErrorMessage = &n, code, &msg
			out.Topics = append(out.Topics, ot)
		}
		for _, t := range req.Topics {
			ot := kmsg.NewDeleteTopicsResponseTopic()
			ot.Topic, ot.TopicID, ot.ErrorCode, ot.ErrorMessage = t.Topic, t.TopicID, code, &msg
			out.Topics = append(out.Topics, ot)
		}
		return out, nil
	case *kmsg.CreatePartitionsRequest:
		out := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
		for _, t := range req.Topics {
			ot := kmsg.NewCreatePartitionsResponseTopic()
			ot.Topic, ot.ErrorCode, ot.ErrorMessage = t.Topic, code, &msg
			out.Topics = append(out.Topics, ot)
		}
		return out, nil
	}
	return nil, fmt.Errorf("protocol: forward %s: %w", kmsg.NameForKey(r.Key), err)
}

// clusterProduce answers the partitions this broker does not lead and
// hands the rest to the single-node handler.
func clusterProduce(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ProduceRequest)
	v := s.cfg.Cluster.View()
	leaders := map[int32]bool{} // named in CurrentLeader: their endpoints go in the reply
	var refused []kmsg.ProduceResponseTopic
	kept := req.Topics[:0:0]
	for _, rt := range req.Topics {
		ct := v.Topics[rt.Topic]
		var keep []kmsg.ProduceRequestTopicPartition
		var out kmsg.ProduceResponseTopic
		for _, rp := range rt.Partitions {
			lp, code := s.leads(v, ct, rp.Partition)
			if code == 0 {
				code = s.replicaCheckProduce(lp, req.Acks)
			}
			if code != 0 {
				op := kmsg.NewProduceResponseTopicPartition()
				op.Partition, op.ErrorCode = rp.Partition, code
				op.BaseOffset, op.LogAppendTime, op.LogStartOffset = -1, -1, -1
				if cp, ok := currentLeader(ct, rp.Partition, code); ok {
					op.CurrentLeader.LeaderID, op.CurrentLeader.LeaderEpoch = cp.Leader, cp.LeaderEpoch
					leaders[cp.Leader] = true
				}
				out.Partitions = append(out.Partitions, op)
				continue
			}
			keep = append(keep, rp)
		}
		if len(out.Partitions) > 0 {
			out.Topic = rt.Topic
			refused = append(refused, out)
		}
		if len(keep) > 0 {
			rt.Partitions = keep
			kept = append(kept, rt)
		}
	}
	if len(refused) == 0 {
		return handleProduce(ctx, s, r)
	}
	inner := *req
	inner.Topics = kept
	var resp *kmsg.ProduceResponse
	if len(kept) > 0 {
		ir := *r
		ir.Body = &inner
		out, err := handleProduce(ctx, s, &ir)
		if err != nil || out == nil {
			return out, err // acks=0 has no answer
		}
		resp = out.(*kmsg.ProduceResponse)
	} else {
		if req.Acks == 0 {
			return nil, nil
		}
		resp = req.ResponseKind().(*kmsg.ProduceResponse)
	}
	resp.Topics = append(resp.Topics, refused...)
	// KIP-951 (v10+): where the refused partitions' leaders can be reached.
	for _, b := range v.Brokers {
		if leaders[b.ID] {
			b = b.For(r)
			pb := kmsg.NewProduceResponseBroker()
			pb.NodeID, pb.Host, pb.Port = b.ID, b.Host, b.Port
			resp.Brokers = append(resp.Brokers, pb)
		}
	}
	return resp, nil
}

// currentLeader returns partition p's placement when a refusal should name
// its leader (KIP-951): NOT_LEADER_OR_FOLLOWER with a known leader.
func currentLeader(ct *ClusterTopic, p int32, code int16) (ClusterPartition, bool) {
	if code != kerr.NotLeaderForPartition.Code || ct == nil || p < 0 || int(p) >= len(ct.Partitions) || ct.Partitions[p].Leader < 0 {
		return ClusterPartition{}, false
	}
	return ct.Partitions[p], true
}

// clusterFetch answers the partitions this broker does not lead and hands
// the rest to the single-node handler.
func clusterFetch(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.FetchRequest)
	if replicaID(req, r.Version) >= 0 {
		return replicaFetch(ctx, s, r)
	}
	if req.SessionID != 0 {
		return handleFetch(ctx, s, r)
	}
	v := s.cfg.Cluster.View()
	var refused []kmsg.FetchResponseTopic
	kept := req.Topics[:0:0]
	for _, rt := range req.Topics {
		var ct *ClusterTopic
		if r.Version >= 13 {
			ct = v.ByID[rt.TopicID]
		} else {
			ct = v.Topics[rt.Topic]
		}
		if ct == nil {
			kept = append(kept, rt) // the single-node handler says it is unknown
			continue
		}
		var keep []kmsg.FetchRequestTopicPartition
		out := kmsg.NewFetchResponseTopic()
		out.Topic, out.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			_, code := s.leadsInEpoch(v, ct, rp.Partition, rp.CurrentLeaderEpoch)
			if code != 0 {
				op := kmsg.NewFetchResponseTopicPartition()
				op.Partition, op.ErrorCode = rp.Partition, code
				op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
				op.PreferredReadReplica = -1
				op.RecordBatches = []byte{}
				if cp, ok := currentLeader(ct, rp.Partition, code); ok {
					op.CurrentLeader.LeaderID, op.CurrentLeader.LeaderEpoch = cp.Leader, cp.LeaderEpoch
				}
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
	if len(refused) == 0 {
		return handleFetch(ctx, s, r)
	}
	inner := *req
	inner.Topics = kept
	if len(kept) == 0 {
		inner.MaxWaitMillis = 0 // nothing to wait for here
	}
	ir := *r
	ir.Body = &inner
	out, err := handleFetch(ctx, s, &ir)
	if err != nil {
		return nil, err
	}
	resp := out.(*kmsg.FetchResponse)
	resp.Topics = append(resp.Topics, refused...)
	return resp, nil
}

// clusterListOffsets answers the partitions this broker does not lead and
// hands the rest to the single-node handler.
func clusterListOffsets(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ListOffsetsRequest)
	v := s.cfg.Cluster.View()
	var refused []kmsg.ListOffsetsResponseTopic
	kept := req.Topics[:0:0]
	for _, rt := range req.Topics {
		ct := v.Topics[rt.Topic]
		var keep []kmsg.ListOffsetsRequestTopicPartition
		out := kmsg.NewListOffsetsResponseTopic()
		out.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			_, code := s.leadsInEpoch(v, ct, rp.Partition, rp.CurrentLeaderEpoch)
			if code != 0 {
				op := kmsg.NewListOffsetsResponseTopicPartition()
				op.Partition, op.ErrorCode = rp.Partition, code
				op.Timestamp, op.Offset = -1, -1
				if r.Version == 0 {
					op.OldStyleOffsets = []int64{}
				}
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
	out, err := handleListOffsets(ctx, s, &ir)
	if err != nil {
		return nil, err
	}
	resp := out.(*kmsg.ListOffsetsResponse)
	// The leader epoch is the image's, so that clients that check it agree.
	for i := range resp.Topics {
		if ct := v.Topics[resp.Topics[i].Topic]; ct != nil {
			for j := range resp.Topics[i].Partitions {
				p := resp.Topics[i].Partitions[j].Partition
				if p >= 0 && int(p) < len(ct.Partitions) {
					resp.Topics[i].Partitions[j].LeaderEpoch = ct.Partitions[p].LeaderEpoch
				}
			}
		}
	}
	resp.Topics = append(resp.Topics, refused...)
	return resp, nil
}
