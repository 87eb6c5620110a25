package protocol

// AddOffsetsToTxn, versions 0-4: a consumer group's partition of
// __consumer_offsets joins a producer's open transaction, so that the
// group's TxnOffsetCommit offsets become visible (or are dropped) with the
// transaction's markers. Answered by the transaction coordinator.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.AddOffsetsToTxn, 0, 4, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AddOffsetsToTxnRequest)
	return handleTxnRequest(ctx, s, r, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		resp.ErrorCode = code
		return resp
	})
}
