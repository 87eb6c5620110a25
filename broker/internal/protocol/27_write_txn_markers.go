package protocol

// WriteTxnMarkers, versions 0-1: a transaction coordinator (another broker
// of the cluster) asks this broker, the leader of the named partitions, to
// end a producer's transaction in them with a COMMIT or ABORT control
// batch. Each marker is written at the partition's leader epoch and
// answered once the high watermark covers it; a partition this broker does
// not lead is answered NOT_LEADER_OR_FOLLOWER, and the coordinator tries
// it again at its leader after reading the metadata again. A marker for
// __consumer_offsets also reaches the group coordinator, which makes the
// transaction's offsets committed (or drops them). Authorized as
// CLUSTER_ACTION (authz_rules.go). v2's transaction version is not
// accepted: markers carry no KIP-890 part 2 semantics here.

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/txn"
)

func init() { register(kmsg.WriteTxnMarkers, 0, 1, handleWriteTxnMarkers) }

func handleWriteTxnMarkers(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	g, _ := s.Extension(groupExtensionName).(*groupCoordinator)
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(req.Markers))
	var wg sync.WaitGroup
	for i, m := range req.Markers {
		rm := &resp.Markers[i]
		*rm = kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		var parts []txn.TopicPartition
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, txn.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes := writeMarkersHere(ctx, s, g, m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch, parts)
			for j, tp := range parts {
				if n := len(rm.Topics); n == 0 || rm.Topics[n-1].Topic != tp.Topic {
					rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
					rt.Topic = tp.Topic
					rm.Topics = append(rm.Topics, rt)
				}
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition, rp.ErrorCode = tp.Partition, codes[j]
				last := &rm.Topics[len(rm.Topics)-1]
				last.Partitions = append(last.Partitions, rp)
			}
		}()
	}
	wg.Wait()
	return resp, nil
}
