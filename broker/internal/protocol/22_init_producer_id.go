package protocol

// InitProducerId, versions 0-4.
//
// Without a transactional id: hands an idempotent producer a producer id
// never handed out before (the registry reserves ids on disk in blocks, so
// ids are not reused after a restart) with epoch 0. A producer that asks to
// bump its epoch (v3+, KIP-360) also gets a fresh id with epoch 0, which is
// equally valid for an idempotent producer and needs no epoch bookkeeping
// here; the logs keep the per-producer sequence state.
//
// With a transactional id: the transaction coordinator answers
// (txn_coordinator.go): the id's producer id with its epoch bumped, which
// fences older producers of the id (an open transaction of theirs is
// aborted first and the caller told CONCURRENT_TRANSACTIONS, to retry).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.InitProducerID, 0, 4, handleInitProducerID) }

func handleInitProducerID(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		return handleTxnRequest(ctx, s, r, func(code int16) kmsg.Response {
			resp.ErrorCode = code
			return resp
		})
	}
	id, err := s.Topics.NextProducerID()
	if err != nil {
		s.Logger.Error("allocating producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
