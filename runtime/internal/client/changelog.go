package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/state"
)

// ChangelogWriter appends a store's writes to its changelog partition
// through the application's producer. It implements state.ChangelogWriter.
// Records count in the owning task's Inflight too, so that the task's
// commit waits for them.
type ChangelogWriter struct {
	cl        *kgo.Client
	topic     string
	partition int32
	task      *Inflight
	// gate, if not nil, bounds the records in the producer; wait returns
	// the context Append waits on for room in it.
	gate *Gate
	wait func() context.Context

	own *Inflight
	// ownB and taskB are the batches (of own and task) the last record
	// counted in, and ack their records' promise, made once per pair
	// rather than per record. Only Append's goroutine touches them.
	ownB, taskB *Batch
	ack         func(*kgo.Record, error)
	// txn is set when cl is transactional (see Transactional).
	txn bool
	mu  sync.Mutex
	// last is the highest offset acknowledged. Guarded by mu.
	last state.Offset
}

var _ state.ChangelogWriter = (*ChangelogWriter)(nil)

// Transactional reports whether the writer's records are produced in
// transactions the caller ends: the store then commits its writes only
// once the transaction has (see stateengine.TransactionalChangelog).
func (w *ChangelogWriter) Transactional() bool { return w.txn }

// InTransactions marks w as producing through a transactional client
// (see Transactional) and returns it.
func (w *ChangelogWriter) InTransactions() *ChangelogWriter {
	w.txn = true
	return w
}

// NewChangelogWriter returns a writer to partition of topic. task, if not
// nil, also counts the writer's records. gate, if not nil, bounds the
// records in the producer, and wait returns the context an Append waits on
// for room in it: when that ends, the record fails without being produced
// (Flush and task report the error), so a broker outage cannot block
// Append for ever.
func NewChangelogWriter(cl *kgo.Client, topic string, partition int32, task *Inflight, gate *Gate, wait func() context.Context) *ChangelogWriter {
	return &ChangelogWriter{cl: cl, topic: topic, partition: partition, task: task, gate: gate, wait: wait, own: NewInflight(), last: state.NoOffset}
}

// Append implements state.ChangelogWriter.
func (w *ChangelogWriter) Append(key, value []byte) error {
	if err := w.own.Err(); err != nil {
		return fmt.Errorf("runtime: changelog %s/%d: %w", w.topic, w.partition, err)
	}
	ob := w.own.Add()
	var tb *Batch
	if w.task != nil {
		tb = w.task.Add()
	}
	if ob != w.ownB || tb != w.taskB || w.ack == nil {
		w.ownB, w.taskB = ob, tb
		w.ack = func(r *kgo.Record, err error) {
			w.onAck(r, err)
			done(ob, tb, err)
		}
	}
	if w.gate != nil {
		if err := w.gate.Acquire(w.wait()); err != nil {
			done(ob, tb, err)
			return nil
		}
	}
	r := NewRecord() // onAck hands it back
	r.Topic, r.Partition, r.Key, r.Value = w.topic, w.partition, key, value
	w.cl.Produce(context.Background(), r, w.ack)
	return nil
}

// onAck records an acknowledgement (or failure) of one appended record and
// hands the record back.
func (w *ChangelogWriter) onAck(r *kgo.Record, err error) {
	if w.gate != nil {
		w.gate.Release(err)
	}
	if err == nil {
		w.mu.Lock()
		if o := state.Offset(r.Offset); o > w.last {
			w.last = o
		}
		w.mu.Unlock()
	}
	FreeRecord(r)
}

// done counts one appended record as acknowledged (err nil) or failed.
func done(own, task *Batch, err error) {
	own.Done(err)
	if task != nil {
		task.Done(err)
	}
}

// Flush implements state.ChangelogWriter. Under a context made by
// WithoutAckWait it does not wait: it returns the last offset acknowledged
// so far (a pipelined commit checkpoints its stores there, and waits for
// the rest through the task's Inflight before it commits offsets).
func (w *ChangelogWriter) Flush(ctx context.Context) (state.Offset, error) {
	if ctx.Value(noAckWaitKey{}) != nil {
		if err := w.own.Err(); err != nil {
			return state.NoOffset, fmt.Errorf("runtime: changelog %s/%d: %w", w.topic, w.partition, err)
		}
	} else if err := w.own.Wait(ctx); err != nil {
		return state.NoOffset, fmt.Errorf("runtime: changelog %s/%d: %w", w.topic, w.partition, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, nil
}

type noAckWaitKey struct{}

// WithoutAckWait returns a context under which ChangelogWriter.Flush
// returns at once with the offset acknowledged so far, instead of waiting
// for every record appended. The store's checkpoint then lags its data;
// a restore from it replays records the store already holds, which
// rewrites the same values.
func WithoutAckWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noAckWaitKey{}, true)
}

