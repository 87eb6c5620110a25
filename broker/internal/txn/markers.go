package txn

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NodeID names a broker: the leader a marker is sent to.
type NodeID int32

// MarkerRequests builds the WriteTxnMarkers requests (at version, 0 to 2;
// only v2 carries the transaction version) that deliver markers: one request
// per leader, holding for each marker the partitions that leader leads.
// Partitions for which leader reports none are returned in noLeader, grouped
// by marker (in markers' order), for the driver to retry once a leader is
// known.
func MarkerRequests(markers []Marker, version int16, leader func(TopicPartition) (NodeID, bool)) (reqs map[NodeID]*kmsg.WriteTxnMarkersRequest, noLeader []Marker) {
	reqs = make(map[NodeID]*kmsg.WriteTxnMarkersRequest)
	for _, m := range markers {
		byLeader := make(map[NodeID]*kmsg.WriteTxnMarkersRequestMarker)
		var orphans []TopicPartition
		for _, tp := range m.Partitions {
			n, ok := leader(tp)
			if !ok {
				orphans = append(orphans, tp)
				continue
			}
			wm := byLeader[n]
			if wm == nil {
				req := reqs[n]
				if req == nil {
					req = kmsg.NewPtrWriteTxnMarkersRequest()
					req.Version = version
					reqs[n] = req
				}
				x := kmsg.NewWriteTxnMarkersRequestMarker()
				x.ProducerID, x.ProducerEpoch, x.Committed = int64(m.ProducerID), int16(m.Epoch), m.Commit
				x.CoordinatorEpoch = int32(m.CoordinatorEpoch)
				if version >= 2 {
					x.TransactionVersion = int8(m.TransactionVersion)
				}
				req.Markers = append(req.Markers, x)
				// NB: valid until the next append to req.Markers, which
				// comes with the next marker, when byLeader is new.
				wm = &req.Markers[len(req.Markers)-1]
				byLeader[n] = wm
			}
			if k := len(wm.Topics); k == 0 || wm.Topics[k-1].Topic != tp.Topic {
				wm.Topics = append(wm.Topics, kmsg.WriteTxnMarkersRequestMarkerTopic{Topic: tp.Topic})
			}
			last := &wm.Topics[len(wm.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
		if len(orphans) > 0 {
			o := m
			o.Partitions = orphans
			noLeader = append(noLeader, o)
		}
	}
	return reqs, noLeader
}

// MarkerResults reads a leader's WriteTxnMarkers response: the partitions
// whose marker it wrote, and the error code of each it did not (retried
// by the driver at the partition's leader of then: NOT_LEADER_OR_FOLLOWER
// when leadership moved).
func MarkerResults(resp *kmsg.WriteTxnMarkersResponse) (done []TopicPartition, failed map[TopicPartition]int16) {
	for _, rm := range resp.Markers {
		for _, t := range rm.Topics {
			for _, p := range t.Partitions {
				tp := TopicPartition{Topic: t.Topic, Partition: p.Partition}
				if p.ErrorCode == 0 {
					done = append(done, tp)
					continue
				}
				if failed == nil {
					failed = map[TopicPartition]int16{}
				}
				failed[tp] = p.ErrorCode
			}
		}
	}
	return done, failed
}
