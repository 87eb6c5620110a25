package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/internal/atomicfile"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/runtime/internal/decide"
	"github.com/weir-dev/weir/streams"
)

// maxFailedFlushes is how many commits in a row may abort because the
// flush failed (records not acknowledged, a store failing) before the
// instance stops: a record the broker refuses would otherwise be produced
// again and again.
const maxFailedFlushes = 5

// Exactly-once (Options.ExactlyOnce) in the manner of exactly_once_v2: the
// instance's one client is a transactional producer and the group
// consumer, wrapped in a GroupTransactSession. A transaction opens before
// the first step that may produce (beginLocked) and ends at the commit
// (commitTxnLocked): the tasks' stores flush their caches (forwarding
// downstream, producing output and repartition records) and write their
// changelog records, all in the transaction; the input offsets each task
// processed to go in with TxnOffsetCommit; EndTxn commits. Only then do the
// stores commit their writes and checkpoints to Pebble
// (stateengine.Persist): a store never holds state of a transaction that
// did not commit. When the transaction aborts instead (a rebalance took
// partitions during it, the membership was lost, the commit failed), the
// session moves the consumer back to the committed offsets and every task
// is rolled back (rollbackLocked): closed without flushing, opened again
// from its stores' last checkpoints plus the committed changelog tail.

