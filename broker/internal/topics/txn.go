package topics

import "context"

// AbortedTxn is one aborted transaction of a partition: the records of
// producer ProducerID from FirstOffset up to its ABORT marker are to be
// skipped by a read_committed consumer.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset Offset
}

// ProducerState is what a partition log knows of one producer, as
// DescribeProducers reports it.
type ProducerState struct {
	ProducerID     int64
	Epoch          int16
	LastSequence   int32
	LastOffset     Offset
	TxnStartOffset Offset // -1 when no transaction is open
}

// TxnLog is what transactions need of a partition log beyond Log. The
// storage engine's logs implement it; a log that does not serves no
// transactions (its last stable offset is its high watermark).
type TxnLog interface {
	// LastStableOffset is the offset below which every transaction has
	// ended (at most the high watermark).
	LastStableOffset() Offset
	// AbortedTransactions returns the aborted transactions holding records
	// in [from, to).
	AbortedTransactions(from, to Offset) []AbortedTxn
	// AppendMarker durably appends the COMMIT or ABORT marker m. A
	// coordinator epoch below that of the producer's last marker here is
	// refused with kerr.TransactionCoordinatorFenced (a stale
	// coordinator's; -1 is the broker's own marker, not checked), an epoch
	// the partition has moved past (at transaction version 2: reached,
	// unless no transaction is open there, when the marker is a retry of
	// one written and answered as written) with kerr.InvalidProducerEpoch.
	AppendMarker(ctx context.Context, m Marker) error
	// AppendTrusted durably appends batches written by the broker itself
	// (transactional offset commits, which carry no sequence number).
	AppendTrusted(ctx context.Context, batches []byte) error
	// Producers returns the producers the log tracks.
	Producers() []ProducerState
	// OpenTxn reports whether producer pid has a transaction open in the
	// partition, and its epoch there.
	OpenTxn(pid int64) (epoch int16, open bool)
	// AppendNoWaitInTxn is Log.AppendNoWait for batches of producer pid's
	// transaction at producer epoch pepoch that no coordinator verified:
	// refused with kerr.InvalidTxnState, nothing written, unless that
	// transaction is open in the partition at that epoch when they would
	// be written.
	AppendNoWaitInTxn(batches []byte, leaderEpoch Epoch, pid int64, pepoch int16) (AppendResult, error)
}

// LeaderTxnLog is a TxnLog that a replicated partition's leader writes its
// broker batches to (markers, transactional offset commits) at its own
// leader epoch and without waiting: the leader acknowledges them once the
// high watermark covers them. The storage engine's logs implement it.
type LeaderTxnLog interface {
	TxnLog
	// WriteMarker appends marker m (see AppendMarker) with leader epoch
	// leaderEpoch, without waiting for durability.
	WriteMarker(m Marker, leaderEpoch Epoch) (AppendResult, error)
	// WriteTrusted appends broker-written batches (see AppendTrusted) with
	// leader epoch leaderEpoch, without waiting for durability.
	WriteTrusted(batches []byte, leaderEpoch Epoch) (AppendResult, error)
}
