package streamstest

import (
	"fmt"
	"time"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/internal/slab"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// InputTopic pipes typed records into a topic of the driver.
type InputTopic[K, V any] struct {
	d    *Driver
	name string
	kw   slab.Writer[K]
	vw   slab.Writer[V]
	next time.Time
	step time.Duration
}

// InputOption configures an input topic.
type InputOption func(*inputConfig)

type inputConfig struct {
	start time.Time
	step  time.Duration
}

// AutoAdvance starts the topic's record timestamps at start and advances
// them by step after each record piped without an explicit timestamp.
// Default: start at the Unix epoch, step 0.
func AutoAdvance(start time.Time, step time.Duration) InputOption {
	return func(c *inputConfig) { c.start, c.step = start, step }
}

// CreateInputTopic returns a typed pipe into topic. It fails the test if
// the topology reads no such topic (the message lists those it reads).
func CreateInputTopic[K, V any](d *Driver, topic string, keySerde serde.Serde[K], valueSerde serde.Serde[V], opts ...InputOption) *InputTopic[K, V] {
	if err := d.checkInput(topic); err != nil {
		d.tb.Helper()
		d.fail(err)
		return nil
	}
	c := inputConfig{start: time.Unix(0, 0)}
	for _, o := range opts {
		o(&c)
	}
	d.topic(topic, 0)
	return &InputTopic[K, V]{d: d, name: topic, kw: slab.NewWriter(keySerde), vw: slab.NewWriter(valueSerde), next: c.start, step: c.step}
}

// Pipe pipes one record with the topic's current auto-advancing timestamp.
// It fails the test on error (use TryPipe to get the error).
func (in *InputTopic[K, V]) Pipe(k K, v V) {
	if err := in.TryPipe(k, v); err != nil {
		in.d.tb.Helper() // NB: only on failure: Helper is costly per record
		in.d.fail(err)
	}
}

// PipeAt pipes one record with timestamp ts (the auto-advance clock is not
// moved).
func (in *InputTopic[K, V]) PipeAt(k K, v V, ts time.Time) {
	if err := in.TryPipeRecord(streams.Record[K, V]{Key: k, Value: v, Timestamp: ts}); err != nil {
		in.d.tb.Helper()
		in.d.fail(err)
	}
}

// PipeRecord pipes r (key, value, timestamp and headers). A zero timestamp
// takes the auto-advancing one.
func (in *InputTopic[K, V]) PipeRecord(r streams.Record[K, V]) {
	if err := in.TryPipeRecord(r); err != nil {
		in.d.tb.Helper()
		in.d.fail(err)
	}
}

// PipeList pipes records in order.
func (in *InputTopic[K, V]) PipeList(rs []streams.Record[K, V]) {
	in.d.tb.Helper()
	for _, r := range rs {
		if err := in.TryPipeRecord(r); err != nil {
			in.d.fail(err)
			return
		}
	}
}

// TryPipe is Pipe returning the error: a *streams.ProcessingError carrying
// the record that failed.
func (in *InputTopic[K, V]) TryPipe(k K, v V) error {
	return in.TryPipeRecord(streams.Record[K, V]{Key: k, Value: v})
}

// TryPipeRecord is PipeRecord returning the error.
func (in *InputTopic[K, V]) TryPipeRecord(r streams.Record[K, V]) error {
	if r.Timestamp.IsZero() {
		r.Timestamp = in.next
		in.next = in.next.Add(in.step)
	}
	kb, err := in.kw.Append(&in.d.slab, in.name, r.Key)
	if err != nil {
		return fmt.Errorf("streamstest: serialize key for %q: %w", in.name, err)
	}
	vb, err := in.vw.Append(&in.d.slab, in.name, r.Value)
	if err != nil {
		return fmt.Errorf("streamstest: serialize value for %q: %w", in.name, err)
	}
	// Bytes carved from the driver's slab are never written again: the
	// task may decode values that share them (streams.RawRecord.Stable).
	stable := in.kw.Appends() && in.vw.Appends()
	return in.d.pipeRaw(&streams.RawRecord{Topic: in.name, Partition: streams.AnyPartition, Stable: stable, Key: kb, Value: vb,
		Timestamp: r.Timestamp, Headers: r.Headers})
}

// PipeRaw pipes an already serialized record (a nil value is a tombstone).
func (in *InputTopic[K, V]) PipeRaw(key, value []byte, ts time.Time) error {
	return in.d.pipeRaw(&streams.RawRecord{Topic: in.name, Partition: streams.AnyPartition, Key: key, Value: value, Timestamp: ts})
}

// OutputTopic reads typed records from a topic of the driver, in the order
// they were written (across partitions). Each OutputTopic has its own read
// position, starting at the topic's beginning.
type OutputTopic[K, V any] struct {
	d    *Driver
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	pos  int
}

// TestRecord is a record read from an output topic.
type TestRecord[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   streams.Headers
	Partition streams.Partition
}

// CreateOutputTopic returns a typed reader of topic. It fails the test if
// the topology neither writes nor reads such a topic (unless a sink chooses
// its topic per record).
func CreateOutputTopic[K, V any](d *Driver, topic string, keySerde serde.Serde[K], valueSerde serde.Serde[V]) *OutputTopic[K, V] {
	if err := d.checkOutput(topic); err != nil {
		d.tb.Helper()
		d.fail(err)
		return nil
	}
	return &OutputTopic[K, V]{d: d, name: topic, ks: keySerde, vs: valueSerde}
}

func (out *OutputTopic[K, V]) all() []rec {
	if t, ok := out.d.topics[out.name]; ok {
		return t.all
	}
	return nil
}

func (out *OutputTopic[K, V]) decode(r rec) (TestRecord[K, V], error) {
	k, err := out.ks.Deserialize(out.name, r.Key)
	if err != nil {
		return TestRecord[K, V]{}, fmt.Errorf("streamstest: key of %s/%d@%d: %w", out.name, r.Partition, r.Offset, err)
	}
	v, err := out.vs.Deserialize(out.name, r.Value)
	if err != nil {
		return TestRecord[K, V]{}, fmt.Errorf("streamstest: value of %s/%d@%d: %w", out.name, r.Partition, r.Offset, err)
	}
	return TestRecord[K, V]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers, Partition: r.Partition}, nil
}

