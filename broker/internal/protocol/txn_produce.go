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

// inTxn names the partitions of a transactional produce that were not
// checked with the coordinator because the producer's transaction is open
// there already (notOpenHere): their batches are appended only into it
// (topics.TxnLog.AppendNoWaitInTxn).
type inTxn struct {
	pid   int64
	epoch int16
	parts map[txnPart]bool
}

// verifyTxnProduce checks a transactional produce with the coordinator:
// every partition must be in the open transaction of the request's
// transactional id, under the producer id and epoch of its batches (KIP-890
// part 1's verification). From v12 on (KIP-890 part 2) the client has not
// added the partitions itself: they are added here, which opens the
// transaction if none is. A partition where that transaction is open
// already is not asked about again (returned in inTxn). It returns a code
// for the whole request, or the code of each partition that fails, as a
// producer understands it (produceTxnCode).
func verifyTxnProduce(ctx context.Context, s *Server, req *kmsg.ProduceRequest) (int16, map[txnPart]int16, *inTxn) {
	d, code, _ := txnDriver(s)
	if d == nil {
		return code, nil, nil
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
		return kerr.InvalidRecord.Code, nil, nil // a transactional produce of non-transactional batches
	}
	add := req.Version >= 12
	open := &inTxn{pid: pid, epoch: epoch}
	if parts, open.parts = notOpenHere(s, parts, pid, epoch); len(parts) == 0 {
		return 0, nil, open
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
			return kerr.RequestTimedOut.Code, nil, nil
		case <-t.C:
		}
		waited += wait
		codes, code, err = check()
	}
	if code != 0 {
		return produceTxnCode(code), nil, nil
	}
	if err != nil {
		if errors.Is(err, txn.ErrClosed) {
			return kerr.NotLeaderForPartition.Code, nil, nil
		}
		return kerr.RequestTimedOut.Code, nil, nil
	}
	out := map[txnPart]int16{}
	for tp, c := range codes {
		if c != 0 {
			out[txnPart{tp.Topic, tp.Partition}] = produceTxnCode(c)
		}
	}
	return 0, out, open
}

// notOpenHere splits parts into those where producer pid has no
// transaction open at epoch, returned first, and the others: the produce
// that opened it here was checked with the coordinator (verified, or added
// from v12 on), so for as long as it stays open the partition is in it and
// needs no second trip, as in Kafka. The others' batches are appended with
// AppendNoWaitInTxn, which checks again under the log's append lock that
// the transaction is still open: one that a marker ended meanwhile cannot
// be reopened by a produce no coordinator checked.
func notOpenHere(s *Server, parts []txn.TopicPartition, pid int64, epoch int16) ([]txn.TopicPartition, map[txnPart]bool) {
	var out []txn.TopicPartition
	var open map[txnPart]bool
	for _, tp := range parts {
		if t, ok := s.Topics.Get(tp.Topic); ok {
			if p, ok := t.Partition(tp.Partition); ok {
				if tl, ok := p.Log().(topics.TxnLog); ok {
					if e, ok := tl.OpenTxn(pid); ok && e == epoch {
						if open == nil {
							open = map[txnPart]bool{}
						}
						open[txnPart{tp.Topic, tp.Partition}] = true
						continue
					}
				}
			}
		}
		out = append(out, tp)
	}
	return out, open
}

// concurrentRetry is the first wait before a transactional produce's check
// answered CONCURRENT_TRANSACTIONS is made again; the waits double, and
// none starts once their sum has reached concurrentRetryMax (so they total
// at most 635 ms).
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
