package protocol

// DescribeTransactions, version 0: the coordinator's state of each named
// transactional id (TRANSACTIONAL_ID_NOT_FOUND for one it does not hold;
// in a cluster NOT_COORDINATOR for one of a __transaction_state partition
// this broker does not lead). ListTransactions (66) lists what this broker
// coordinates, as in Kafka, where clients ask every broker.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/txn"
)

func init() { register(kmsg.DescribeTransactions, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	d, code, _ := txnDriver(s)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
		info, ok := txnInfo(d, id)
		switch {
		case d == nil:
			st.ErrorCode = code
		case !ok && !ownsTxnID(d, id):
			st.ErrorCode = kerr.NotCoordinator.Code // a cluster: another broker's
		case !ok:
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			st.State = info.State.String()
			st.TimeoutMillis = int32(info.Timeout.Milliseconds())
			if !info.Start.IsZero() {
				st.StartTimestamp = info.Start.UnixMilli()
			}
			st.ProducerID, st.ProducerEpoch = int64(info.ProducerID), int16(info.Epoch)
			for _, tp := range info.Partitions {
				if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.Topic {
					st.Topics = append(st.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.Topic})
				}
				st.Topics[len(st.Topics)-1].Partitions = append(st.Topics[len(st.Topics)-1].Partitions, tp.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

// ownsTxnID reports whether d serves transactional id id's partition.
func ownsTxnID(d *txn.Driver, id string) bool {
	_, ok := d.Owned(txn.Partition(txn.TransactionalID(id), d.Partitions()))
	return ok
}
