package protocol

// EndTxn, versions 0-5: commit or abort a producer's open transaction. The
// transaction coordinator records the decision (PrepareCommit or
// PrepareAbort) in __transaction_state, answers, and writes the markers to
// every partition of the transaction; a read_committed consumer sees the
// transaction's records once its marker is written.
//
// v5 (KIP-890 part 2, transaction.version 2): every end bumps the producer
// epoch; the markers carry the new epoch, so that a produce or EndTxn still
// in flight from the ended transaction is fenced, and the answer hands the
// client its new epoch (or, when the epoch ran out, a new producer id at
// epoch 0). A retry of an EndTxn that bumped gets the same answer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.EndTxn, 0, 5, handleEndTxn) }

func handleEndTxn(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.EndTxnRequest)
	return handleTxnRequest(ctx, s, r, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp
	})
}
