package app

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/exec"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/runtime/internal/client"
	"github.com/weir-dev/weir/runtime/internal/decide"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// task is one running task: the exec engine's task plus what the runtime
// keeps around it. Only the goroutine holding App.mu (or the worker it
// hands the task to) touches it.
type task struct {
	id    streams.TaskID
	label string
	exec  *exec.Task
	// inflight counts the task's output and changelog records until they
	// are acknowledged; its batches' Ack is every output record's promise.
	inflight *client.Inflight
	stores   []state.Store
	// cache is the task's write-back cache, shared by its cached stores.
	cache *stateengine.Cache
	// sm is what App.sm keeps of the task: its input partitions (real
	// topic names), what was handed to it, whether it waits. Set when the
	// task is added to App.tasks.
	sm *decide.Task
	// processed and dropped are what was already reported to metrics.
	processed int64
	dropped   map[streams.Drop]int64
	// enforced counts records processed after giving up waiting (see
	// Options.MaxTaskIdle); reported counts what metrics have seen.
	enforced, enforcedReported int64
	// err is a fatal error met while processing (set by the worker).
	err error
	// checkpointLags is set when a pipelined commit checkpointed the
	// task's stores before its changelog records were acknowledged (see
	// App.startCommitLocked): the next commit flushes the stores even if
	// nothing changed since.
	checkpointLags bool
}

// sink sends a task's output records through the shared producer.
type sink struct {
	a *App
	t *task
}

func (s sink) Send(r *streams.RawRecord) error {
	if err := s.t.inflight.Err(); err != nil {
		return fmt.Errorf("runtime: task %s: an earlier send failed: %w", s.t.id, err)
	}
	// NB: a kept record (the promise hands it back): its fields one by one.
	rec := client.NewRecord()
	rec.Topic, rec.Partition = r.Topic, int32(r.Partition)
	rec.Key, rec.Value, rec.Timestamp = r.Key, r.Value, r.Timestamp
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if r.PartitionFor != nil {
		rec.Partition = client.CustomPartition
		rec.Context = client.WithPartitionFor(s.a.runCtx, r.PartitionFor)
	}
	b := s.t.inflight.Add()
	if err := s.a.gate.Acquire(s.a.produceWaitCtx()); err != nil {
		b.Done(err) // never produced: the task cannot commit past it
		client.FreeRecord(rec)
		return nil
	}
	s.a.cl.Produce(s.a.runCtx, rec, b.Ack)
	return nil
}

// stores opens a task's stores from the state engine, restored from their
// changelogs. It implements exec.StoreProvider.
type stores struct {
	a   *App
	t   *task
	ctx context.Context
}

func (p stores) OpenStore(id streams.TaskID, spec streams.StoreSpec) (state.Store, error) {
	a := p.a
	part := int32(id.Partition)
	if spec.Global {
		return a.globalStore(spec.Name)
	}
	sp := spec.Spec
	topic := a.plan.Changelogs[spec.Name]
	if spec.SourceTopic != "" {
		sp.Unlogged = true // the source topic is the changelog: restore from it, never write it
	}
	var w state.ChangelogWriter
	if !sp.Unlogged && topic != "" {
		cw := client.NewChangelogWriter(a.cl, topic, part, p.t.inflight, a.gate, a.produceWaitCtx)
		if a.opts.ExactlyOnce {
			cw.InTransactions()
		}
		w = cw
	}
	cached := !sp.Uncached && !a.opts.NoWriteCache
	if p.t.cache == nil && cached {
		p.t.cache = a.eng.NewCache()
	}
	var (
		s   state.Store
		err error
	)
	switch sp.Kind {
	case state.KindKeyValue:
		var kv state.KeyValueStore
		if kv, err = a.eng.OpenKeyValue(p.ctx, sp, part, w); err == nil && cached {
			kv, err = p.t.cache.KeyValue(kv, nil)
		}
		s = kv
	case state.KindWindow:
		var ws state.WindowStore
		if ws, err = a.eng.OpenWindow(p.ctx, sp, part, w); err == nil && cached {
			ws, err = p.t.cache.Window(ws, nil)
		}
		s = ws
	case state.KindSession:
		var ss state.SessionStore
		if ss, err = a.eng.OpenSession(p.ctx, sp, part, w); err == nil && cached {
			ss, err = p.t.cache.Session(ss, nil)
		}
		s = ss
	default:
		return nil, fmt.Errorf("runtime: store %q: unknown kind %v", spec.Name, spec.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: open store %q of task %s: %w", spec.Name, id, err)
	}
	p.t.stores = append(p.t.stores, s)
	if topic != "" {
		if err := a.restore(p.ctx, p.t, s, topic, part); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// restore replays the changelog tail into s and reports progress.
func (a *App) restore(ctx context.Context, t *task, s state.Store, topic string, part int32) error {
	r := client.NewChangelogReader(a.adm, a.clientOpts(), topic, part)
	if a.opts.ExactlyOnce {
		// NB: a transaction of this task's last owner that committed a
		// moment ago may lack its marker; one it left open ends within
		// the transaction timeout (see ChangelogReader.StableWait).
		r.ReadCommitted, r.StableWait = true, a.opts.TransactionTimeout+5*time.Second
	}
	left := a.m.restoreLeft.WithLabelValues(t.label, s.Name())
	done := a.m.restored.WithLabelValues(t.label, s.Name())
	start := time.Now()
	cr, handed := a.standbyHandoff(progressReader{r, left, done}, topic, part)
	res, err := stateengine.Restore(ctx, s, cr)
	if err != nil {
		return fmt.Errorf("runtime: restore store %q of task %s from %s/%d: %w", s.Name(), t.id, topic, part, err)
	}
	left.Set(0)
	a.log.Info("restored store", "task", t.label, "store", s.Name(), "changelog", topic, "partition", part,
		"from", res.From, "to", res.To, "records", res.Records, "from standby", handed, "wiped", res.Wiped, "took", time.Since(start))
	return nil
}

// progressReader counts what a restore replays.
type progressReader struct {
	*client.ChangelogReader
	left interface{ Set(float64) }
	done interface{ Add(float64) }
}

func (r progressReader) Read(ctx context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	r.left.Set(float64(to - from))
	remaining := to - from
	return r.ChangelogReader.Read(ctx, from, to, func(b []state.ChangelogRecord) error {
		if len(b) > 0 {
			remaining = to - b[len(b)-1].Offset - 1
			r.left.Set(float64(remaining))
			r.done.Add(float64(len(b)))
		}
		return fn(b)
	})
}