// ChangelogReader reads a changelog partition for a restore. It implements
// state.ChangelogReader. Each Read uses a short-lived consumer of its own,
// so restores never disturb the application's group consumer.
type ChangelogReader struct {
	adm       *kadm.Client
	opts      []kgo.Opt
	topic     string
	partition int32
	// Idle is how long Read waits for more records when it has not yet
	// reached to: only a compacted tail makes the log hold no record at
	// to-1, and then nothing more arrives. Default 2s.
	Idle time.Duration
	// ReadCommitted reads only committed records (records of aborted
	// transactions are skipped) and ends at the last stable offset instead
	// of the high watermark. The clientOpts must then read at
	// read_committed too. Default false.
	ReadCommitted bool
	// StableWait, with ReadCommitted, is how long EndOffset waits for the
	// partition to have no open transaction (last stable offset = high
	// watermark) before it settles for the last stable offset: a
	// transaction that committed a moment ago may not have its marker
	// yet, and a restore that stopped before it would miss state whose
	// input offsets are committed. Default 0: no wait.
	StableWait time.Duration
}

var _ state.ChangelogReader = (*ChangelogReader)(nil)

// NewChangelogReader returns a reader of partition of topic. clientOpts
// configure the consumers Read creates (seed brokers and the like).
func NewChangelogReader(adm *kadm.Client, clientOpts []kgo.Opt, topic string, partition int32) *ChangelogReader {
	return &ChangelogReader{adm: adm, opts: clientOpts, topic: topic, partition: partition, Idle: 2 * time.Second}
}

// Topic implements state.ChangelogReader.
func (r *ChangelogReader) Topic() string { return r.topic }

// Partition implements state.ChangelogReader.
func (r *ChangelogReader) Partition() int32 { return r.partition }

// EndOffset implements state.ChangelogReader.
func (r *ChangelogReader) EndOffset(ctx context.Context) (state.Offset, error) {
	if r.ReadCommitted {
		return r.stableEnd(ctx)
	}
	return EndOffset(ctx, r.adm, r.topic, r.partition)
}

// stableEnd returns the last stable offset once it reaches the high
// watermark, or after StableWait.
func (r *ChangelogReader) stableEnd(ctx context.Context) (state.Offset, error) {
	deadline := time.Now().Add(r.StableWait)
	backoff := 10 * time.Millisecond
	for {
		lso, err := StableOffset(ctx, r.adm, r.topic, r.partition)
		if err != nil || !time.Now().Before(deadline) {
			return lso, err
		}
		hw, err := EndOffset(ctx, r.adm, r.topic, r.partition)
		if err != nil {
			return state.NoOffset, err
		}
		if lso >= hw {
			return lso, nil
		}
		t := time.NewTimer(min(backoff, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return state.NoOffset, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// EndOffset returns the high watermark of one partition. A topic created a
// moment ago may not be known to every broker yet: EndOffset retries for a
// while before it reports the partition missing.
func EndOffset(ctx context.Context, adm *kadm.Client, topic string, partition int32) (state.Offset, error) {
	return endOffset(ctx, adm.ListEndOffsets, topic, partition)
}

// StableOffset is EndOffset at read_committed: the last stable offset, below
// which every transaction has ended.
func StableOffset(ctx context.Context, adm *kadm.Client, topic string, partition int32) (state.Offset, error) {
	return endOffset(ctx, adm.ListCommittedOffsets, topic, partition)
}

func endOffset(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string, partition int32) (state.Offset, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	backoff := 20 * time.Millisecond
	for {
		ends, err := list(ctx, topic)
		if err != nil {
			return state.NoOffset, fmt.Errorf("runtime: end offset of %s/%d: %w", topic, partition, err)
		}
		o, ok := ends.Lookup(topic, partition)
		if ok && o.Err == nil {
			return state.Offset(o.Offset), nil
		}
		why := "partition not found"
		if ok {
			why = o.Err.Error()
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return state.NoOffset, fmt.Errorf("runtime: end offset of %s/%d: %s", topic, partition, why)
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Read implements state.ChangelogReader.
func (r *ChangelogReader) Read(ctx context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	if from < 0 {
		from = 0
	}
	if from >= to {
		return nil
	}
	opts := append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: {r.partition: kgo.NewOffset().At(int64(from))}}),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}, r.opts...)
	if r.ReadCommitted {
		// NB: the control records (transaction markers) are kept so that
		// the read moves past a marker at to-1 instead of waiting Idle for
		// a record that never comes; they are not handed to fn.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("runtime: restore %s/%d: %w", r.topic, r.partition, err)
	}
	defer cl.Close()
	var batch []state.ChangelogRecord
	next := from
	for next < to {
		pctx, cancel := context.WithTimeout(ctx, r.Idle)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if fs.Empty() && errors.Is(pctx.Err(), context.DeadlineExceeded) {
			// Nothing arrived for Idle: the records up to `to` are gone
			// (compaction or retention).
			return nil
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			return fmt.Errorf("runtime: restore %s/%d: %w", r.topic, r.partition, fe.Err)
		}
		batch = batch[:0]
		fs.EachRecord(func(rec *kgo.Record) {
			if state.Offset(rec.Offset) >= to {
				return
			}
			if rec.Attrs.IsControl() {
				next = state.Offset(rec.Offset) + 1
				return
			}
			batch = append(batch, state.ChangelogRecord{Offset: state.Offset(rec.Offset), Key: rec.Key, Value: rec.Value})
			next = state.Offset(rec.Offset) + 1
		})
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
	}
	return nil
}
