package broker

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestFetchManySmallPartitionsAllocatesLittle: one Fetch over 200
// partitions holding one small batch each, asking 1 MiB per partition (the
// clients' default), allocates about what it returns, not a kept read
// buffer per partition (which held 1 MiB for each partition's 70 bytes
// until the response was written: ~180 MiB per fetch here).
func TestFetchManySmallPartitionsAllocatesLittle(t *testing.T) {
	const parts = 200
	b := startBroker(t, Options{})
	cl := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "many", parts, 1
	ct.Topics = append(ct.Topics, rt)
	if _, err := ct.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, parts)
	for p := range recs {
		recs[p] = &kgo.Record{Topic: "many", Partition: int32(p), Value: []byte("hello")}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = -1, 50<<20, 1, 100
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "many"
	for p := range int32(parts) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		ft.Partitions = append(ft.Partitions, rp)
	}
	req.Topics = append(req.Topics, ft)
	// Topic names, not ids, in the request (Fetch before v13).
	fc := newClient(t, b, kgo.MaxVersions(kversion.V2_8_0()))
	for i := range 3 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		resp, err := req.RequestWith(ctx, fc)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				if p.ErrorCode != 0 {
					t.Fatalf("partition %d: error %d", p.Partition, p.ErrorCode)
				}
				got += len(p.RecordBatches)
			}
		}
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("fetch %d: %d bytes of batches, %d KiB allocated in the process", i, got, allocated>>10)
		if got == 0 {
			t.Fatal("the fetch returned no batches")
		}
		if allocated > 16<<20 {
			t.Fatalf("fetch %d returned %d bytes but allocated %d MiB", i, got, allocated>>20)
		}
	}
}
