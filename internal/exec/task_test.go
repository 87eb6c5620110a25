package exec_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/exec"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

type sink struct{ recs []streams.RawRecord }

func (s *sink) Send(r *streams.RawRecord) error {
	s.recs = append(s.recs, *r)
	return nil
}

// flushCounter is an unlogged in-memory store of the state engine that
// counts its flushes.
type flushCounter struct {
	state.KeyValueStore
	flushes int
}

func (f *flushCounter) Flush(ctx context.Context) error {
	f.flushes++
	return nil
}

type provider struct {
	e      *stateengine.Engine
	stores map[string]*flushCounter
}

func (p *provider) OpenStore(id streams.TaskID, spec streams.StoreSpec) (state.Store, error) {
	sp := spec.Spec
	sp.InMemory, sp.Unlogged, sp.Uncached = true, true, true
	kv, err := p.e.OpenKeyValue(context.Background(), sp, int32(id.Partition), nil)
	if err != nil {
		return nil, err
	}
	s := &flushCounter{KeyValueStore: kv}
	p.stores[spec.Name] = s
	return s, nil
}

// newProvider returns a provider of stores on a state engine in memory,
// closed at the end of the test.
func newProvider(t *testing.T) *provider {
	t.Helper()
	e, err := stateengine.Open(stateengine.Options{Dir: "/", FS: vfs.NewMem(), MemoryBudget: stateengine.MinMemoryBudget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return &provider{e: e, stores: map[string]*flushCounter{}}
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// topology: topics a and b -> "tag" (records the order and fails on
// "fail") -> sink "out"; "tag" uses store "st" and schedules punctuators.
func newTask(t *testing.T, events *[]string) (*exec.Task, *sink, *provider, *fakeClock) {
	t.Helper()
	topo := streams.NewTopology()
	streams.AddSource(topo, "src", serde.String(), serde.String(), []string{"a", "b"})
	streams.AddProcessor(topo, "tag", func() streams.Processor[string, string, string, string] {
		return &tagger{events: events}
	}, "src")
	topo.AddStore(streams.StoreSpec{Spec: state.Spec{Name: "st", Kind: state.KindKeyValue}}, "tag")
	streams.AddSink(topo, "out", "out", serde.String(), serde.String(), []string{"tag"})
	if err := topo.Build(); err != nil {
		t.Fatal(err)
	}
	out := &sink{}
	prov := newProvider(t)
	clk := &fakeClock{now: time.UnixMilli(1_000_000)}
	task, err := exec.NewTask(topo, streams.TaskID{Subtopology: 0, Partition: 2}, prov, out, exec.Options{ApplicationID: "app", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Close() })
	return task, out, prov, clk
}

type tagger struct {
	ctx    streams.ProcessorContext[string, string]
	events *[]string
}

func (p *tagger) Init(ctx streams.ProcessorContext[string, string]) error {
	p.ctx = ctx
	if _, err := ctx.Store("st"); err != nil {
		return err
	}
	if _, err := ctx.Schedule(10*time.Millisecond, streams.StreamTime, func(ts time.Time) error {
		*p.events = append(*p.events, "stream@"+itoa(ts.UnixMilli()))
		return nil
	}); err != nil {
		return err
	}
	_, err := ctx.Schedule(time.Second, streams.WallClockTime, func(ts time.Time) error {
		*p.events = append(*p.events, "wall@"+itoa(ts.UnixMilli()))
		return nil
	})
	return err
}

func (p *tagger) Process(r streams.Record[string, string]) error {
	if r.Value == "fail" {
		return errors.New("refused")
	}
	if r.Value == "commit" {
		p.ctx.RequestCommit()
	}
	md, _ := p.ctx.RecordMetadata()
	*p.events = append(*p.events, md.Topic+":"+r.Value)
	return p.ctx.Forward(r)
}

func (p *tagger) Close() error { return nil }

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func raws(topic string, p streams.Partition, first streams.Offset, tsv ...any) []streams.RawRecord {
	var out []streams.RawRecord
	for i := 0; i < len(tsv); i += 2 {
		out = append(out, streams.RawRecord{Topic: topic, Partition: p, Offset: first + streams.Offset(i/2),
			Key: []byte("k"), Value: []byte(tsv[i+1].(string)), Timestamp: time.UnixMilli(int64(tsv[i].(int)))})
	}
	return out
}

func drain(t *testing.T, task *exec.Task) {
	t.Helper()
	for {
		ok, err := task.Process()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
	}
}

func TestTaskPicksRecordsInTimestampOrder(t *testing.T) {
	var events []string
	task, out, _, _ := newTask(t, &events)
	if err := task.Add(streams.TopicPartition{Topic: "a", Partition: 2}, raws("a", 2, 100, 1, "a1", 5, "a5", 9, "a9")); err != nil {
		t.Fatal(err)
	}
	if err := task.Add(streams.TopicPartition{Topic: "b", Partition: 2}, raws("b", 2, 7, 3, "b3", 5, "b5", 12, "b12")); err != nil {
		t.Fatal(err)
	}
	if task.Buffered() != 6 {
		t.Fatalf("buffered %d", task.Buffered())
	}
	drain(t, task)
	// Records interleave by timestamp across the two partitions. The
	// stream-time punctuator fires after the record that moved stream time:
	// first at the first stream time (1), then once for the latest 10ms
	// boundary passed (11, when b12 arrives).
	want := []string{"a:a1", "stream@1", "b:b3", "a:a5", "b:b5", "a:a9", "b:b12", "stream@11"}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := task.StreamTime().UnixMilli(); got != 12 {
		t.Errorf("stream time %d, want 12", got)
	}
	if diff := cmp.Diff(map[streams.TopicPartition]streams.Offset{{Topic: "a", Partition: 2}: 103, {Topic: "b", Partition: 2}: 10}, task.Offsets()); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
	if len(out.recs) != 6 || out.recs[0].Partition != streams.AnyPartition || out.recs[0].Topic != "out" {
		t.Errorf("output %+v", out.recs)
	}
	if err := task.Add(streams.TopicPartition{Topic: "c", Partition: 2}, nil); err == nil {
		t.Error("Add accepted a topic the task does not read")
	}
}

func TestTaskWallClockPunctuationCommitAndErrors(t *testing.T) {
	var events []string
	task, _, prov, clk := newTask(t, &events)
	if err := task.Punctuate(clk.now.Add(999 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if len(events) != 0 {
		t.Fatalf("punctuated early: %v", events)
	}
	// Three intervals late: fires once, for the latest due time.
	if err := task.Punctuate(clk.now.Add(3500 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"wall@1003000"}, events); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if task.CommitNeeded() {
		t.Error("commit needed before any record")
	}
	_ = task.Add(streams.TopicPartition{Topic: "a", Partition: 2}, raws("a", 2, 0, 1, "commit", 2, "fail", 3, "after"))
	if _, err := task.Process(); err != nil {
		t.Fatal(err)
	}
	if !task.CommitRequested() || !task.CommitNeeded() {
		t.Error("commit not requested")
	}
	if err := task.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if prov.stores["st"].flushes != 1 || task.CommitNeeded() {
		t.Errorf("flushes %d, commit needed %v after commit", prov.stores["st"].flushes, task.CommitNeeded())
	}
	_, err := task.Process()
	var pe *streams.ProcessingError
	if !errors.As(err, &pe) || pe.Record == nil || string(pe.Record.Value) != "fail" || pe.Record.Offset != 1 {
		t.Fatalf("error %v, want a ProcessingError for offset 1", err)
	}
	var ne *streams.NodeError
	if !errors.As(err, &ne) || ne.Node != "tag" {
		t.Errorf("error %v does not name node tag", err)
	}
	if got := task.Offsets()[streams.TopicPartition{Topic: "a", Partition: 2}]; got != 2 {
		t.Errorf("offset after the failed record = %d, want 2", got)
	}
}

func TestProcessorMayOnlyUseConnectedStores(t *testing.T) {
	topo := streams.NewTopology()
	streams.AddSource(topo, "src", serde.String(), serde.String(), []string{"a"})
	streams.AddProcessor(topo, "nosy", func() streams.Processor[string, string, string, string] {
		return &storeGrabber{name: "other"}
	}, "src")
	streams.AddProcessor(topo, "owner", func() streams.Processor[string, string, string, string] {
		return &storeGrabber{name: "other"}
	}, "src")
	topo.AddStore(streams.StoreSpec{Spec: state.Spec{Name: "other", Kind: state.KindKeyValue}}, "owner")
	if err := topo.Build(); err != nil {
		t.Fatal(err)
	}
	task, err := exec.NewTask(topo, streams.TaskID{}, newProvider(t), &sink{}, exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = task.Init()
	var ne *streams.NodeError
	if !errors.As(err, &ne) || ne.Node != "nosy" {
		t.Fatalf("Init = %v, want an error naming node nosy", err)
	}
}

type storeGrabber struct{ name string }

func (g *storeGrabber) Init(ctx streams.ProcessorContext[string, string]) error {
	_, err := ctx.Store(g.name)
	return err
}
func (g *storeGrabber) Process(streams.Record[string, string]) error { return nil }
func (g *storeGrabber) Close() error                                 { return nil }

// AddOne queues like Add of a one-record slice: the same interleaving by
// timestamp and the same offsets, also when a drained queue starts over,
// and the caller's record may change afterwards.
func TestTaskAddOneMatchesAdd(t *testing.T) {
	feed := func(task *exec.Task, one bool) {
		a := raws("a", 2, 100, 1, "a1", 5, "a5", 9, "a9")
		b := raws("b", 2, 7, 3, "b3", 5, "b5", 12, "b12")
		for i := range a {
			for _, r := range []streams.RawRecord{a[i], b[i]} {
				tp := streams.TopicPartition{Topic: r.Topic, Partition: 2}
				var err error
				if one {
					err = task.AddOne(tp, &r)
					r.Value, r.Offset = []byte("changed"), -1
				} else {
					err = task.Add(tp, []streams.RawRecord{r})
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if i == 1 {
				drain(t, task) // the queues are empty: the next records start them over
			}
		}
		drain(t, task)
	}
	var wantEvents, gotEvents []string
	want, _, _, _ := newTask(t, &wantEvents)
	feed(want, false)
	got, _, _, _ := newTask(t, &gotEvents)
	feed(got, true)
	if diff := cmp.Diff(wantEvents, gotEvents); diff != "" {
		t.Errorf("events (-Add +AddOne):\n%s", diff)
	}
	if diff := cmp.Diff(want.Offsets(), got.Offsets()); diff != "" {
		t.Errorf("offsets (-Add +AddOne):\n%s", diff)
	}
	if err := got.AddOne(streams.TopicPartition{Topic: "c", Partition: 2}, &streams.RawRecord{}); err == nil {
		t.Error("AddOne accepted a topic the task does not read")
	}
}

// loopSink feeds each record a task sends back to the task, as the test
// driver does when a sink writes a topic the task reads.
type loopSink struct {
	task *exec.Task
	next streams.Offset
}

func (s *loopSink) Send(r *streams.RawRecord) error {
	if s.next >= 4000 {
		return nil
	}
	rec := streams.RawRecord{Topic: "a", Partition: 2, Offset: s.next, Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(int64(s.next))}
	s.next++
	return s.task.AddOne(streams.TopicPartition{Topic: "a", Partition: 2}, &rec)
}

// metaChecker forwards each record (the first twice) and checks that the
// record it is processing does not change under it meanwhile.
type metaChecker struct {
	ctx  streams.ProcessorContext[string, string]
	seen []streams.Offset
	errs []string
}

func (p *metaChecker) Init(ctx streams.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *metaChecker) Process(r streams.Record[string, string]) error {
	before, _ := p.ctx.RecordMetadata()
	n := 1
	if before.Offset == 0 {
		n = 2
	}
	for range n {
		if err := p.ctx.Forward(r); err != nil {
			return err
		}
	}
	after, _ := p.ctx.RecordMetadata()
	if after != before {
		p.errs = append(p.errs, fmt.Sprintf("record %d became %d while it was processed", before.Offset, after.Offset))
	}
	p.seen = append(p.seen, before.Offset)
	return nil
}

func (p *metaChecker) Close() error { return nil }

// TestTaskFedFromItsOwnSink processes records while its sink adds more to
// the queue being processed: every record is processed once, in order, and
// none changes while it is processed (the queue is neither reset nor
// compacted under it).
func TestTaskFedFromItsOwnSink(t *testing.T) {
	topo := streams.NewTopology()
	streams.AddSource(topo, "src", serde.String(), serde.String(), []string{"a"})
	pc := &metaChecker{}
	streams.AddProcessor(topo, "check", func() streams.Processor[string, string, string, string] { return pc }, "src")
	streams.AddSink(topo, "out", "out", serde.String(), serde.String(), []string{"check"})
	if err := topo.Build(); err != nil {
		t.Fatal(err)
	}
	out := &loopSink{}
	task, err := exec.NewTask(topo, streams.TaskID{Subtopology: 0, Partition: 2}, newProvider(t), out, exec.Options{ApplicationID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	out.task = task
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Close() })
	if err := out.Send(nil); err != nil {
		t.Fatal(err)
	}
	drain(t, task)
	if len(pc.errs) > 0 {
		t.Fatalf("%d records changed while processed, first: %s", len(pc.errs), pc.errs[0])
	}
	if len(pc.seen) != 4000 {
		t.Fatalf("processed %d records, want 4000", len(pc.seen))
	}
	for i, o := range pc.seen {
		if o != streams.Offset(i) {
			t.Fatalf("record %d has offset %d", i, o)
		}
	}
}
