package batch

import (
	"hash/crc32"
	"testing"
	"time"
)

// batch16K returns an uncompressed batch of about 16 KiB holding records of
// recordSize value bytes.
func batch16K(b *testing.B, codec Codec, recordSize int) []byte {
	b.Helper()
	var recs []Record
	value := make([]byte, recordSize)
	for i := range value {
		value[i] = byte(i * 7)
	}
	for size := 0; size < 16<<10-HeaderSize-recordSize-16; size += recordSize + 16 {
		recs = append(recs, Record{OffsetDelta: int32(len(recs)), TimestampDelta: int64(len(recs)), Key: []byte("key-0001"), Value: value})
	}
	out, err := Build(sampleHeader(0), recs, codec)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkValidate16K is the produce path's per-batch check; the peer is a
// bare CRC32C over the same bytes, the floor any validation must pay.
func BenchmarkValidate16K(b *testing.B) {
	buf := batch16K(b, CodecNone, 100)
	b.Run("Validate", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, err := Validate(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("crc32c", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		tab := crc32.MakeTable(crc32.Castagnoli)
		var sink uint32
		for b.Loop() {
			sink += crc32.Checksum(buf[posAttributes:], tab)
		}
		_ = sink
	})
}

// BenchmarkValidateVsCRC interleaves Validate and a bare CRC32C over the
// same 16 KiB batch in alternating chunks and reports the ratio of their
// fastest chunks: on a machine too busy for separate runs to compare,
// preemption inflates some chunks, but the fastest chunk of each is close to
// its undisturbed cost.
func BenchmarkValidateVsCRC(b *testing.B) {
	buf := batch16K(b, CodecNone, 100)
	tab := crc32.MakeTable(crc32.Castagnoli)
	const chunk = 32
	minV, minC := time.Duration(1<<62), time.Duration(1<<62)
	var sink uint32
	b.ReportAllocs()
	b.SetBytes(int64(2 * chunk * len(buf)))
	for b.Loop() {
		start := time.Now()
		for range chunk {
			if _, err := Validate(buf); err != nil {
				b.Fatal(err)
			}
		}
		mid := time.Now()
		for range chunk {
			sink += crc32.Checksum(buf[posAttributes:], tab)
		}
		minV = min(minV, mid.Sub(start))
		minC = min(minC, time.Since(mid))
	}
	_ = sink
	b.ReportMetric(float64(minV)/float64(minC), "validate/crc")
	b.ReportMetric(float64(minV)/chunk, "validate-ns")
	b.ReportMetric(float64(minC)/chunk, "crc-ns")
}

// BenchmarkRecords16K decodes a 16 KiB batch of 100-byte records, per codec.
func BenchmarkRecords16K(b *testing.B) {
	for _, codec := range allCodecs {
		buf := batch16K(b, codec, 100)
		raw := batch16K(b, CodecNone, 100)
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := Records(buf, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScan16K is Records without the slice, on the same batches.
func BenchmarkScan16K(b *testing.B) {
	for _, codec := range allCodecs {
		buf := batch16K(b, codec, 100)
		raw := batch16K(b, CodecNone, 100)
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			keys := 0
			for b.Loop() {
				if err := Scan(buf, 1<<20, func(r *Record) error { keys += len(r.Key); return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuild16K encodes the same records per codec.
func BenchmarkBuild16K(b *testing.B) {
	raw := batch16K(b, CodecNone, 100)
	recs, err := Records(raw, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := Build(sampleHeader(0), recs, codec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScanVsRecords interleaves Scan and Records over the same
// uncompressed 16 KiB batch and reports the ratio of their fastest chunks
// (see BenchmarkValidateVsCRC).
func BenchmarkScanVsRecords(b *testing.B) {
	buf := batch16K(b, CodecNone, 100)
	const chunk = 8
	minS, minR := time.Duration(1<<62), time.Duration(1<<62)
	keys := 0
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		for range chunk {
			if err := Scan(buf, 1<<20, func(r *Record) error { keys += len(r.Key); return nil }); err != nil {
				b.Fatal(err)
			}
		}
		mid := time.Now()
		for range chunk {
			recs, err := Records(buf, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			keys += len(recs)
		}
		minS = min(minS, mid.Sub(start))
		minR = min(minR, time.Since(mid))
	}
	b.ReportMetric(float64(minS)/float64(minR), "scan/records")
	b.ReportMetric(float64(minS)/chunk, "scan-ns")
	b.ReportMetric(float64(minR)/chunk, "records-ns")
}
