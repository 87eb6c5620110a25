package protocol

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/topics"
	"github.com/weir-dev/weir/broker/internal/txn"
)

// txnPart names a partition of a produce request.
type txnPart struct {
	topic     string
	partition int32
}

// verifyTxnProduce checks a transactional produce with the coordinator:
// every partition must be in the open transaction of the request's
// transactional id, under the producer id and epoch of its batches (KIP-890
// part 1's verification). From v12 on (KIP-890 part 2) the client has not
// added the partitions itself: they are added here, which opens the
// transaction if none is. It returns a code for the whole request, or the
// code of each partition that fails, as a producer understands it
// (produceTxnCode).
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
	add := req.Version >= 12
	if add {
		if parts = notOpenHere(s, parts, pid, epoch); len(parts) == 0 {
			return 0, nil
		}
	}
	check := func() (map[txn.TopicPartition]int16, int16, error) {
		if s.cfg.Cluster != nil {
			return clusterVerify(ctx, s, d, *req.TransactionID, pid, epoch, parts, add)
		}
		fn := d.Verify
		if add {
			fn = d.Add
		}
		codes, err := fn(ctx, *req.TransactionID, pid, epoch, parts)
		return codes, 0, err
	}
	codes, code, err := check()
	// CONCURRENT_TRANSACTIONS: the producer's previous transaction is still
	// writing its markers, which takes a moment. Kafka's leaders retry the
	// check for a while rather than hand the producer an error it retries
	// only after a metadata refresh (franz-go waits up to 5 s for one).
	for wait, waited := concurrentRetry, time.Duration(0); err == nil && code == 0 && waited < concurrentRetryMax && anyCode(codes, kerr.ConcurrentTransactions.Code); wait *= 2 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return kerr.RequestTimedOut.Code, nil
		case <-t.C:
		}
		waited += wait
		codes, code, err = check()
	}
	if code != 0 {
		return produceTxnCode(code), nil
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
			out[txnPart{tp.Topic, tp.Partition}] = produceTxnCode(c)
		}
	}
	return 0, out
}

// notOpenHere returns the partitions of parts where producer pid has no
// transaction open at epoch: the others were added to its transaction by
// the produce that opened it here, and need no second trip to the
// coordinator for as long as it stays open, as in Kafka. Only for Produce
// v12 (transaction.version 2): a transaction that ends meanwhile ends with
// a marker above its epoch, so a produce that passed this check and
// appends after that marker is refused as older than the producer's epoch
// here. Under the older protocol the marker carries the data's epoch and
// such a produce would open a transaction no coordinator knows, so every
// v11 produce is verified.
func notOpenHere(s *Server, parts []txn.TopicPartition, pid int64, epoch int16) []txn.TopicPartition {
	var out []txn.TopicPartition
	for _, tp := range parts {
		if t, ok := s.Topics.Get(tp.Topic); ok {
			if p, ok := t.Partition(tp.Partition); ok {
				if tl, ok := p.Log().(topics.TxnLog); ok {
					if e, open := tl.OpenTxn(pid); open && e == epoch {
						continue
					}
				}
			}
		}
		out = append(out, tp)
	}
	return out
}

// concurrentRetry is the first wait before a transactional produce's check
// answered CONCURRENT_TRANSACTIONS is made again; the waits double while
// their sum stays under concurrentRetryMax.
const (
	concurrentRetry    = 5 * time.Millisecond
	concurrentRetryMax = 500 * time.Millisecond
)

func anyCode(codes map[txn.TopicPartition]int16, code int16) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

// produceTxnCode turns the coordinator's answer about a produce's
// partitions into the code a producer expects of Produce, as Kafka's
// partition leaders do: the coordinator being away or loading is
// NOT_ENOUGH_REPLICAS (retriable to every client), a fenced epoch is
// INVALID_PRODUCER_EPOCH (PRODUCER_FENCED is not a Produce error).
func produceTxnCode(c int16) int16 {
	switch c {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code,
		kerr.ConcurrentTransactions.Code: // still so after the retries above
		return kerr.NotEnoughReplicas.Code
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	}
	return c
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
