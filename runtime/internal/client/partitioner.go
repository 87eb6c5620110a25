package client

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/streams"
)

// AnyPartition marks a record whose partition the partitioner picks from
// its key. Records with Partition >= 0 go to that partition.
const AnyPartition = int32(streams.AnyPartition)

// Partitioner places records with an explicit partition there, and keyed
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
	if r.Key != nil {
		return int(streams.KeyPartition(r.Key, n))
	}
	p.next++
	return p.next % n
}
