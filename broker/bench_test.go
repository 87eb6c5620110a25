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
			var failed atomic.Int64
			for range b.N {
				c.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
					}
				})
			}
			if err := c.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d records failed", n)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkConsume100B reads b.N 100-byte records, produced beforehand to 6
// partitions, with a kgo consumer from the start. Compare the records/s of
// the two sub-benchmarks of one run.
func BenchmarkConsume100B(b *testing.B) {
	for _, tg := range benchTargets {
		b.Run(tg.name, func(b *testing.B) {
			addr := tg.start(b)
			ctx := context.Background()
			p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(0))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			if _, err := kadm.NewClient(p).CreateTopic(ctx, 6, 1, nil, "bench"); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 100)
			_, _ = rand.Read(val)
			var failed atomic.Int64
			for range b.N {
				p.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
					}
				})
			}
			if err := p.Flush(ctx); err != nil || failed.Load() > 0 {
				b.Fatalf("producing: %v (%d failed)", err, failed.Load())
			}
			c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("bench"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			b.SetBytes(100)
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; {
				fs := c.PollFetches(ctx)
				if errs := fs.Errors(); len(errs) > 0 {
					b.Fatal(errs[0].Err)
				}
				n += fs.NumRecords()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}
