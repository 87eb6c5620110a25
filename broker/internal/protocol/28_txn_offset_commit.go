package protocol

// TxnOffsetCommit, versions 0-4. Handled by the group coordinator
// (broker/internal/group, txnoffsets.go): the offsets are stored in
// __consumer_offsets inside the producer's transaction and become the
// group's committed offsets when the transaction's COMMIT marker reaches
// the group's partition (dropped at ABORT). From v3 on (KIP-447) the
// consumer's generation and member id are checked as OffsetCommit checks
// them. Until the marker, OffsetFetch with RequireStable answers
// UNSTABLE_OFFSET_COMMIT for those partitions.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.TxnOffsetCommit, 0, 4, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.TxnOffsetCommitRequest)
	if _, code, _ := txnDriver(s); code != 0 {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	return handleGroupRequest(ctx, s, r)
}