// IsEmpty reports whether every record has been read.
func (out *OutputTopic[K, V]) IsEmpty() bool { return out.pos >= len(out.all()) }

// QueueSize returns the number of unread records.
func (out *OutputTopic[K, V]) QueueSize() int { return len(out.all()) - out.pos }

// ReadRecord reads the next record; it fails the test if there is none.
func (out *OutputTopic[K, V]) ReadRecord() TestRecord[K, V] {
	out.d.tb.Helper()
	all := out.all()
	if out.pos >= len(all) {
		out.d.fail(fmt.Errorf("no record left to read in %q", out.name))
		return TestRecord[K, V]{}
	}
	r, err := out.decode(all[out.pos])
	if err != nil {
		out.d.fail(err)
	}
	out.pos++
	return r
}

// ReadKeyValue reads the next record's key and value.
func (out *OutputTopic[K, V]) ReadKeyValue() dsl.KeyValue[K, V] {
	out.d.tb.Helper()
	r := out.ReadRecord()
	return dsl.KeyValue[K, V]{Key: r.Key, Value: r.Value}
}

// ReadRecords reads every unread record.
func (out *OutputTopic[K, V]) ReadRecords() []TestRecord[K, V] {
	out.d.tb.Helper()
	var rs []TestRecord[K, V]
	for !out.IsEmpty() {
		rs = append(rs, out.ReadRecord())
	}
	return rs
}

// ReadKeyValues reads every unread record's key and value.
func (out *OutputTopic[K, V]) ReadKeyValues() []dsl.KeyValue[K, V] {
	out.d.tb.Helper()
	var kvs []dsl.KeyValue[K, V]
	for !out.IsEmpty() {
		kvs = append(kvs, out.ReadKeyValue())
	}
	return kvs
}

// ReadKeyValuesToMap reads every unread record and returns the latest value
// per key (keys must be comparable). Tombstones (nil values) delete.
func ReadKeyValuesToMap[K comparable, V any](out *OutputTopic[K, V]) map[K]V {
	out.d.tb.Helper()
	m := map[K]V{}
	all := out.all()
	for ; out.pos < len(all); out.pos++ {
		raw := all[out.pos]
		r, err := out.decode(raw)
		if err != nil {
			out.d.fail(err)
			return m
		}
		if raw.Value == nil {
			delete(m, r.Key)
			continue
		}
		m[r.Key] = r.Value
	}
	return m
}
