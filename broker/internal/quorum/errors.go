package quorum

import (
	"errors"
	"fmt"
)

// ErrCorrupt is matched (errors.Is) by every error about raft storage whose
// checksums or invariants do not hold. The node refuses to open such storage;
// nothing in it is applied.
var ErrCorrupt = errors.New("quorum: corrupt raft storage")

// CorruptionError says where raft storage is corrupt. It matches ErrCorrupt.
type CorruptionError struct {
	// Path is the storage directory (a Pebble database).
	Path string
	// What names the record: "entry", "hard state", "snapshot", "identity",
	// or "log".
	What string
	// Index is the raft index of the bad entry, when there is one.
	Index uint64
	// Err says what is wrong.
	Err error
}

func (e *CorruptionError) Error() string {
	where := e.What
	if e.What == "entry" {
		where = fmt.Sprintf("entry at index %d", e.Index)
	}
	return fmt.Sprintf("quorum: corrupt raft storage in %s: %s: %v; the node refuses to start "+
		"(nothing corrupt is applied): if the other voters are healthy, move this directory away "+
		"and restart the node with --rejoin, so that they take it back as a voter and it catches up from them",
		e.Path, where, e.Err)
}

// Is makes CorruptionError match ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

func (e *CorruptionError) Unwrap() error { return e.Err }

// LostStorageError says that a node's raft storage holds less than the
// leader knows it acknowledged: it was emptied, replaced or restored from an
// older copy while the node was down. Raft cannot go on with such a voter
// (it counts on entries that are gone), so the node stops.
type LostStorageError struct {
	// Path is the storage directory.
	Path string
	// Leader said entries up to Commit are committed on this node, whose
	// log ends at Last.
	Leader NodeID
	Commit uint64
	Last   uint64
}

func (e *LostStorageError) Error() string {
	return fmt.Sprintf("quorum: raft storage in %s lost entries it acknowledged: leader %d counts entries up to %d "+
		"as held here, but the log ends at %d (the directory was emptied, replaced or restored from an older copy "+
		"while the node was down); move this directory away and restart the node with --rejoin, so that the "+
		"other voters take it back as a voter and it catches up from them", e.Path, e.Leader, e.Commit, e.Last)
}

// IsCorruption reports whether err says raft storage is corrupt.
func IsCorruption(err error) bool { return errors.Is(err, ErrCorrupt) }

// Identity errors: a data directory is bound at its first start to a cluster,
// a node id and a voter set, and refuses to open with others.
var (
	// ErrWrongCluster: the directory belongs to another cluster.
	ErrWrongCluster = errors.New("quorum: data directory belongs to another cluster")
	// ErrWrongNode: the directory belongs to another node id.
	ErrWrongNode = errors.New("quorum: data directory belongs to another node")
	// ErrVotersChanged: the configured voter set differs from the stored one.
	ErrVotersChanged = errors.New("quorum: voter set differs from the one stored in the data directory")
)

// Proposal errors.
var (
	// ErrNotLeader: this node is not the raft leader; proposals are only
	// accepted on the leader (see NotLeaderError for the leader's id).
	// Retriable, on the leader.
	ErrNotLeader = errors.New("quorum: not the leader")
	// ErrProposalDropped: the entry was not committed and never will be
	// (raft dropped it, or another entry was committed at its index).
	// Retriable.
	ErrProposalDropped = errors.New("quorum: proposal dropped")
	// ErrLeadershipLost: this node stopped being the leader after the entry
	// was appended and before it was applied. The entry may still be
	// committed by the next leader: a caller retrying must check the state
	// (the applied image) first, so that a retry does not repeat the change.
	// Retriable in that sense.
	ErrLeadershipLost = errors.New("quorum: leadership lost before the proposal was applied")
	// ErrClosed: the node is closed (or failed; Status.Err says why).
	ErrClosed = errors.New("quorum: node closed")
)

// NotLeaderError is returned by Propose on a node that is not the leader.
// It matches ErrNotLeader.
type NotLeaderError struct {
	// Leader is the leader this node knows of, 0 if none.
	Leader NodeID
	// Term is this node's current term.
	Term uint64
}

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return fmt.Sprintf("quorum: not the leader (no leader known in term %d)", e.Term)
	}
	return fmt.Sprintf("quorum: not the leader (node %d leads term %d)", e.Leader, e.Term)
}

// Is makes NotLeaderError match ErrNotLeader.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// IsRetriable reports whether a Propose error may be retried (on the leader,
// after checking the state for ErrLeadershipLost).
func IsRetriable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrProposalDropped) || errors.Is(err, ErrLeadershipLost)
}
