package txn

import (
	"math"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TransactionalID names a transactional producer: it outlives producer ids
// and epochs, and is what fencing is about.
type TransactionalID string

// ProducerID is a producer id handed out by InitProducerId.
type ProducerID int64

// NoProducerID is Kafka's "none" producer id (-1).
const NoProducerID ProducerID = -1

// Epoch is a producer epoch. A transactional id's epoch grows with every
// InitProducerId (and, under KIP-890 part 2, with every EndTxn); a request
// carrying an older epoch comes from a fenced producer.
type Epoch int16

// NoEpoch is Kafka's "none" epoch (-1).
const NoEpoch Epoch = -1

// maxEpoch is the largest epoch; an epoch at or above exhaustedEpoch cannot
// be bumped for a new producer session and the id rotates instead (a fresh
// producer id at epoch 0), as Kafka does.
const (
	maxEpoch       Epoch = math.MaxInt16
	exhaustedEpoch Epoch = math.MaxInt16 - 1
)

// CoordinatorEpoch is the leader epoch of the __transaction_state partition
// a coordinator serves; markers carry it so that partition leaders refuse
// markers from a coordinator that has since lost the partition.
type CoordinatorEpoch int32

// TopicPartition is one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Less orders partitions by topic, then partition.
func (tp TopicPartition) Less(o TopicPartition) bool {
	if tp.Topic != o.Topic {
		return tp.Topic < o.Topic
	}
	return tp.Partition < o.Partition
}

// State is where a transactional id's current transaction is. The values
// are Kafka's (kmsg.TransactionState), as written in __transaction_state.
type State int8

// The states, as Kafka numbers them.
const (
	// StateEmpty: a producer id and epoch, no transaction open.
	StateEmpty State = 0
	// StateOngoing: partitions (or a group's offsets) were added; the
	// transaction is open and times out TransactionTimeout after it started.
	StateOngoing State = 1
	// StatePrepareCommit: EndTxn(commit) was accepted and recorded; commit
	// markers are being written to every partition of the transaction.
	StatePrepareCommit State = 2
	// StatePrepareAbort: as PrepareCommit, with abort markers (EndTxn(abort),
	// a timeout, or a newer producer fencing this one).
	StatePrepareAbort State = 3
	// StateCompleteCommit: every commit marker is written.
	StateCompleteCommit State = 4
	// StateCompleteAbort: every abort marker is written.
	StateCompleteAbort State = 5
	// StateDead: the transactional id expired; its record is a tombstone.
	StateDead State = 6
)

// String returns Kafka's name for s.
func (s State) String() string { return kmsg.TransactionState(s).String() }

// idle reports whether no transaction is open or finishing in s.
func (s State) idle() bool {
	return s == StateEmpty || s == StateCompleteCommit || s == StateCompleteAbort
}

// preparing reports whether markers are being written in s.
func (s State) preparing() bool { return s == StatePrepareCommit || s == StatePrepareAbort }

// TransactionVersion is the transaction protocol a client speaks: 0 (or 1)
// before KIP-890 part 2, 2 with it (EndTxn v5+, AddPartitionsToTxn v5+): the
// coordinator then bumps the epoch at the end of every transaction, which
// fences any request still in flight from the transaction that ended.
type TransactionVersion int16

// TV2 is KIP-890 part 2's transaction version.
const TV2 TransactionVersion = 2

// Token identifies a stepped request; its response carries the same token.
// The caller chooses tokens; they must be unique among requests not yet
// answered.
type Token uint64

// Request is one input to Step: a decoded transaction request.
type Request struct {
	Token Token
	// Msg is one of *kmsg.InitProducerIDRequest,
	// *kmsg.AddPartitionsToTxnRequest, *kmsg.AddOffsetsToTxnRequest,
	// *kmsg.EndTxnRequest.
	Msg kmsg.Request
}

// Response is an answer to the request stepped with Token.
type Response struct {
	Token Token
	Msg   kmsg.Response
}

// Record is one key/value record of __transaction_state; a nil Value is a
// tombstone.
type Record struct {
	Partition int32
	Key       []byte
	Value     []byte
}

// Marker asks that a COMMIT or ABORT control batch be written for one
// producer id and epoch to each of Partitions. The driver sends it to the
// partitions' leaders (MarkerRequests builds the WriteTxnMarkers requests)
// and reports each partition whose marker is written with MarkersWritten.
type Marker struct {
	TransactionalID  TransactionalID
	ProducerID       ProducerID
	Epoch            Epoch
	Commit           bool
	CoordinatorEpoch CoordinatorEpoch
	// TransactionVersion goes into WriteTxnMarkers v2 (0 for a pre-KIP-890
	// client, 2 for one whose every transaction bumps the epoch).
	TransactionVersion TransactionVersion
	// Partitions are sorted by topic, then partition.
	Partitions []TopicPartition
}

// Ready is what the coordinator produced since the last call to Ready.
// Records must be persisted, in order, before any of Responses is sent and
// before any of Markers is sent: an answer or a marker promises that the
// transition behind it is stored, so that a coordinator that restarts
// finishes what it started.
type Ready struct {
	Records   []Record
	Responses []Response
	Markers   []Marker
	// Deadline is when the coordinator next wants a Tick; zero if never.
	Deadline time.Time
}

// Partition returns the __transaction_state partition that holds id's
// records: Kafka's choice (the absolute value of the Java hash code of the
// id, Integer.MIN_VALUE counting as 0, modulo the partition count), so that
// an id lands where Kafka puts it.
func Partition(id TransactionalID, partitions int32) int32 {
	var h int32
	for _, r := range utf16.Encode([]rune(string(id))) {
		h = 31*h + int32(r)
	}
	switch {
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	return h % partitions
}
