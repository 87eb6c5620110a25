package protocol

// WriteTxnMarkers, versions 0-2: a transaction coordinator (another broker
// of the cluster) asks this broker, the leader of the named partitions, to
// end a producer's transaction in them with a COMMIT or ABORT control
// batch. Each marker is written at the partition's leader epoch and
// answered once the high watermark covers it; a partition this broker does
// not lead is answered NOT_LEADER_OR_FOLLOWER, and the coordinator tries
// it again at its leader after reading the metadata again. A marker for
// __consumer_offsets also reaches the group coordinator, which makes the
// transaction's offsets committed (or drops them). Authorized as
// CLUSTER_ACTION (authz_rules.go). v2 carries each marker's transaction
// version: at 2 (KIP-890 part 2) a marker must carry an epoch above the
// producer's in the partition while a transaction is open there, so that
// a late marker of an ended transaction cannot end the next one, whose
// data has the same epoch (storage.Log.WriteMarker; at that epoch with
// none open it is a retry, answered as written); before v2 the version is
// taken as 0.

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
	"github.com/weir-dev/weir/broker/internal/txn"
)

func init() { register(kmsg.WriteTxnMarkers, 0, 2, handleWriteTxnMarkers) }

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
			lm := topics.Marker{
				ProducerID: m.ProducerID, Epoch: m.ProducerEpoch, Commit: m.Committed,
				CoordinatorEpoch: m.CoordinatorEpoch,
			}
			if req.Version >= 2 {
				lm.TransactionVersion = m.TransactionVersion
			}
			codes := writeMarkersHere(ctx, s, g, lm, parts)
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
