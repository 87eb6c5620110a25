package streams

import (
	"fmt"
	"time"
)

// Header is one record header: a key and an opaque value.
type Header struct {
	Key   string
	Value []byte
}

// Headers are a record's headers in their wire order. Keys may repeat.
type Headers []Header

// Get returns the value of the last header named key and whether it exists.
func (h Headers) Get(key string) ([]byte, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Key == key {
			return h[i].Value, true
		}
	}
	return nil, false
}

// Add returns h with a header appended.
func (h Headers) Add(key string, value []byte) Headers {
	return append(h, Header{Key: key, Value: value})
}

// Clone returns a deep copy of h (nil stays nil).
func (h Headers) Clone() Headers {
	if h == nil {
		return nil
	}
	out := make(Headers, len(h))
	for i, x := range h {
		out[i] = Header{Key: x.Key, Value: append([]byte(nil), x.Value...)}
	}
	return out
}

// Record is a typed record flowing between the nodes of a task: a key, a
// value, the event timestamp and headers. Processors receive and forward
// Records by value.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   Headers
}

// WithKey returns a copy of r with key k, keeping value, timestamp and headers.
func WithKey[K2, K, V any](r Record[K, V], k K2) Record[K2, V] {
	return Record[K2, V]{Key: k, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers}
}

// WithValue returns a copy of r with value v, keeping key, timestamp and headers.
func WithValue[V2, K, V any](r Record[K, V], v V2) Record[K, V2] {
	return Record[K, V2]{Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}
}

// Partition is a partition number within a topic.
type Partition int32

// Offset is the position of a record within a partition.
type Offset int64

// TopicPartition names one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition Partition
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// RawRecord is a record as it sits in a topic: serialized key and value.
// Task engines receive RawRecords from their input partitions and emit
// RawRecords to their output topics.
type RawRecord struct {
	// Topic, Partition and Offset locate an input record. For an output
	// record Partition is the partition chosen by a custom partitioner, or
	// AnyPartition to let the key's murmur2 hash choose (see KeyPartition);
	// Offset is unused.
	Topic     string
	Partition Partition
	// Stable, set by whoever built the record, promises that Key and
	// Value are never written again: sources may then decode values that
	// share their memory (serde.AliasDecoder: a string key costs no copy),
	// which keeps the bytes alive as long as such values. The test driver
	// sets it on the records it carves from its own buffers; the runtime
	// leaves it false (fetched bytes are large buffers a key would pin).
	Stable    bool
	Offset    Offset
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   Headers
	// PartitionFor, set on an output record by a sink with a custom
	// partitioner (WithPartitioner), gives the record's partition for the
	// topic's partition count; it takes precedence over Partition. Record
	// sinks call it once they know the count. Nil for input records.
	PartitionFor func(partitions int) Partition
}

// AnyPartition in an output RawRecord asks the record sink to pick the
// partition from the key with Kafka's default partitioner (KeyPartition).
const AnyPartition Partition = -1

// RecordMetadata describes the input record a task is processing.
type RecordMetadata struct {
	Topic     string
	Partition Partition
	Offset    Offset
}

// SubtopologyID numbers a sub-topology within a Topology, from 0.
type SubtopologyID int

// TaskID names a task: one sub-topology run over one partition number of its
// input topics. Global sub-topologies run as one task with Partition -1.
type TaskID struct {
	Subtopology SubtopologyID
	Partition   Partition
}

func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }
