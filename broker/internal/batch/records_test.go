package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// exactBytes compares byte slices as wholes (fast) while keeping nil and
// empty distinct, which matters for keys and values.
var exactBytes = cmp.Comparer(func(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
})

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// sampleRecords covers null and empty keys and values, headers with null
// values, negative and large timestamp deltas and gaps in offset deltas.
func sampleRecords() []Record {
	return []Record{
		{OffsetDelta: 0, TimestampDelta: 0, Key: []byte("order-1"), Value: []byte(`{"total":59.98}`)},
		{OffsetDelta: 1, TimestampDelta: -5, Key: nil, Value: []byte("no key")},
		{OffsetDelta: 2, TimestampDelta: 1 << 40, Key: []byte{}, Value: nil},
		{OffsetDelta: 7, TimestampDelta: 3, Key: []byte("h"), Value: []byte{}, Headers: []RecordHeader{
			{Key: "trace", Value: []byte("abc")},
			{Key: "", Value: nil},
			{Key: "empty", Value: []byte{}},
		}},
		{OffsetDelta: 300, TimestampDelta: 9, Key: bytes.Repeat([]byte("k"), 200), Value: bytes.Repeat([]byte("value "), 500)},
	}
}

func TestRoundTripEveryCodec(t *testing.T) {
	want := sampleRecords()
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			h := sampleHeader(0)
			h.Attributes = attrLogAppendTime // kept by Build; codec bits replaced
			b, err := Build(h, want, codec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Validate(b)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got.Codec() != codec || !got.LogAppendTime() || got.NumRecords != int32(len(want)) || got.LastOffsetDelta != 300 || got.Size() != len(b) {
				t.Fatalf("header %+v", got)
			}
			recs, err := Records(b, 1<<20)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			if d := cmp.Diff(want, recs, exactBytes); d != "" {
				t.Fatalf("records (-want +got):\n%s", d)
			}
			// Null and empty stay distinct.
			if recs[1].Key != nil || recs[2].Key == nil || recs[2].Value != nil || recs[3].Value == nil {
				t.Fatal("null/empty distinction lost")
			}
		})
	}
}

func TestBuildEmptyKeepsOffsetSpan(t *testing.T) {
	h := sampleHeader(0)
	h.LastOffsetDelta = 41
	b, err := Build(h, nil, CodecZstd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.NumRecords != 0 || got.LastOffsetDelta != 41 {
		t.Fatalf("got %+v", got)
	}
	recs, err := Records(b, 1<<10)
	if err != nil || len(recs) != 0 {
		t.Fatalf("Records = %v, %v", recs, err)
	}
}

func TestBuildRefusesBadDeltas(t *testing.T) {
	for _, recs := range [][]Record{
		{{OffsetDelta: 1}, {OffsetDelta: 1}},
		{{OffsetDelta: 2}, {OffsetDelta: 1}},
		{{OffsetDelta: -1}},
	} {
		if _, err := Build(sampleHeader(0), recs, CodecNone); err == nil {
			t.Errorf("Build(%v) succeeded", recs)
		}
	}
	if _, err := Build(sampleHeader(0), nil, Codec(5)); err == nil {
		t.Error("Build with codec 5 succeeded")
	}
}

// kmsgBatch encodes records with franz-go's kmsg types, independently of
// Build, and frames them with the given codec's compressed payload.
func kmsgBatch(t testing.TB, recs []kmsg.Record, codec Codec, firstTS int64) []byte {
	t.Helper()
	var raw []byte
	for i := range recs {
		r := &recs[i]
		r.Length = 0
		body := r.AppendTo(nil)
		// AppendTo writes Length first as given (0, one byte): fix it now
		// that the body size is known.
		r.Length = int32(len(body) - 1)
		raw = r.AppendTo(raw)
	}
	payload := raw
	if codec != CodecNone {
		var err error
		if payload, err = compress(nil, codec, raw); err != nil {
			t.Fatal(err)
		}
	}
	kb := kmsg.RecordBatch{
		FirstOffset:     0,
		Magic:           2,
		Attributes:      int16(codec),
		LastOffsetDelta: recs[len(recs)-1].OffsetDelta,
		FirstTimestamp:  firstTS,
		MaxTimestamp:    firstTS + 10,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(recs)),
		Records:         payload,
	}
	kb.Length = int32(HeaderSize - 12 + len(payload))
	b := kb.AppendTo(nil)
	SetCRC(b)
	return b
}

