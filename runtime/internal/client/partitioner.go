package client

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/streams"
)

// AnyPartition marks a record whose partition the partitioner picks from
// its key. Records with Partition >= 0 go to that partition.
const AnyPartition = int32(streams.AnyPartition)

// CustomPartition marks a record whose partition a sink's custom partitioner
// picks (see WithPartitionFor).
const CustomPartition = int32(-2)

type partitionForKey struct{}

// WithPartitionFor returns ctx carrying a record's custom partitioner
// (streams.RawRecord.PartitionFor). A record with Partition CustomPartition
// and this context is placed by the function, given the topic's partition
// count; a result out of range is wrapped into range.
func WithPartitionFor(ctx context.Context, f func(partitions int) streams.Partition) context.Context {
	return context.WithValue(ctx, partitionForKey{}, f)
}

// Partitioner places records with an explicit partition there, records
// marked CustomPartition where their custom partitioner says, and keyed
// records with AnyPartition where Kafka's default partitioner would
// (murmur2 of the key, streams.KeyPartition), so that a Weir application and
// any Kafka producer agree on where a key lives. Records with neither a
// partition nor a key go round-robin.
type Partitioner struct{}

var _ kgo.Partitioner = Partitioner{}

// ForTopic implements kgo.Partitioner.
func (Partitioner) ForTopic(string) kgo.TopicPartitioner { return &topicPartitioner{} }

type topicPartitioner struct{ next int }

func (*topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	if r.Partition == CustomPartition && r.Context != nil {
		if f, ok := r.Context.Value(partitionForKey{}).(func(int) streams.Partition); ok {
			p := int(f(n)) % n
			if p < 0 {
				p += n
			}
			return p
		}
	}
	if r.Key != nil {
		return int(streams.KeyPartition(r.Key, n))
	}
	p.next++
	return p.next % n
}