// checkExactlyOnceStores refuses, under ExactlyOnce, a store declared
// Unlogged (other than one restored from its source topic or a global
// one): with no changelog in the transaction, its writes reach Pebble
// whether the transaction commits or aborts, and a rollback cannot undo
// them, so an aborted transaction's updates would be applied twice.
func checkExactlyOnceStores(topo *streams.Topology, opts Options) error {
	if !opts.ExactlyOnce {
		return nil
	}
	var bad []string
	for _, s := range topo.Stores() {
		if s.Unlogged && s.SourceTopic == "" && !s.Global {
			bad = append(bad, fmt.Sprintf("%q", s.Name))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("runtime: store %s is Unlogged, which ExactlyOnce cannot roll back on an aborted transaction: "+
			"give it a changelog (Unlogged false) or run without ExactlyOnce", strings.Join(bad, ", "))
	}
	return nil
}

// instanceIDFile holds, in the state directory, the id that names the
// instance's transactional producer across restarts.
const instanceIDFile = "weir.instance-id"

// instanceID returns the instance id kept in dir, creating it the first
// time: 16 random hex digits.
func instanceID(dir string) (string, error) {
	path := filepath.Join(dir, instanceIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id != "" && checkApplicationID(id) == nil {
			return id, nil
		}
		return "", fmt.Errorf("runtime: %s holds %q, not an instance id: remove it to have a new one made", path, b)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("runtime: read instance id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("runtime: make instance id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	if err := atomicfile.Write(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("runtime: write instance id: %w", err)
	}
	return id, nil
}

// beginLocked opens a transaction unless one is open (ExactlyOnce only).
func (a *App) beginLocked() error {
	if a.sess == nil || a.inTxn {
		return nil
	}
	if err := a.sess.Begin(); err != nil {
		return fmt.Errorf("runtime: begin transaction: %w", err)
	}
	a.inTxn = true
	return nil
}

// commitTxnLocked commits every task in one transaction (see above),
// releasing mu while the transaction ends. An
// attempt whose flush fails or times out aborts the transaction and rolls
// the tasks back, as does a transaction the session refuses to commit; an
// error is returned only when the producer cannot go on (fenced by another
// instance with the same transactional id), a commit's outcome is unknown
// (End failed after TryCommit) or a store fails.
func (a *App) commitTxnLocked(ctx context.Context) error {
	start := time.Now()
	a.sm.Step(start, decide.CommitStarted{})
	if a.abandoned || a.txnUnsettled {
		return nil
	}
	ts := a.sortedTasksLocked()
	if err := a.beginLocked(); err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, a.opts.CommitTimeout)
	defer cancel()
	restore := a.setProduceCtxLocked(actx)
	offsets, err := flushTasks(actx, ts)
	restore()
	try := kgo.TryCommit
	if err != nil {
		if ctx.Err() != nil {
			a.log.Info("commit attempt interrupted: the instance stops", "err", err)
			return nil
		}
		a.failedFlushes++
		if a.failedFlushes >= maxFailedFlushes {
			// NB: mu is released around End as below: the group's
			// callbacks take mu while the session holds its own lock,
			// which End takes too.
			a.mu.Unlock()
			_, _ = a.sess.End(ctx, kgo.TryAbort)
			a.mu.Lock()
			a.inTxn = false
			return fmt.Errorf("runtime: %d commits in a row failed to flush; the last: %w", a.failedFlushes, err)
		}
		a.log.Warn("flush for the commit failed; aborting the transaction", "err", err)
		try = kgo.TryAbort
	} else {
		a.failedFlushes = 0
	}
	// NB: the session would commit the offsets of the records polled; the
	// tasks may hold polled records they have not processed yet, so the
	// request carries the offsets each task processed to instead.
	ectx := kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		setTxnOffsets(req, offsets)
		return nil
	})
	// NB: mu is released while the transaction ends: End waits for a
	// heartbeat, and during a rebalance for the group's callbacks
	// (onAssigned, onRevoked, onLost), which take mu. Nothing processes
	// meanwhile (this goroutine runs the steps); a callback may close
	// tasks of ts or add new ones.
	a.mu.Unlock()
	committed, eerr := a.endTxn(ectx, try, offsets)
	a.mu.Lock()
	a.inTxn = false
	if eerr != nil && ctx.Err() != nil {
		// NB: interrupted before the client ended it (its flush), the
		// transaction is still open in the client: the shutdown must not
		// begin another (the client refuses) nor commit this one.
		a.txnUnsettled = true
		a.log.Info("transaction end interrupted: the instance stops", "err", eerr)
		return nil
	}
	if eerr != nil && fatalTxnError(eerr) {
		err := fmt.Errorf("runtime: end transaction: %w", eerr)
		if errors.Is(eerr, kerr.ProducerFenced) {
			// NB: the coordinator bumped the epoch: it aborted the
			// transaction at its timeout, or another client took the
			// transactional id. A new client takes the id back.
			return &restartError{err}
		}
		return err
	}
	if eerr != nil && try == kgo.TryCommit {
		// NB: the broker may have committed (the EndTxn answer lost or
		// timed out). Aborting now would go through the client's
		// unconfirmed path: it reports success and moves the consumer to
		// the offsets it last saw committed, while the rollback below
		// restores the stores from the changelog, committed transaction
		// included: input processed twice, output duplicated. A new
		// client settles the transaction on the broker (InitProducerId
		// waits for it to complete) and reads the committed offsets and
		// changelog, as a restart of the process would.
		return &restartError{fmt.Errorf("runtime: end transaction: the commit's outcome is unknown: %w", eerr)}
	}
	if eerr != nil {
		// NB: after a failed End the client keeps the transaction open
		// (its outcome may be unknown); ending it with an abort settles
		// it (reinitializing the producer id if need be, which aborts it
		// on the broker).
		a.log.Warn("ending the transaction failed; aborting it", "commit", bool(try), "err", eerr)
		a.mu.Unlock()
		_, aerr := a.sess.End(ctx, kgo.TryAbort)
		a.mu.Lock()
		if aerr != nil {
			if ctx.Err() != nil {
				a.txnUnsettled = true
				return nil
			}
			return &restartError{fmt.Errorf("runtime: abort transaction after a failed end (%v): %w", eerr, aerr)}
		}
		committed = false
	}
	if !committed {
		a.m.transactions.WithLabelValues("aborted").Inc()
		a.log.Warn("transaction aborted; every task resumes from the last committed transaction", "err", errors.Join(err, eerr))
		return a.rollbackLocked(ctx)
	}
	for _, t := range ts {
		if a.tasks[t.id] != t {
			continue // closed during End: its writes are dropped, its next owner restores them
		}
		for _, s := range t.stores {
			if perr := stateengine.Persist(s); perr != nil {
				return fmt.Errorf("runtime: commit task %s: %w", t.id, perr)
			}
		}
	}
	a.m.transactions.WithLabelValues("committed").Inc()
	a.sm.Step(time.Now(), decide.CommitSucceeded{Tasks: len(ts)})
	a.applyLocked(a.sm.Ready(), nil)
	if len(offsets) > 0 {
		// NB: only a transaction that moved input counts as progress
		// between restarts: the first commit after a restart often
		// holds no task yet.
		a.restartsInARow = 0
		a.m.commits.Inc()
		a.m.commitTime.Observe(time.Since(start).Seconds())
	}
	return nil
}

// maxRestartsInARow is how many times in a row, with no transaction
// committing input offsets in between, the instance replaces its client
// before it stops.
const maxRestartsInARow = 5

// restartError is an error after which the instance goes on with a new
// transactional client (restartClient) rather than stopping: a commit's
// outcome is unknown, or the producer was fenced.
type restartError struct{ err error }

func (e *restartError) Error() string { return e.err.Error() }
func (e *restartError) Unwrap() error { return e.err }