// TestKmsgCrossCheck decodes batches encoded by franz-go's kmsg, and checks
// that kmsg decodes what Build encodes.
func TestKmsgCrossCheck(t *testing.T) {
	in := []kmsg.Record{
		{OffsetDelta: 0, TimestampDelta64: 0, Key: []byte("a"), Value: []byte("one")},
		{OffsetDelta: 1, TimestampDelta64: 10, Key: nil, Value: []byte("two"), Headers: []kmsg.Header{{Key: "h1", Value: []byte("v1")}}},
		{OffsetDelta: 2, TimestampDelta64: -3, Key: []byte("c"), Value: nil},
	}
	want := []Record{
		{OffsetDelta: 0, TimestampDelta: 0, Key: []byte("a"), Value: []byte("one")},
		{OffsetDelta: 1, TimestampDelta: 10, Value: []byte("two"), Headers: []RecordHeader{{Key: "h1", Value: []byte("v1")}}},
		{OffsetDelta: 2, TimestampDelta: -3, Key: []byte("c")},
	}
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			b := kmsgBatch(t, in, codec, 1_700_000_000_000)
			h, err := ValidateProduced(b)
			if err != nil {
				t.Fatalf("ValidateProduced: %v", err)
			}
			if h.FirstTimestamp != 1_700_000_000_000 || h.ProducerID != -1 || h.NumRecords != 3 {
				t.Fatalf("header %+v", h)
			}
			got, err := Records(b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got, exactBytes); d != "" {
				t.Fatalf("records (-want +got):\n%s", d)
			}
		})
	}

	// The other direction: kmsg reads what Build writes.
	b, err := Build(sampleHeader(0), want, CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if int(kb.Length) != len(b)-12 || kb.NumRecords != 3 || uint32(kb.CRC) != Checksum(b) {
		t.Fatalf("kmsg header %+v", kb)
	}
	rest := kb.Records
	for i, w := range want {
		var kr kmsg.Record
		if err := kr.ReadFrom(rest); err != nil {
			t.Fatalf("kmsg record %d: %v", i, err)
		}
		n := len(kr.AppendTo(nil))
		rest = rest[n:]
		var hs []RecordHeader
		for _, kh := range kr.Headers {
			hs = append(hs, RecordHeader{Key: kh.Key, Value: kh.Value})
		}
		got := Record{OffsetDelta: kr.OffsetDelta, TimestampDelta: kr.TimestampDelta64, Key: kr.Key, Value: kr.Value, Headers: hs}
		if d := cmp.Diff(w, got, exactBytes); d != "" {
			t.Fatalf("kmsg record %d (-want +got):\n%s", i, d)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left after kmsg decode", len(rest))
	}
}

// xerial frames data as snappy-java's stream format, chunk bytes at a time.
func xerial(data []byte, chunk int) []byte {
	out := append([]byte(nil), xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(data) > 0 {
		n := min(chunk, len(data))
		blk := s2.EncodeSnappy(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
		out = append(out, blk...)
		data = data[n:]
	}
	return out
}

// snappyBatch frames a payload as a snappy batch of the given records.
func snappyBatch(t testing.TB, recs []Record, payload []byte) []byte {
	t.Helper()
	h := sampleHeader(int32(len(recs)))
	h.LastOffsetDelta = recs[len(recs)-1].OffsetDelta
	h.Attributes = int16(CodecSnappy)
	return rawBatch(t, h, payload)
}

func TestSnappyXerial(t *testing.T) {
	want := sampleRecords()
	raw := appendRecords(nil, want)
	for _, chunk := range []int{1 << 20, 100, 7} {
		b := snappyBatch(t, want, xerial(raw, chunk))
		got, err := Records(b, len(raw))
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if d := cmp.Diff(want, got, exactBytes); d != "" {
			t.Fatalf("chunk %d (-want +got):\n%s", chunk, d)
		}
		if _, err := Records(b, len(raw)-1); !IsTooLarge(err) {
			t.Fatalf("chunk %d with bound one short: %v, want ErrTooLarge", chunk, err)
		}
	}
	framed := xerial(raw, 100)
	for name, payload := range map[string][]byte{
		"header cut":       framed[:12],
		"chunk length cut": framed[:xerialHeaderSize+2],
		"chunk past end":   framed[:len(framed)-1],
		"bad block":        append(append([]byte(nil), framed[:xerialHeaderSize]...), 0, 0, 0, 2, 0xff, 0xff),
	} {
		_, err := Records(snappyBatch(t, want, payload), 1<<20)
		if !IsCorrupt(err) || IsTruncated(err) {
			t.Errorf("%s: %v, want corrupt", name, err)
		}
	}
}

// TestDecompressionBound: every codec refuses output past the bound with
// ErrTooLarge, and accepts exactly the bound.
func TestDecompressionBound(t *testing.T) {
	recs := []Record{{OffsetDelta: 0, Value: bytes.Repeat([]byte{'z'}, 100_000)}}
	size := len(appendRecords(nil, recs))
	for _, codec := range allCodecs[1:] {
		t.Run(codec.String(), func(t *testing.T) {
			b, err := Build(sampleHeader(1), recs, codec)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > size/10 {
				t.Fatalf("%d bytes compress to %d: test wants a high ratio", size, len(b))
			}
			if _, err := Records(b, size); err != nil {
				t.Fatalf("at the bound: %v", err)
			}
			_, err = Records(b, size-1)
			if !errors.Is(err, ErrTooLarge) || IsCorrupt(err) {
				t.Fatalf("past the bound: %v, want ErrTooLarge", err)
			}
			if _, err := Records(b, 0); !IsTooLarge(err) {
				t.Fatalf("zero bound: %v", err)
			}
		})
	}
}

// recordBatch frames hand-written record bytes as an uncompressed batch
// claiming n records over lastDelta+1 offsets.
func recordBatch(t testing.TB, n, lastDelta int32, payload []byte) []byte {
	t.Helper()
	h := sampleHeader(n)
	h.LastOffsetDelta = lastDelta
	return rawBatch(t, h, payload)
}

// TestBadRecords: every malformed record encoding is a CorruptError, found
// behind a valid header and CRC.
func TestBadRecords(t *testing.T) {
	v := func(vals ...int64) []byte {
		var b []byte
		for _, x := range vals {
			b = binary.AppendVarint(b, x)
		}
		return b
	}
	// rec encodes one record body and prefixes it with its true length.
	rec := func(body []byte) []byte { return append(v(int64(len(body))), body...) }
	// good is one record: attributes, timestamp delta 0, offset delta 0,
	// key "k", value "v", no headers.
	good := rec(append(append(append([]byte{0}, v(0, 0, 1)...), 'k'), append(v(1), 'v', 0)...))
	if _, err := Records(recordBatch(t, 1, 0, good), 1<<10); err != nil {
		t.Fatalf("good record refused: %v", err)
	}
	pad := bytes.Repeat([]byte{0}, 20) // keeps the header's size plausibility check quiet
	tests := []struct {
		name      string
		n, last   int32
		payload   []byte
		wantPosAt int // expected error position within the payload
	}{
		{name: "unterminated varint", n: 1, last: 0, payload: append([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, 0x80), wantPosAt: 0},
		{name: "varint over 64 bits", n: 1, last: 0, payload: append(bytes.Repeat([]byte{0xff}, 10), 0x7f, 0, 0, 0, 0, 0, 0), wantPosAt: 0},
		{name: "length varint over 32 bits", n: 1, last: 0, payload: append(v(1<<33), pad...), wantPosAt: 0},
		{name: "negative record length", n: 1, last: 0, payload: append(v(-2), pad...), wantPosAt: 0},
		{name: "record length past the end", n: 1, last: 0, payload: append(v(100), pad...), wantPosAt: 0},
		{name: "key length past record", n: 1, last: 0, payload: append(rec(append([]byte{0}, v(0, 0, 50, 0, 0)...)), pad[:2]...), wantPosAt: 4},
		{name: "key length -2", n: 1, last: 0, payload: rec(append([]byte{0}, v(0, 0, -2, 0, 0, 0, 0)...)), wantPosAt: 4},
		{name: "header count past record", n: 1, last: 0, payload: rec(append([]byte{0}, v(0, 0, -1, -1, 1000, 0, 0, 0)...)), wantPosAt: 6},
		{name: "negative header count", n: 1, last: 0, payload: rec(append([]byte{0}, v(0, 0, -1, -1, -1, 0)...)), wantPosAt: 6},
		{name: "null header key", n: 1, last: 0, payload: rec(append([]byte{0}, v(0, 0, -1, -1, 1, -1, -1)...)), wantPosAt: 7},
		{name: "bytes past fields", n: 1, last: 0, payload: rec(append([]byte{0}, v(0, 0, -1, -1, 0, 0, 0, 0)...)), wantPosAt: 7},
		{name: "bytes after last record", n: 1, last: 0, payload: append(append([]byte(nil), good...), pad[:3]...), wantPosAt: len(good)},
		{name: "count claims more records", n: 2, last: 1, payload: append(append([]byte(nil), good...), pad[:7]...), wantPosAt: len(good) + 1},
		{name: "offset delta past last", n: 1, last: 0, payload: rec(append([]byte{0}, v(0, 1, -1, -1, 0)...)), wantPosAt: 0},
		{name: "offset deltas not increasing", n: 2, last: 1, payload: append(append([]byte(nil), good...), good...), wantPosAt: len(good)},
		{name: "record cut in the middle", n: 1, last: 0, payload: append(rec(append([]byte{0}, v(0)...)), pad[:4]...), wantPosAt: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := recordBatch(t, tt.n, tt.last, tt.payload)
			if _, err := Validate(b); err != nil {
				t.Fatalf("header should be valid, got %v", err)
			}
			_, err := Records(b, 1<<10)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want *CorruptError", err)
			}
			if ce.Offset != HeaderSize+tt.wantPosAt {
				t.Fatalf("%v at byte %d, want %d", err, ce.Offset, HeaderSize+tt.wantPosAt)
			}
		})
	}
}

// TestBadCompressedPayload: garbage in a compressed batch is corrupt, for
// every codec.
func TestBadCompressedPayload(t *testing.T) {
	for _, codec := range allCodecs[1:] {
		for name, payload := range map[string][]byte{
			"garbage":   []byte("definitely not compressed data at all"),
			"empty":     nil,
			"truncated": nil, // filled below
		} {
			if name == "truncated" {
				full, err := compress(nil, codec, appendRecords(nil, sampleRecords()))
				if err != nil {
					t.Fatal(err)
				}
				payload = full[:len(full)/2]
			}
			t.Run(fmt.Sprintf("%s/%s", codec, name), func(t *testing.T) {
				h := sampleHeader(5)
				h.LastOffsetDelta = 300
				h.Attributes = int16(codec)
				_, err := Records(rawBatch(t, h, payload), 1<<20)
				if !IsCorrupt(err) {
					t.Fatalf("got %v, want corrupt", err)
				}
			})
		}
	}
}

// TestRandomRoundTrip builds random batches with every codec and reads them
// back (model: the input records).
func TestRandomRoundTrip(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	randBytes := func() []byte {
		switch rng.IntN(5) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.IntN(4)) // compressible
		}
		return b
	}
	for iter := range 60 {
		n := rng.IntN(20)
		recs := make([]Record, n)
		delta := int32(0)
		for i := range recs {
			delta += int32(rng.IntN(3))
			recs[i] = Record{OffsetDelta: delta, TimestampDelta: rng.Int64N(1<<42) - 1<<41, Key: randBytes(), Value: randBytes()}
			delta++
			for range rng.IntN(3) {
				recs[i].Headers = append(recs[i].Headers, RecordHeader{Key: string(randBytes()), Value: randBytes()})
			}
		}
		codec := allCodecs[rng.IntN(len(allCodecs))]
		h := Header{LastOffsetDelta: delta + int32(rng.IntN(2)), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		b, err := Build(h, recs, codec)
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		got, err := Records(b, 1<<20)
		if err != nil {
			t.Fatalf("iter %d (%s): %v", iter, codec, err)
		}
		if n == 0 {
			recs = []Record{}
		}
		// Headers: Build of nil vs empty header slices both decode to nil.
		for i := range recs {
			if len(recs[i].Headers) == 0 {
				recs[i].Headers = nil
			}
		}
		if d := cmp.Diff(recs, got, exactBytes); d != "" {
			t.Fatalf("iter %d (%s) (-want +got):\n%s", iter, codec, d)
		}
		if d := cmp.Diff(recs, scanAll(t, b), exactBytes); d != "" {
			t.Fatalf("iter %d (%s) Scan (-want +got):\n%s", iter, codec, d)
		}
	}
}

// TestCodecsLeaveNoGoroutines: the pooled decoders and the shared zstd
// encoder must not start goroutines that nobody stops.
func TestCodecsLeaveNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, codec := range allCodecs {
		b, err := Build(sampleHeader(0), sampleRecords(), codec)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := Records(b, 1<<20); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
	}
}

