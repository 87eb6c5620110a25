package protocol

// TxnOffsetCommit, versions 0-5. Handled by the group coordinator
// (broker/internal/group, txnoffsets.go): the offsets are stored in
// __consumer_offsets inside the producer's transaction and become the
// group's committed offsets when the transaction's COMMIT marker reaches
// the group's partition (dropped at ABORT). From v3 on (KIP-447) the
// consumer's generation and member id are checked as OffsetCommit checks
// them. Until the marker, OffsetFetch with RequireStable answers
// UNSTABLE_OFFSET_COMMIT for those partitions.
//
// From v5 on (KIP-890 part 2, transaction.version 2) the client has not
// called AddOffsetsToTxn: the group's partition of __consumer_offsets is
// added to the transaction here first, as AddOffsetsToTxn would (a fenced
// or ended epoch is refused there, so a late commit cannot land in the
// next transaction).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/txn"
)

func init() { register(kmsg.TxnOffsetCommit, 0, 5, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.TxnOffsetCommitRequest)
	d, code, _ := txnDriver(s)
	if code == 0 && r.Version >= 5 {
		code = addOffsetsForCommit(ctx, s, d, req)
	}
	if code != 0 {
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

// addOffsetsForCommit adds the group of a TxnOffsetCommit v5 to the
// producer's transaction, as AddOffsetsToTxn does, at the transaction's
// coordinator (on a cluster, possibly another broker than this group
// coordinator), and returns the coordinator's code (0: added). The
// coordinator's "ask elsewhere" answers become COORDINATOR_NOT_AVAILABLE:
// NOT_COORDINATOR from a TxnOffsetCommit would send the client looking
// for another group coordinator.
func addOffsetsForCommit(ctx context.Context, s *Server, d *txn.Driver, req *kmsg.TxnOffsetCommitRequest) int16 {
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.Version = 4
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group
	var code int16
	if s.cfg.Cluster != nil {
		code = clusterAddOffsets(ctx, s, d, add)
	} else {
		code = localAddOffsets(ctx, d, add)
	}
	switch code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorLoadInProgress.Code:
		return kerr.CoordinatorNotAvailable.Code
	}
	return code
}

// localAddOffsets hands add to this broker's transaction coordinator.
func localAddOffsets(ctx context.Context, d *txn.Driver, add *kmsg.AddOffsetsToTxnRequest) int16 {
	resp, err := d.Handle(ctx, add)
	switch {
	case errors.Is(err, txn.ErrClosed):
		return kerr.CoordinatorNotAvailable.Code
	case err != nil:
		return kerr.RequestTimedOut.Code
	}
	return resp.(*kmsg.AddOffsetsToTxnResponse).ErrorCode
}
