// Package txn is Weir's transaction coordinator: the broker side of Kafka's
// transactions (KIP-98) for InitProducerId with a transactional id,
// AddPartitionsToTxn (with KIP-890 part 1's VerifyOnly), AddOffsetsToTxn and
// EndTxn (with KIP-890 part 2's epoch bump at the end of every transaction),
// its state kept in the internal topic __transaction_state.
//
// Coordinator is a pure state machine in the manner of etcd raft's RawNode
// and of package group's coordinator: it owns no goroutine, does no I/O and
// reads no clock; every input carries the time.
//
//   - Step feeds it one request; Tick tells it time has passed (transactions
//     open longer than their timeout are aborted, their producer fenced;
//     transactional ids idle for TransactionalIDExpiration are dropped);
//     MarkersWritten reports markers written by partition leaders.
//   - Ready hands out what it produced: the __transaction_state records to
//     persist, the responses to send once they are persisted, the markers to
//     send (also only once the records are persisted: a marker is sent only
//     for a decision that is stored) and the next deadline.
//   - BeginLoad, Load and FinishLoad replay one __transaction_state
//     partition when the coordinator takes it over (at start, or when its
//     leadership moves here); transactions found in PrepareCommit or
//     PrepareAbort send their markers again. Unload drops a partition. A
//     driver that fails to persist a Ready's records of a partition unloads
//     and reloads that partition, and answers the affected requests with a
//     retriable error: the in-memory state has moved ahead of the log.
//
// A transaction's life: InitProducerId (Empty, epoch bumped; an Ongoing
// transaction of an older session is aborted first and the caller told
// CONCURRENT_TRANSACTIONS) → AddPartitionsToTxn/AddOffsetsToTxn (Ongoing) →
// EndTxn (PrepareCommit or PrepareAbort, recorded, answered, markers sent) →
// every marker written (CompleteCommit or CompleteAbort, recorded).
//
// The package decides which partitions get which marker; it does not know
// where partitions live: MarkerRequests groups markers by leader into
// WriteTxnMarkers requests, given the leaders. Records use Kafka's own
// encodings (records.go), so tools that decode Kafka's __transaction_state
// read Weir's. Every scenario is deterministic and tested with datadriven
// files under testdata/.
package txn
