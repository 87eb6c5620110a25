// Package app is the runtime's engine: one application instance running a
// streams.Topology on a Kafka-compatible cluster with franz-go.
//
// Concurrency. One goroutine (Run's) polls the group consumer and drives
// the tasks; when Workers > 1 it fans the processing of one poll's records
// out to at most Workers goroutines, one task per goroutine at a time, and
// waits for them before it continues. franz-go's group goroutine calls the
// rebalance callbacks (assigned, revoked, lost). Both sides hold App.mu
// while they touch tasks, so a task is never driven by two goroutines at
// once and a revoked task is committed and closed between two polls.
// Restores run in the assigned callback without App.mu, on the new tasks
// only, so the tasks already running keep processing; franz-go starts
// fetching a new partition only after the callback returns, so a task
// processes only once its stores are restored.
//
// Two more goroutines run beside, each with a consumer of its own outside
// the group: the standby goroutine (standby.go; standbys.mu) keeps the
// stores of standby tasks warm from their changelogs, and the global
// goroutine (global.go; globals.mu) keeps global stores updated from their
// topics. Stream tasks read global stores under globals.mu, one call at a
// time.
//
// The three goroutines poll through one loop shape, pollLoop (poll.go):
// prepare under their lock, poll, log fetch errors, step what was fetched
// under their lock, then work without it (the lag probes).
//
// Lock order: App.mu, then standbys.mu or globals.mu (never both), then
// franz-go's own locks (committing and flushing under App.mu is fine:
// franz-go never calls back into us while it holds a lock we wait for).
//
// Commit (at-least-once). For each task: flush its stores (the write-back
// cache forwards downstream, store writes reach the changelog writer, and
// the store records with its data the changelog offset acknowledged so
// far); mark the records the task produced so far; keep the offsets after
// the last record processed. Processing goes on. Once every marked output
// and changelog record is acknowledged, commit the kept offsets in one
// OffsetCommit for all tasks (startCommitLocked, finishCommitLocked). The
// commit before a task is revoked and Close's wait for everything
// instead (commitLocked). A crash between two commits replays, on restart
// or on another instance, the input records after the last committed
// offset: their outputs and changelog writes may appear twice, nothing is
// lost. A commit that cannot reach the broker stalls instead of failing:
// processing and fetching pause and the commit is retried with backoff
// until the broker answers.
//
// Decisions. When to commit and when to retry a stalled commit, when
// back-pressure holds processing, which partitions to pause, when a task
// with several inputs may process (MaxTaskIdle) and which lags to probe
// are decided by a clock-free state machine, runtime/internal/decide,
// which App.sm holds under App.mu. The loop (app.go: loop, stepLocked)
// steps it with what happens (a poll and what it fetched, the producer's
// backlog, what tasks processed, a commit attempt's outcome, a task
// started or stopped, a lag probe's answer), ticks it once per poll, and
// carries out what it decides (applyLocked; startCommitLocked,
// finishCommitLocked and probeLags for a commit and a probe). Change a decision there and its scenario in
// decide's testdata/; change how it is carried out here.
package app