// scanAll collects Scan's records, copying each since Scan reuses them.
func scanAll(t testing.TB, b []byte) []Record {
	t.Helper()
	out := []Record{}
	err := Scan(b, 1<<20, func(r *Record) error {
		c := *r
		c.Headers = slices.Clone(r.Headers)
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func TestScan(t *testing.T) {
	want := sampleRecords()
	for _, codec := range allCodecs {
		b, err := Build(sampleHeader(0), want, codec)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, scanAll(t, b), exactBytes); d != "" {
			t.Fatalf("%s (-want +got):\n%s", codec, d)
		}
		// An error from fn stops the scan and comes back unchanged.
		stop := errors.New("stop")
		seen := 0
		err = Scan(b, 1<<20, func(*Record) error {
			seen++
			if seen == 2 {
				return stop
			}
			return nil
		})
		if err != stop || seen != 2 {
			t.Fatalf("%s: Scan returned %v after %d records", codec, err, seen)
		}
		if err := Scan(b, 10, func(*Record) error { return nil }); codec != CodecNone && !IsTooLarge(err) {
			t.Fatalf("%s: bound ignored: %v", codec, err)
		}
	}
	// A corrupt batch is refused before fn sees anything.
	b := validBatch(t, 3)
	b[len(b)-1] ^= 1
	if err := Scan(b, 1<<20, func(*Record) error { t.Fatal("fn called"); return nil }); !IsCorrupt(err) {
		t.Fatalf("Scan(corrupt) = %v", err)
	}
}

// TestNoLimit: math.MaxInt as the bound means "no limit", for every codec.
func TestNoLimit(t *testing.T) {
	for _, codec := range allCodecs {
		b, err := Build(sampleHeader(0), sampleRecords(), codec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Records(b, math.MaxInt); err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
	}
	if _, err := Records(validBatch(t, 1), -5); err != nil {
		t.Fatalf("uncompressed ignores the bound: %v", err)
	}
}
