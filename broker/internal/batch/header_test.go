package batch

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rawBatch builds a batch by hand, independently of Build: header fields from
// h, payload as the record bytes, Length and CRC computed here.
func rawBatch(t testing.TB, h Header, payload []byte) []byte {
	t.Helper()
	b := make([]byte, HeaderSize+len(payload))
	copy(b[HeaderSize:], payload)
	h.Magic = Magic
	h.Length = int32(len(b) - 12)
	putHeader(b, h)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// sampleHeader is an idempotent producer's header for n records.
func sampleHeader(n int32) Header {
	return Header{
		BaseOffset:      0,
		LastOffsetDelta: n - 1,
		FirstTimestamp:  1_700_000_000_000,
		MaxTimestamp:    1_700_000_000_009,
		ProducerID:      42,
		ProducerEpoch:   3,
		BaseSequence:    7,
		NumRecords:      n,
	}
}

// validBatch returns an uncompressed batch of n small records.
func validBatch(t testing.TB, n int) []byte {
	t.Helper()
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: []byte("k"), Value: []byte("value")}
	}
	b, err := Build(sampleHeader(int32(n)), recs, CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseHeaderFields(t *testing.T) {
	want := Header{
		BaseOffset:           1234567890123,
		PartitionLeaderEpoch: 9,
		Attributes:           int16(CodecZstd) | attrLogAppendTime | attrTransactional,
		LastOffsetDelta:      2,
		FirstTimestamp:       -1,
		MaxTimestamp:         1_700_000_000_123,
		ProducerID:           77,
		ProducerEpoch:        5,
		BaseSequence:         100,
		NumRecords:           3,
	}
	b := rawBatch(t, want, make([]byte, 30))
	want.Magic = Magic
	want.Length = int32(len(b) - 12)
	want.CRC = binary.BigEndian.Uint32(b[17:])
	got, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("header (-want +got):\n%s", d)
	}
	if got.Size() != len(b) || got.Codec() != CodecZstd || !got.LogAppendTime() || !got.Transactional() || got.Control() {
		t.Fatalf("accessors wrong: size %d codec %v lat %v txn %v ctl %v", got.Size(), got.Codec(), got.LogAppendTime(), got.Transactional(), got.Control())
	}
	if got.LastOffset() != want.BaseOffset+2 {
		t.Fatalf("LastOffset %d", got.LastOffset())
	}
}

// TestBadInput covers every class of bad input with the error it must give.
func TestBadInput(t *testing.T) {
	good := validBatch(t, 3)
	if _, err := ValidateProduced(good); err != nil {
		t.Fatalf("good batch refused: %v", err)
	}
	mut := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	// recrc fixes the CRC after a change inside the CRC'd range, so that the
	// check under test is the one that fires.
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[17:], Checksum(b))
		return b
	}
	put32 := func(b []byte, pos int, v int32) { binary.BigEndian.PutUint32(b[pos:], uint32(v)) }
	tests := []struct {
		name      string
		in        []byte
		produced  bool // check with ValidateProduced rather than Validate
		pos       int  // expected CorruptError.Offset
		truncated bool
	}{
		{name: "empty", in: nil, pos: 0, truncated: true},
		{name: "short header", in: good[:HeaderSize-1], pos: HeaderSize - 1, truncated: true},
		{name: "truncated batch", in: good[:len(good)-1], pos: posLength, truncated: true},
		{name: "length past the buffer", in: mut(func(b []byte) []byte { put32(b, posLength, int32(len(b))); return b }), pos: posLength, truncated: true},
		{name: "trailing bytes", in: append(append([]byte(nil), good...), 0), pos: len(good)},
		{name: "negative length", in: mut(func(b []byte) []byte { put32(b, posLength, -5); return b }), pos: posLength},
		{name: "length below header", in: mut(func(b []byte) []byte { put32(b, posLength, MinLength-1); return b }), pos: posLength},
		{name: "absurd length", in: mut(func(b []byte) []byte { put32(b, posLength, MaxLength+1); return b }), pos: posLength},
		{name: "magic 1", in: mut(func(b []byte) []byte { b[posMagic] = 1; return b }), pos: posMagic},
		{name: "wrong crc", in: mut(func(b []byte) []byte { b[posCRC] ^= 0xff; return b }), pos: posCRC},
		{name: "flipped payload bit", in: mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), pos: posCRC},
		{name: "unknown codec", in: mut(func(b []byte) []byte { b[posAttributes+1] |= 7; return recrc(b) }), pos: posAttributes},
		{name: "negative last offset delta", in: mut(func(b []byte) []byte { put32(b, posLastOffsetDelta, -1); return recrc(b) }), pos: posLastOffsetDelta},
		{name: "negative record count", in: mut(func(b []byte) []byte { put32(b, posNumRecords, -1); return recrc(b) }), pos: posNumRecords},
		{name: "count above offset span", in: mut(func(b []byte) []byte { put32(b, posNumRecords, 4); return recrc(b) }), pos: posNumRecords},
		{name: "count cannot fit in bytes", in: mut(func(b []byte) []byte {
			put32(b, posLastOffsetDelta, 1<<30)
			put32(b, posNumRecords, 1<<30)
			return recrc(b)
		}), pos: posNumRecords},
		{name: "producer id below -1", in: mut(func(b []byte) []byte { binary.BigEndian.PutUint64(b[posProducerID:], ^uint64(1)); return recrc(b) }), pos: posProducerID},
		{name: "producer epoch below -1", in: mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[posProducerEpoch:], 0xfffe); return recrc(b) }), pos: posProducerEpoch},
		{name: "base sequence below -1", in: mut(func(b []byte) []byte { put32(b, posBaseSequence, -2); return recrc(b) }), pos: posBaseSequence},
		{name: "transactional without producer", in: mut(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[posProducerID:], ^uint64(0))
			b[posAttributes+1] |= attrTransactional
			return recrc(b)
		}), pos: posProducerID},
		{name: "produced: count below span", produced: true, in: mut(func(b []byte) []byte { put32(b, posLastOffsetDelta, 5); return recrc(b) }), pos: posNumRecords},
		{name: "produced: control batch", produced: true, in: mut(func(b []byte) []byte { b[posAttributes+1] |= attrControl; return recrc(b) }), pos: posAttributes},
		{name: "produced: producer id without sequence", produced: true, in: mut(func(b []byte) []byte { put32(b, posBaseSequence, -1); return recrc(b) }), pos: posBaseSequence},
		{name: "produced: producer id without epoch", produced: true, in: mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[posProducerEpoch:], 0xffff); return recrc(b) }), pos: posBaseSequence},
		{name: "produced: no records", produced: true, in: rawBatch(t, Header{LastOffsetDelta: 0, NumRecords: 0, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, nil), pos: posNumRecords},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			validate := Validate
			if tt.produced {
				validate = ValidateProduced
			}
			_, err := validate(tt.in)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CorruptError", err)
			}
			if !IsCorrupt(err) || IsTruncated(err) != tt.truncated || IsTooLarge(err) {
				t.Fatalf("classification of %v: corrupt %v truncated %v (want %v)", err, IsCorrupt(err), IsTruncated(err), tt.truncated)
			}
			if ce.Offset != tt.pos {
				t.Fatalf("error %v at byte %d, want %d", err, ce.Offset, tt.pos)
			}
		})
	}
}

