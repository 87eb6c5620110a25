package batch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzGoProducedBatches produces with franz-go's real producer and each
// of its compressors into an in-memory kfake cluster, fetches the stored
// batches' raw bytes, and checks that Weir validates and decodes them to the
// records that were sent.
func TestFranzGoProducedBatches(t *testing.T) {
	codecs := map[Codec]kgo.CompressionCodec{
		CodecNone:   kgo.NoCompression(),
		CodecGzip:   kgo.GzipCompression(),
		CodecSnappy: kgo.SnappyCompression(),
		CodecLZ4:    kgo.Lz4Compression(),
		CodecZstd:   kgo.ZstdCompression(),
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t-none", "t-gzip", "t-snappy", "t-lz4", "t-zstd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)

	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "t-" + codec.String()
			cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
				kgo.ProducerBatchCompression(codecs[codec]),
				kgo.DefaultProduceTopic(topic),
				kgo.ProducerLinger(time.Minute)) // few batches: flushed explicitly
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			var want []Record
			for i := range 50 {
				r := &kgo.Record{
					Key:       []byte(fmt.Sprintf("key-%d", i%5)),
					Value:     []byte(fmt.Sprintf("value %d, compressible compressible compressible", i)),
					Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}},
					Partition: 0,
				}
				if i%7 == 0 {
					r.Key = nil
				}
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
				want = append(want, Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value, Headers: []RecordHeader{{Key: "i", Value: r.Headers[0].Value}}})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}

			req := kmsg.NewPtrFetchRequest()
			req.MaxWaitMillis = 0
			req.MaxBytes = 1 << 20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = topic
			ft.TopicID = topicID(ctx, t, cl, topic) // fetch v13+ names topics by id
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.PartitionMaxBytes = 1 << 20
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("fetch response %+v", resp)
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 {
				t.Fatalf("fetch error code %d", p.ErrorCode)
			}
			raw := p.RecordBatches
			var got []Record
			var firstTS int64
			compressed := 0 // batches stored with the codec under test
			for len(raw) > 0 {
				var one []byte
				one, raw, err = Next(raw)
				if err != nil {
					t.Fatal(err)
				}
				h, err := Validate(one)
				if err != nil {
					t.Fatalf("franz-go batch refused: %v", err)
				}
				// franz-go sends a batch uncompressed when compressing
				// did not shrink it (a batch cut early with one record).
				switch h.Codec() {
				case codec:
					compressed++
				case CodecNone:
				default:
					t.Fatalf("batch codec %v, want %v or none", h.Codec(), codec)
				}
				recs, err := Records(one, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					r.OffsetDelta += int32(h.BaseOffset)
					if firstTS == 0 {
						firstTS = h.FirstTimestamp
					}
					if ts := h.FirstTimestamp + r.TimestampDelta; ts < firstTS || ts > firstTS+int64(time.Minute/time.Millisecond) {
						t.Fatalf("timestamp %d far from first %d", ts, firstTS)
					}
					r.TimestampDelta = 0
					got = append(got, r)
				}
			}
			if d := cmp.Diff(want, got, exactBytes); d != "" {
				t.Fatalf("records (-sent +decoded):\n%s", d)
			}
			if codec != CodecNone && compressed == 0 {
				t.Fatalf("no batch stored with codec %v", codec)
			}
		})
	}
}

// TestBuildReadableByFranzGo: batches written by Build (as compaction
// rewrites them) are stored by kfake and read back by franz-go's consumer,
// with its own decompressors, to the records that were built.
func TestBuildReadableByFranzGo(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "built"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)

	var want []string
	for i, codec := range allCodecs {
		var recs []Record
		for j := range 20 {
			v := fmt.Sprintf("%s record %d %s", codec, j, "padding padding padding")
			want = append(want, v)
			recs = append(recs, Record{OffsetDelta: int32(j), TimestampDelta: int64(j), Key: []byte(codec.String()), Value: []byte(v),
				Headers: []RecordHeader{{Key: "codec", Value: []byte(codec.String())}}})
		}
		h := Header{FirstTimestamp: 1_700_000_000_000 + int64(i)*100, MaxTimestamp: 1_700_000_000_019 + int64(i)*100, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		b, err := Build(h, recs, codec)
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 10_000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "built"
		rt.TopicID = topicID(ctx, t, cl, "built") // produce v13+ names topics by id
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = b
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("%s: produce error code %d", codec, code)
		}
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"built": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)
	var got []string
	for len(got) < len(want) {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), len(want), err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Headers) != 1 || string(r.Headers[0].Value) != string(r.Key) {
				t.Fatalf("record %+v", r)
			}
			got = append(got, string(r.Value))
		})
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("franz-go read (-built +read):\n%s", d)
	}
}

// topicID looks up a topic's id, which newer request versions use instead
// of its name.
func topicID(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata for %q: %+v", topic, resp.Topics)
	}
	return resp.Topics[0].TopicID
}
