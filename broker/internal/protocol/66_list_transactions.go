package protocol

// ListTransactions, versions 0-1: the transactional ids the coordinator
// holds, filtered by state name, producer id and (v1) how long the open
// transaction has run.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/txn"
)

func init() { register(kmsg.ListTransactions, 0, 1, handleListTransactions) }

func handleListTransactions(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	d, code, _ := txnDriver(s)
	if d == nil {
		resp.ErrorCode = code
		return resp, nil
	}
	now := time.Now()
	for _, id := range d.IDs() {
		info, ok := txnInfo(d, string(id))
		if !ok {
			continue
		}
		state := info.State.String()
		switch {
		case len(req.StateFilters) > 0 && !slices.Contains(req.StateFilters, state):
			continue
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, int64(info.ProducerID)):
			continue
		case r.Version >= 1 && req.DurationFilterMillis >= 0 &&
			(info.Start.IsZero() || now.Sub(info.Start).Milliseconds() < req.DurationFilterMillis):
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = string(id), int64(info.ProducerID), state
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	for _, f := range req.StateFilters {
		if !validTxnState(f) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	return resp, nil
}

// validTxnState reports whether name is a transaction state's name.
func validTxnState(name string) bool {
	for s := txn.StateEmpty; s <= txn.StateDead; s++ {
		if s.String() == name {
			return true
		}
	}
	return false
}

// txnInfo describes id; d may be nil.
func txnInfo(d *txn.Driver, id string) (txn.Info, bool) {
	if d == nil {
		return txn.Info{}, false
	}
	return d.Describe(id)
}
