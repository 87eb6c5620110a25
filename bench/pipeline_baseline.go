package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
)

// baseline is a hand-written franz-go application, the no-framework peer of
// the Weir runtime: one group member owning every input partition, one
// goroutine that polls, processes, and every commit interval produces its
// pending output, flushes the producer and then commits the input offsets
// it has polled (at-least-once, as the runtime). Its state lives in a Go
// map only: unlike the runtime it keeps no changelog and cannot recover it.
type baseline struct {
	cl *kgo.Client
	// sess, when not nil, wraps cl: each commit is a transaction holding
	// the output and the input offsets (exactly-once).
	sess       *kgo.GroupTransactSession
	partitions int32
	assigned   atomic.Int32
	cancel     context.CancelFunc
	done       chan error
	err        atomic.Pointer[error]
	commit     time.Duration

	// process folds one polled record into the state and may produce
	// output; flush produces the output pending since the last commit.
	process func(ctx context.Context, r *kgo.Record) error
	flush   func(ctx context.Context) error
	// processed counts the input records processed.
	processed atomic.Int64
	// produceErr holds the first error of an output produce.
	produceErr atomic.Pointer[error]
}

func newBaseline(cfg pipelineConfig, addrs []string, eos bool, group string, topics ...string) (*baseline, error) {
	b := &baseline{partitions: cfg.Partitions * int32(len(topics)), done: make(chan error, 1), commit: cfg.Commit}
	opts := []kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			for _, ps := range m {
				b.assigned.Add(int32(len(ps)))
			}
		}),
		// Several loops may share the group (--instances): what moves away
		// is no longer this one's.
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			for _, ps := range m {
				b.assigned.Add(-int32(len(ps)))
			}
		}),
	}
	if !eos {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, err
		}
		b.cl = cl
		return b, nil
	}
	opts = append(opts, kgo.TransactionalID(group+"-txn"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, err
	}
	b.sess, b.cl = sess, sess.Client()
	return b, nil
}

func (b *baseline) start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() {
		err := b.loop(ctx)
		if err != nil {
			b.err.Store(&err)
		}
		b.done <- err
	}()
}

// produce sends r; commitOnce waits for it. Its context is not the loop's,
// so that stopping the loop does not fail output already handed over.
func (b *baseline) produce(r *kgo.Record) {
	b.cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
		if err != nil {
			b.produceErr.CompareAndSwap(nil, &err)
		}
	})
}

func (b *baseline) loop(ctx context.Context) error {
	pollEvery := min(b.commit, 200*time.Millisecond)
	last := time.Now()
	if b.sess != nil {
		if err := b.sess.Begin(); err != nil {
			return fmt.Errorf("baseline: begin: %w", err)
		}
	}
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, pollEvery)
		fs := b.cl.PollRecords(pctx, 10_000)
		cancel()
		if fs.IsClientClosed() {
			break
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				return fmt.Errorf("baseline: fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		var err error
		fs.EachRecord(func(r *kgo.Record) {
			if err == nil {
				err = b.process(ctx, r)
				b.processed.Add(1)
			}
		})
		if err != nil {
			return err
		}
		if time.Since(last) >= b.commit {
			last = time.Now()
			if err := b.commitOnce(); err != nil {
				return err
			}
		}
	}
	return b.commitOnce() // the final commit, on the way out
}

// commitOnce produces the pending output, waits for every produce to be
// acknowledged, then commits the offsets polled so far. It has a context
// of its own so that stopping the loop does not cut a commit short.
func (b *baseline) commitOnce() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.flush(ctx); err != nil {
		return err
	}
	if err := b.cl.Flush(ctx); err != nil {
		return fmt.Errorf("baseline: flush: %w", err)
	}
	if p := b.produceErr.Load(); p != nil {
		return fmt.Errorf("baseline: produce: %w", *p)
	}
	if b.sess != nil {
		// NB: its state is a Go map it cannot roll back: an aborted
		// transaction ends the run rather than count twice.
		committed, err := b.sess.End(ctx, kgo.TryCommit)
		if err != nil {
			return fmt.Errorf("baseline: end transaction: %w", err)
		}
		if !committed {
			return errors.New("baseline: transaction aborted; the in-memory counts cannot roll back")
		}
		if err := b.sess.Begin(); err != nil {
			return fmt.Errorf("baseline: begin: %w", err)
		}
		return nil
	}
	if err := b.cl.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("baseline: commit: %w", err)
	}
	return nil
}

func (b *baseline) ready() bool { return b.assigned.Load() >= b.partitions }

func (b *baseline) failed() error {
	if p := b.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *baseline) describe() string {
	return fmt.Sprintf("baseline: %d records processed, %d partitions assigned", b.processed.Load(), b.assigned.Load())
}

func (b *baseline) stop() error {
	b.cancel()
	err := <-b.done
	b.cl.Close()
	return err
}

// countCell is one window's count in the baseline.
type countCell struct {
	key   orders.WindowKey
	n     int64
	dirty bool
}

// startCountBaseline starts the baseline of the windowed count: decode each
// order (as the topology's source does), count it in its (customer, minute)
// window, and at each commit produce every window whose count changed since
// the last one, with the output serdes of the topology.
func startCountBaseline(cfg pipelineConfig, addrs []string, eos bool) (*baseline, error) {
	b, err := newBaseline(cfg, addrs, eos, "bench-baseline-count", orders.InputTopic)
	if err != nil {
		return nil, err
	}
	os := orders.OrderSerde()
	counts := map[orders.WindowKey]*countCell{}
	var dirty []*countCell
	b.process = func(_ context.Context, r *kgo.Record) error {
		if _, err := os.Deserialize(r.Topic, r.Value); err != nil {
			return fmt.Errorf("baseline: order at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		k := orders.Of(string(r.Key), r.Timestamp)
		c := counts[k]
		if c == nil {
			c = &countCell{key: k}
			counts[k] = c
		}
		c.n++
		if !c.dirty {
			c.dirty = true
			dirty = append(dirty, c)
		}
		return nil
	}
	b.flush = func(context.Context) error {
		for _, c := range dirty {
			kb, err := countKeySerde.Serialize(orders.UpdatesTopic, windowedKey(c.key.Customer, c.key.Start))
			if err != nil {
				return err
			}
			vb, err := countValueSerde.Serialize(orders.UpdatesTopic, c.n)
			if err != nil {
				return err
			}
			b.produce(&kgo.Record{Topic: orders.UpdatesTopic, Key: kb, Value: vb,
				Timestamp: time.UnixMilli(c.key.Start)})
			c.dirty = false
		}
		dirty = dirty[:0]
		return nil
	}
	b.start()
	return b, nil
}
