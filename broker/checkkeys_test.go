package broker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/storage"
)

// changelogBatch is a batch as a windowed count's changelog writer sends
// it: n records with a 20-byte key (customer id and window start) and an
// 8-byte count; the record at keyless, if in range, has no key.
func changelogBatch(t testing.TB, n, keyless int, codec batch.Codec) []byte {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), Key: fmt.Appendf(nil, "customer-%06d-%04d", i%10_000, i%60), Value: []byte{0, 0, 0, 0, 0, 0, 0, byte(i)}}
		if i == keyless {
			recs[i].Key = nil
		}
	}
	b, err := batch.Build(batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs, codec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkKeysRecords is the compacted-topic key check as it was, decoding
// every record into a slice first: the peer of checkKeys in the tests and
// the benchmark.
func checkKeysRecords(b []byte, maxDecompressed int) error {
	recs, err := batch.Records(b, maxDecompressed)
	if err != nil {
		return kafkaErr(fmt.Errorf("%w: %w", storage.ErrCorrupt, err))
	}
	for _, rec := range recs {
		if rec.Key == nil {
			return fmt.Errorf("%w: broker: compacted topic refuses a record without a key", kerr.InvalidRecord)
		}
	}
	return nil
}

// TestCheckKeys: checkKeys answers as the slice-building check did: keyed
// batches pass, a keyless record anywhere is INVALID_RECORD, a batch whose
// decompression passes the bound is CORRUPT_MESSAGE, compressed or not.
func TestCheckKeys(t *testing.T) {
	for _, codec := range []batch.Codec{batch.CodecNone, batch.CodecSnappy, batch.CodecLZ4} {
		for _, tc := range []struct {
			name     string
			b        []byte
			maxBytes int
			want     *kerr.Error
		}{
			{"keyed", changelogBatch(t, 500, -1, codec), 1 << 20, nil},
			{"first keyless", changelogBatch(t, 500, 0, codec), 1 << 20, kerr.InvalidRecord},
			{"last keyless", changelogBatch(t, 500, 499, codec), 1 << 20, kerr.InvalidRecord},
			{"one record", changelogBatch(t, 1, -1, codec), 1 << 20, nil},
			{"decompression past the bound", changelogBatch(t, 500, -1, codec), 100, kerr.CorruptMessage},
		} {
			if codec == batch.CodecNone && tc.want == kerr.CorruptMessage {
				continue // nothing to decompress
			}
			t.Run(fmt.Sprintf("%v/%s", codec, tc.name), func(t *testing.T) {
				got, was := checkKeys(tc.b, tc.maxBytes), checkKeysRecords(tc.b, tc.maxBytes)
				for what, err := range map[string]error{"checkKeys": got, "the slice check": was} {
					switch {
					case tc.want == nil && err != nil:
						t.Errorf("%s: %v, want nil", what, err)
					case tc.want != nil && !errors.Is(err, tc.want):
						t.Errorf("%s: %v, want %v", what, err, tc.want)
					}
				}
			})
		}
	}
}

// BenchmarkCheckKeys: the compacted-topic key check of one produced
// changelog batch of 1,000 records, by checkKeys (batch.Scan, one reused
// record) against the slice-building check it replaced, in one run.
func BenchmarkCheckKeys(b *testing.B) {
	for _, codec := range []batch.Codec{batch.CodecNone, batch.CodecSnappy} {
		payload := changelogBatch(b, 1000, -1, codec)
		for _, c := range []struct {
			name  string
			check func([]byte, int) error
		}{{"records", checkKeysRecords}, {"scan", checkKeys}} {
			b.Run(fmt.Sprintf("%v/%s", codec, c.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(payload)))
				for b.Loop() {
					if err := c.check(payload, maxKeyCheckBytes); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
