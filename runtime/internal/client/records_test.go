package client

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkChangelogAppend: a changelog writer appending store writes
// through franz-go to an in-memory cluster, flushed every 1,000 records,
// with kept records ("kept", ChangelogWriter) beside a fresh *kgo.Record per
// write with the same acknowledgement work ("fresh", how the writer
// produced before) in one run. Allocations per record include franz-go's
// and kfake's own.
func BenchmarkChangelogAppend(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(Partitioner{}))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	key, value := []byte("customer-0042"), []byte("0123456789abcdef")
	ctx := context.Background()
	b.Run("kept", func(b *testing.B) {
		b.ReportAllocs()
		w := NewChangelogWriter(cl, "log", 0, nil, nil, nil)
		i := 0
		for b.Loop() {
			if err := w.Append(key, value); err != nil {
				b.Fatal(err)
			}
			if i++; i%1000 == 0 {
				if _, err := w.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("fresh", func(b *testing.B) {
		b.ReportAllocs()
		f := NewInflight()
		i := 0
		for b.Loop() {
			bt := f.Add()
			cl.Produce(ctx, &kgo.Record{Topic: "log", Partition: 0, Key: key, Value: value}, bt.Ack)
			if i++; i%1000 == 0 {
				if err := f.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := f.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	})
}

// A kept record comes back empty, with its headers' room.
func TestFreeRecordEmpties(t *testing.T) {
	r := NewRecord()
	r.Topic, r.Key, r.Value, r.Partition, r.Offset = "t", []byte("k"), []byte("v"), 3, 9
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: "h", Value: []byte("x")})
	h := r.Headers
	FreeRecord(r)
	if r.Topic != "" || r.Key != nil || r.Value != nil || r.Partition != 0 || r.Offset != 0 || r.Context != nil || len(r.Headers) != 0 {
		t.Fatalf("freed record not empty: %+v", r)
	}
	if cap(r.Headers) == 0 || h[:1][0].Key != "" || h[:1][0].Value != nil {
		t.Fatalf("freed record's headers: cap %d, first %+v; want the room kept and emptied", cap(r.Headers), h[:1][0])
	}
}