// TestCompactedCountAccepted: a stored batch may hold fewer records than its
// offset span, and even none; Validate accepts that, ValidateProduced not.
func TestCompactedCountAccepted(t *testing.T) {
	h := sampleHeader(1)
	h.LastOffsetDelta = 9
	b, err := Build(h, []Record{{OffsetDelta: 4, Value: []byte("v")}}, CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Validate(b)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got.NumRecords != 1 || got.LastOffsetDelta != 4 {
		t.Fatalf("got count %d last delta %d", got.NumRecords, got.LastOffsetDelta)
	}
	empty := rawBatch(t, Header{LastOffsetDelta: 9, ProducerID: 1, ProducerEpoch: 0, BaseSequence: 0}, nil)
	if _, err := Validate(empty); err != nil {
		t.Fatalf("empty compacted batch refused: %v", err)
	}
	if _, err := ValidateProduced(empty); !IsCorrupt(err) {
		t.Fatalf("ValidateProduced(empty) = %v, want corrupt", err)
	}
}

func TestNext(t *testing.T) {
	a, b, c := validBatch(t, 1), validBatch(t, 2), validBatch(t, 5)
	buf := append(append(append([]byte(nil), a...), b...), c...)
	var got [][]byte
	rest := buf
	for len(rest) > 0 {
		var one []byte
		var err error
		one, rest, err = Next(rest)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, one)
	}
	if d := cmp.Diff([][]byte{a, b, c}, got); d != "" {
		t.Fatalf("split (-want +got):\n%s", d)
	}
	// A truncated tail stops the split with a typed error and leaves rest
	// pointing at the partial batch.
	partial := buf[:len(a)+len(b)+HeaderSize+3]
	one, rest, _ := Next(partial)
	_, rest, _ = Next(rest)
	if len(one) != len(a) || len(rest) != HeaderSize+3 {
		t.Fatalf("unexpected split sizes %d, %d", len(one), len(rest))
	}
	one, rest2, err := Next(rest)
	if !IsTruncated(err) || one != nil || len(rest2) != len(rest) {
		t.Fatalf("Next(partial) = %d bytes, %d rest, %v; want truncated error", len(one), len(rest2), err)
	}
	if _, _, err := Next(rest[:10]); !IsTruncated(err) {
		t.Fatalf("Next(10 bytes) = %v, want truncated", err)
	}
	if one, rest, err := Next(nil); one != nil || rest != nil || err != nil {
		t.Fatalf("Next(nil) = %v, %v, %v", one, rest, err)
	}
	// The batch returned has its capacity clipped so appends cannot clobber
	// the next batch.
	one, _, _ = Next(buf)
	if cap(one) != len(a) {
		t.Fatalf("cap %d, want %d", cap(one), len(a))
	}
}

func TestPatchFields(t *testing.T) {
	b := validBatch(t, 3)
	before, _ := Validate(b)
	SetBaseOffset(b, 1<<40)
	SetPartitionLeaderEpoch(b, 17)
	h, err := Validate(b)
	if err != nil {
		t.Fatalf("patched batch invalid: %v", err)
	}
	want := before
	want.BaseOffset, want.PartitionLeaderEpoch = 1<<40, 17
	if d := cmp.Diff(want, h); d != "" {
		t.Fatalf("patched header (-want +got):\n%s", d)
	}

	SetMaxTimestampAndAppendTime(b, 1_800_000_000_000)
	h, err = Validate(b)
	if err != nil {
		t.Fatalf("append-time batch invalid: %v", err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != 1_800_000_000_000 || h.Codec() != before.Codec() {
		t.Fatalf("append time not set: %+v", h)
	}
}

func TestCodecString(t *testing.T) {
	got := []string{CodecNone.String(), CodecGzip.String(), CodecSnappy.String(), CodecLZ4.String(), CodecZstd.String(), Codec(6).String()}
	want := []string{"none", "gzip", "snappy", "lz4", "zstd", "codec(6)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
}
