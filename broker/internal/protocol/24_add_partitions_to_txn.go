package protocol

// AddPartitionsToTxn, versions 0-5: partitions join a producer's open
// transaction (v4, KIP-890 part 1, also lets a partition leader ask whether
// they have: VerifyOnly; v5, KIP-890 part 2, is a partition leader adding
// them for a transaction.version 2 client, whose Produce v12 did not add
// them first). Answered by the transaction coordinator.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.AddPartitionsToTxn, 0, 5, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AddPartitionsToTxnRequest)
	return handleTxnRequest(ctx, s, r, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		if r.Version >= 4 {
			resp.ErrorCode = code
			return resp
		}
		for _, t := range req.Topics {
			rt := kmsg.AddPartitionsToTxnResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p, ErrorCode: code})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	})
}