// mayRestart reports whether Run replaces its client after the loop ended
// with err: err calls for it, the instance is not stopping, and fewer than
// maxRestartsInARow restarts happened since the last transaction that
// committed input offsets.
func (a *App) mayRestart(ctx context.Context, err error) bool {
	var re *restartError
	if !errors.As(err, &re) || ctx.Err() != nil {
		return false
	}
	select {
	case <-a.stop:
		return false
	default:
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.abandoned && a.restartsInARow < maxRestartsInARow
}

// restartClient replaces the transactional client after cause, as a
// restart of the process would: the old client leaves the group (within
// CommitTimeout, else it is cut off), every task closes without flushing
// (its stores drop what the open transaction wrote), and a new client
// initializes the producer id, which waits for the broker to settle the
// old transaction, and joins; the tasks it is assigned restore their
// stores from checkpoints and the committed changelog tail and resume from
// the committed offsets. A new client that fails to start is retried with
// backoff until it starts or the instance stops. Like any client that
// leaves, the old one's partitions may move to other instances and back.
func (a *App) restartClient(ctx context.Context, cause error) error {
	sm, err := newMachine(a.opts)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.restartsInARow++
	n := a.restartsInARow
	old, cancelOld := a.cl, a.clientCancel
	a.mu.Unlock()
	a.m.restarts.Inc()
	a.log.Warn("replacing the transactional client; every task resumes from the last committed transaction",
		"err", cause, "restart", n, "of", maxRestartsInARow)

	// NB: the old client is closed before anything is reset: its
	// rebalance callbacks may run until Close returns (opening a task,
	// failing the instance), and what they leave is dropped below.
	if old != nil {
		closed := make(chan struct{})
		go func() { old.Close(); close(closed) }()
		timer := time.NewTimer(a.opts.CommitTimeout)
		select {
		case <-closed:
		case <-timer.C:
			cancelOld()
			<-closed
		}
		timer.Stop()
		cancelOld()
	}

	a.mu.Lock()
	for _, t := range a.sortedTasksLocked() {
		a.closeTaskLocked(t)
	}
	a.sm, a.fatal, a.pending = sm, nil, nil
	a.inTxn, a.txnUnsettled, a.failedFlushes = false, false, 0
	// NB: no client until the new one is set: a shutdown meanwhile
	// commits nothing and closes no client again.
	a.cl, a.sess = nil, nil
	a.mu.Unlock()

	// NB: Close and Abandon end the wait for the new producer id.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(a.stopCtx, cancel)()
	for attempt := 1; ; attempt++ {
		err := a.startGroupClient(sctx)
		switch {
		case err == nil:
			return nil
		case sctx.Err() != nil:
			return nil // stopping: with no client there is nothing to commit
		case fatalTxnError(err):
			return err
		}
		wait := min(time.Duration(attempt)*time.Second, maxStartBackoff)
		a.log.Warn("starting the new transactional client failed; retrying", "err", err, "in", wait)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-sctx.Done():
			timer.Stop()
			return nil
		}
	}
}

// maxStartBackoff bounds the wait between attempts to start a new
// transactional client.
const maxStartBackoff = 30 * time.Second

// endTxn ends the open transaction with try, through Options.EndTxnFault
// when a test set it.
func (a *App) endTxn(ctx context.Context, try kgo.TransactionEndTry, offsets map[string]map[int32]int64) (bool, error) {
	f := a.opts.EndTxnFault
	if f == nil {
		return a.sess.End(ctx, try)
	}
	parts := 0
	for _, ps := range offsets {
		parts += len(ps)
	}
	if err := f(bool(try), false, parts); err != nil {
		return false, err
	}
	committed, err := a.sess.End(ctx, try)
	if err != nil || !committed {
		return committed, err
	}
	if err := f(bool(try), true, parts); err != nil {
		return false, err
	}
	return true, nil
}

// setTxnOffsets makes req commit offsets (topic -> partition -> next
// offset) and nothing else, keeping the topic ids req knew.
func setTxnOffsets(req *kmsg.TxnOffsetCommitRequest, offsets map[string]map[int32]int64) {
	ids := map[string][16]byte{}
	for _, t := range req.Topics {
		ids[t.Topic] = t.TopicID
	}
	topics := make([]kmsg.TxnOffsetCommitRequestTopic, 0, len(offsets))
	for topic, parts := range offsets {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, ids[topic]
		for p, off := range parts {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, off, -1
			rp.Metadata = &req.MemberID
			rt.Partitions = append(rt.Partitions, rp)
		}
		topics = append(topics, rt)
	}
	req.Topics = topics
}

// fatalTxnError reports errors after which the transactional producer
// cannot go on: another producer with the same transactional id fenced it,
// or it may not use the id.
func fatalTxnError(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed)
}

// rollbackLocked discards everything since the last committed transaction:
// every task closes without flushing (its stores drop their uncommitted
// writes, its buffered records go) and opens again, restoring its stores
// from their checkpoints and the committed changelog tail. The session
// has already moved the consumer back to the committed offsets.
func (a *App) rollbackLocked(ctx context.Context) error {
	for _, t := range a.sortedTasksLocked() {
		tps := append([]streams.TopicPartition(nil), t.sm.Inputs()...)
		a.closeTaskLocked(t)
		nt, err := a.openTask(ctx, t.id, tps)
		if err != nil {
			return fmt.Errorf("runtime: roll back task %s: %w", t.id, err)
		}
		a.addTaskLocked(nt, tps)
		a.log.Info("task rolled back to the last committed transaction", "task", t.label)
	}
	return nil
}
