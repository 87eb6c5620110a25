package broker

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchTargets starts each peer the benchmarks compare: Weir (durable,
// default fsync policy) and franz-go's in-memory kfake.
var benchTargets = []struct {
	name  string
	start func(b *testing.B) string
}{
	{"weir", func(b *testing.B) string {
		return startBroker(b, Options{CleanInterval: -1}).Addr()
	}},
	{"weir-nofsync", func(b *testing.B) string {
		return startBroker(b, Options{CleanInterval: -1, Fsync: FsyncNever}).Addr()
	}},
	{"kfake", func(b *testing.B) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}},
}

// BenchmarkProduce100B produces 100-byte incompressible records to 6
// partitions with an idempotent acks=all kgo producer. Compare the
// records/s of the two sub-benchmarks of one run.
func BenchmarkProduce100B(b *testing.B) {
	for _, tg := range benchTargets {
		b.Run(tg.name, func(b *testing.B) {
			addr := tg.start(b)
			ctx := context.Background()
			c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := kadm.NewClient(c).CreateTopic(ctx, 6, 1, nil, "bench"); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 100)
			_, _ = rand.Read(val)
			// Warm up: metadata, producer id, connections.
			if err := c.ProduceSync(ctx, &kgo.Record{Value: val}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(100)
			b.ResetTimer()
			start := time.Now()
			var firstErr atomic.Value
			for range b.N {
				c.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
					}
				})
			}
			if err := c.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := firstErr.Load(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}
