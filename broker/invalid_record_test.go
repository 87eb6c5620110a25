package broker

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// withAttributes returns b with its attributes replaced and its CRC
// recomputed.
func withAttributes(b []byte, attrs uint16) []byte {
	b = append([]byte(nil), b...)
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// Batches a producer may not send but that are well formed get
// INVALID_RECORD, as from Kafka; damaged ones stay CORRUPT_MESSAGE.
func TestInvalidProducerBatches(t *testing.T) {
	b := startBroker(t, Options{})
	ctx := testCtx(t)
	c := newClient(t, b)
	if _, err := kadm.NewClient(c).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	damagedControl := withAttributes(rawBatch("x"), 0x20)
	damagedControl[len(damagedControl)-1] ^= 0xff // CRC no longer matches
	cases := []struct {
		name  string
		batch []byte
		want  *kerr.Error // nil: accepted
	}{
		{"plain", rawBatch("a"), nil},
		{"control batch", withAttributes(rawBatch("x"), 0x20), kerr.InvalidRecord},
		{"producer id without epoch or sequence", rawProducerBatch(7, -1, -1, "x"), kerr.InvalidRecord},
		{"producer id without sequence", rawProducerBatch(7, 0, -1, "x"), kerr.InvalidRecord},
		{"producer id without epoch", rawProducerBatch(7, -1, 0, "x"), kerr.InvalidRecord},
		{"control batch with a bad CRC", damagedControl, kerr.CorruptMessage},
		{"plain batch with a bad CRC", func() []byte { x := rawBatch("x"); x[len(x)-1] ^= 0xff; return x }(), kerr.CorruptMessage},
		// A refused batch after a good one refuses the whole payload.
		{"control after a plain batch", append(rawBatch("a"), withAttributes(rawBatch("x"), 0x20)...), kerr.InvalidRecord},
	}
	var got, want []string
	for _, tc := range cases {
		w := "NONE"
		if tc.want != nil {
			w = tc.want.Message
		}
		want = append(want, tc.name+": "+w)
		g := "NONE"
		if code := produceRaw(t, c, "t", tc.batch); code != 0 {
			g = kerr.ErrorForCode(code).(*kerr.Error).Message
		}
		got = append(got, tc.name+": "+g)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("produce answers (-want +got):\n%s", diff)
	}
}

// BenchmarkProducePrecheck measures what a per-batch header check (Next,
// ParseHeader: what AppendNoWait reads on a topic with a timestamp bound)
// costs, against the validation the log does anyway on the same batch
// (ValidateProduced, a CRC pass).
func BenchmarkProducePrecheck(b *testing.B) {
	vals := make([]string, 100)
	for i := range vals {
		vals[i] = string(make([]byte, 100))
	}
	payload := rawProducerBatch(1, 0, 0, vals...)
	b.Run("precheck", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			one, _, err := batch.Next(payload)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := batch.ParseHeader(one); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate-produced", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := batch.ValidateProduced(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
