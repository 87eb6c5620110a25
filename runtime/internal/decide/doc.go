// Package decide holds the runtime's decisions about an application
// instance's active tasks as a state machine, in the manner of etcd raft's
// RawNode and the broker's group coordinator: it owns no goroutine, does no
// I/O, imports no Kafka client and reads no clock (every input carries the
// time). The runtime's loop (runtime/internal/app) does the I/O around it.
//
// Inputs. Step feeds it one event: a task started or stopped, a poll and
// what it fetched per partition (end offsets, the records handed to a
// task), how many records the producer buffers, what a task processed, a
// commit attempt starting, pending, acknowledged, stalling or succeeding,
// the answer to a lag probe. Tick tells it that time is now.
//
// Outputs. Ready returns and clears what the loop must do: commit, probe
// the end offsets of some input partitions, pause or resume fetching of
// every input topic (back-pressure) or of single partitions (a task holds
// enough of them), update lag gauges, log a stalled or recovered commit.
// MayProcess answers, record by record, whether a task with several
// input partitions may process its next record (task readiness and
// MaxTaskIdle).
//
// The decisions, in one place each:
//
//   - Commit scheduling (Tick): a commit is due CommitInterval after the
//     last attempt started or, while a commit is stalled, at its retry
//     time.
//   - Commit stall and backoff (CommitStalled, CommitSucceeded): an
//     attempt that cannot reach the broker stalls the commit; the next
//     attempt is due after a backoff that starts at CommitInterval (at
//     least 100ms) and doubles up to max(MaxCommitBackoff,
//     CommitInterval). A successful attempt with tasks ends the stall.
//   - Commit pipelining (CommitPending, CommitAcknowledged): at least
//     once, an attempt writes its stores and hands its records to the
//     producer, and processing goes on while they are acknowledged; once
//     they are, the next Tick says to commit its input offsets (Finish). A
//     commit due while the last is still unacknowledged waits for it
//     first (Await). A new attempt supersedes a pending one.
//   - Back-pressure (Backlog): processing holds off, and fetching of every
//     input topic pauses, while a commit is stalled or the producer
//     buffers half of MaxBufferedProduce or more; it goes on at a
//     quarter or less (ResumesAt, for the loop to wait for).
//   - Per-partition flow control (Processed): a partition of a task with
//     several inputs pauses at MaxBufferedPerPartition records buffered
//     and resumes below half of it.
//   - Readiness (MayProcess): a task with several input partitions
//     processes only while each of them has a record buffered or is
//     caught up (its position reached the end offset as known no earlier
//     than the task's latest records); otherwise it waits up to
//     MaxTaskIdle, then processes anyway (enforced).
//   - Lag probing (Tick, Probed): at most every LagProbeEvery, the empty
//     input partitions of waiting tasks whose end offset (or start
//     position) no fetch has told are looked up.
//
// Standbys is the same for the instance's standby tasks: which to keep
// open (the standbys of the last assignment, never a task active here),
// which to hand over at once when the task becomes active here
// (StandbysReleased), and when their stores apply what they read
// (every StandbyApplyEvery, at Tick).
//
// Concurrency. A Machine is not safe for concurrent use: its owner
// serialises calls, with one exception: MayProcess of distinct tasks may
// run concurrently with each other (the loop's workers), while no other
// method runs.
//
// Scenario tests under testdata/ drive a Machine and a Standbys with
// events and clock ticks and print what they decide.
package decide
