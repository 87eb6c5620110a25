package broker

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// benchTopicSeq names each benchmark round's topic afresh (b.Run calls
// its function more than once).
var benchTopicSeq atomic.Int64

// securityBenchTargets are one broker's listeners of each kind, and the
// client options to reach each: PLAINTEXT is the peer of SSL and SASL_SSL
// (SCRAM-SHA-512) in the same run.
func securityBenchTargets(b *testing.B) []struct {
	name string
	opts []kgo.Opt
} {
	pki := newTestPKI(b)
	dir := b.TempDir()
	if err := SetSCRAMUser(dir, "bench", SCRAMSHA512, "bench-pw", 4096); err != nil {
		b.Fatal(err)
	}
	br := openSecure(b, Options{DataDir: dir, CleanInterval: -1, TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile,
		Listeners: []Listener{
			{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"},
			{Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"},
			{Name: "SASL_SSL", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"},
		}})
	return []struct {
		name string
		opts []kgo.Opt
	}{
		{"plaintext", []kgo.Opt{kgo.SeedBrokers(br.ListenerAddr("PLAINTEXT"))}},
		{"tls", []kgo.Opt{kgo.SeedBrokers(br.ListenerAddr("SSL")), kgo.DialTLSConfig(pki.clientTLS())}},
		{"sasl_ssl", []kgo.Opt{kgo.SeedBrokers(br.ListenerAddr("SASL_SSL")), kgo.DialTLSConfig(pki.clientTLS()),
			kgo.SASL(scram.Auth{User: "bench", Pass: "bench-pw"}.AsSha512Mechanism())}},
	}
}

// BenchmarkListenerProduce1K produces 1 KiB incompressible records to 6
// partitions (acks=all, idempotent) through each kind of listener of one
// broker; compare records/s of tls and sasl_ssl with plaintext.
func BenchmarkListenerProduce1K(b *testing.B) {
	for _, tg := range securityBenchTargets(b) {
		b.Run(tg.name, func(b *testing.B) {
			ctx := context.Background()
			topic := fmt.Sprintf("bench-produce-%s-%d", tg.name, benchTopicSeq.Add(1))
			c, err := kgo.NewClient(append(tg.opts, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))...)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := kadm.NewClient(c).CreateTopic(ctx, 6, 1, nil, topic); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 1024)
			_, _ = rand.Read(val)
			if err := c.ProduceSync(ctx, &kgo.Record{Value: val}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(1024)
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

// BenchmarkListenerConsume1K reads b.N 1 KiB records, produced beforehand
// over plaintext, through each kind of listener.
func BenchmarkListenerConsume1K(b *testing.B) {
	targets := securityBenchTargets(b)
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			ctx := context.Background()
			topic := fmt.Sprintf("bench-consume-%s-%d", tg.name, benchTopicSeq.Add(1))
			p, err := kgo.NewClient(append(targets[0].opts, kgo.DefaultProduceTopic(topic))...)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			if _, err := kadm.NewClient(p).CreateTopic(ctx, 6, 1, nil, topic); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 1024)
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
			c, err := kgo.NewClient(append(tg.opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			b.SetBytes(1024)
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
