package protocol

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/txn"
)

// txnPart names a partition of a produce request.
type txnPart struct {
	topic     string
	partition int32
}

// verifyTxnProduce checks a transactional produce with the coordinator:
// every partition must be in the open transaction of the request's
// transactional id, under the producer id and epoch of its batches. It
// returns a code for the whole request, or the code of each partition that
// fails.
func verifyTxnProduce(ctx context.Context, s *Server, req *kmsg.ProduceRequest) (int16, map[txnPart]int16) {
	d, code, _ := txnDriver(s)
	if d == nil {
		return code, nil
	}
	pid, epoch := int64(-1), int16(-1)
	var parts []txn.TopicPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, txn.TopicPartition{Topic: t.Topic, Partition: p.Partition})
			if pid < 0 && len(p.Records) > 0 {
				if h, err := batch.ParseHeader(p.Records); err == nil {
					pid, epoch = h.ProducerID, h.ProducerEpoch
				}
			}
		}
	}
	if pid < 0 {
		return kerr.InvalidRecord.Code, nil // a transactional produce of non-transactional batches
	}
	var codes map[txn.TopicPartition]int16
	var err error
	if s.cfg.Cluster != nil {
		var code int16
		codes, code, err = clusterVerify(ctx, s, d, *req.TransactionID, pid, epoch, parts)
		if code != 0 {
			return code, nil
		}
	} else {
		codes, err = d.Verify(ctx, *req.TransactionID, pid, epoch, parts)
		codes = retriableVerify(codes)
	}
	if err != nil {
		if errors.Is(err, txn.ErrClosed) {
			return kerr.NotLeaderForPartition.Code, nil
		}
		return kerr.RequestTimedOut.Code, nil
	}
	out := map[txnPart]int16{}
	for tp, c := range codes {
		if c != 0 {
			out[txnPart{tp.Topic, tp.Partition}] = c
		}
	}
	return 0, out
}

// hasTransactionalBatch reports whether a produce without a transactional
// id carries a transactional batch: Kafka refuses those (INVALID_RECORD), as
// no coordinator would ever end their transaction and they would hold the
// partition's last stable offset forever. Only headers are read.
func hasTransactionalBatch(req *kmsg.ProduceRequest) bool {
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			for rest := p.Records; len(rest) > 0; {
				b, r, err := batch.Next(rest)
				if err != nil {
					break // the log reports it
				}
				if h, err := batch.ParseHeader(b); err == nil && h.Transactional() {
					return true
				}
				rest = r
			}
		}
	}
	return false
}
