package group

import (
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupID names a consumer group.
type GroupID string

// MemberID names one member of a group; the coordinator hands it out.
type MemberID string

// Generation counts a group's completed rebalances.
type Generation int32

// State is where a group is in the classic rebalance protocol.
type State int8

// The states of a group, as Kafka names them.
const (
	// StateEmpty: no members; the group may still hold committed offsets.
	StateEmpty State = iota
	// StatePreparingRebalance: waiting for members to (re)join.
	StatePreparingRebalance
	// StateCompletingRebalance: joins answered, waiting for the leader's
	// assignment in SyncGroup.
	StateCompletingRebalance
	// StateStable: every member has its assignment.
	StateStable
	// StateDead: the group does not exist (any more).
	StateDead
)

// String returns the state's name as DescribeGroups and ListGroups report it.
func (s State) String() string {
	switch s {
	case StateEmpty:
		return "Empty"
	case StatePreparingRebalance:
		return "PreparingRebalance"
	case StateCompletingRebalance:
		return "CompletingRebalance"
	case StateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// Token identifies a stepped request; its response carries the same token,
// now or (JoinGroup, SyncGroup) later. The caller chooses tokens; they must
// be unique among requests not yet answered.
type Token uint64

// Request is one input to Step: a decoded group request and who sent it.
type Request struct {
	Token      Token
	ClientID   string
	ClientHost string
	// Msg is one of the kmsg group requests: JoinGroup, SyncGroup,
	// Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, OffsetDelete,
	// DescribeGroups, ListGroups, DeleteGroups.
	Msg kmsg.Request
}

// Response is an answer to the request stepped with Token.
type Response struct {
	Token Token
	Msg   kmsg.Response
}

// Record is one key/value record of __consumer_offsets; a nil Value is a
// tombstone.
type Record struct {
	Partition int32
	Key       []byte
	Value     []byte

	// metadata is set on group metadata records and their tombstones: the
	// answers that wait for them need them written, not durable (see
	// Log.Write).
	metadata bool

	// undo, set on a committed offset's record, lets Revert take the commit
	// back if the record could not be stored.
	undo *commitUndo

	// txn marks a TxnOffsetCommit's offset, stored in a transactional batch
	// of producer txnPID at txnEpoch (txnoffsets.go).
	txn      bool
	txnPID   int64
	txnEpoch int16
}

// commitUndo is what a commit replaced.
type commitUndo struct {
	group GroupID
	tp    topicPartition
	wrote offset
	prev  offset
	had   bool
}

// Ready is what the coordinator produced since the last call to Ready.
// Records must be persisted, in order, before Responses are sent: a commit's
// answer promises that the commit is stored. Group metadata records need
// only be written (Log.Write): Kafka acknowledges them once appended.
type Ready struct {
	Records   []Record
	Responses []Response
	// Deadline is when the coordinator next wants a Tick; zero if never.
	Deadline time.Time
}

// Partition returns the __consumer_offsets partition that holds group's
// records: Kafka's choice (the Java hash code of the id, made non-negative,
// modulo the partition count), so that a group lands where Kafka puts it.
func Partition(group GroupID, partitions int32) int32 {
	var h int32
	for _, r := range utf16.Encode([]rune(string(group))) {
		h = 31*h + int32(r)
	}
	return (h & 0x7fffffff) % partitions
}
