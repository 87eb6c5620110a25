package client_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/runtime/internal/client"
	"github.com/weir-dev/weir/streams"
)

func TestPartitionerPlacement(t *testing.T) {
	custom := func(ret int) *kgo.Record {
		return &kgo.Record{Key: []byte("k"), Partition: client.CustomPartition,
			Context: client.WithPartitionFor(context.Background(), func(n int) streams.Partition { return streams.Partition(ret) })}
	}
	const n = 5
	tp := client.Partitioner{}.ForTopic("t")
	got := []int{
		tp.Partition(&kgo.Record{Key: []byte("k"), Partition: 3}, n),                   // explicit
		tp.Partition(&kgo.Record{Key: []byte("k"), Partition: client.AnyPartition}, n), // by key
		tp.Partition(custom(4), n),
		tp.Partition(custom(7), n),  // wrapped into range
		tp.Partition(custom(-1), n), // wrapped into range
	}
	want := []int{3, int(streams.KeyPartition([]byte("k"), n)), 4, 2, 4}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("partitions (-want +got):\n%s", d)
	}
}
