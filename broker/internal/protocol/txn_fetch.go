package protocol

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// lastStable returns l's last stable offset (hw for a log without
// transactions).
func lastStable(l topics.Log, hw topics.Offset) topics.Offset {
	if tl, ok := l.(topics.TxnLog); ok {
		return min(tl.LastStableOffset(), hw)
	}
	return hw
}

// readCommitted trims the batches b read from offset from to those that
// start below end (the last stable offset, at a batch boundary), and fills
// in the aborted transactions they hold.
func readCommitted(l topics.Log, op *kmsg.FetchResponseTopicPartition, from, end topics.Offset, b []byte) []byte {
	op.AbortedTransactions = nil
	n := 0
	upto := from
	for rest := b; len(rest) > 0; {
		one, r, err := batch.Next(rest)
		if err != nil {
			break
		}
		h, err := batch.ParseHeader(one)
		if err != nil || topics.Offset(h.BaseOffset) >= end {
			break
		}
		n += len(one)
		upto = topics.Offset(h.LastOffset()) + 1
		rest = r
	}
	b = b[:n]
	tl, ok := l.(topics.TxnLog)
	if !ok || n == 0 {
		return b
	}
	for _, a := range tl.AbortedTransactions(from, upto) {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, int64(a.FirstOffset)
		op.AbortedTransactions = append(op.AbortedTransactions, at)
	}
	return b
}
