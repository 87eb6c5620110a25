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

			// Fetch v13+ names topics by id.
			mreq := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(topic)
			mreq.Topics = append(mreq.Topics, mt)
			mresp, err := mreq.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			req := kmsg.NewPtrFetchRequest()
			req.MaxWaitMillis = 0
			req.MaxBytes = 1 << 20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = topic
			ft.TopicID = mresp.Topics[0].TopicID
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
				if h.Codec() != codec {
					t.Fatalf("batch codec %v, want %v", h.Codec(), codec)
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
		})
	}
}
