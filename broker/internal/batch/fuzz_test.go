package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzBound is the decompression bound the fuzz targets use.
const fuzzBound = 1 << 16

// seedBatches returns valid batches of every codec for the seed corpora.
func seedBatches(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, codec := range allCodecs {
		b, err := Build(sampleHeader(0), sampleRecords()[:4], codec)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzParseHeader: ParseHeader never panics, and whatever it accepts
// re-encodes to the same 61 bytes and satisfies the bounds it promises.
func FuzzParseHeader(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
		f.Add(b[:HeaderSize])
	}
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !IsCorrupt(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if h.Magic != Magic || h.Length < MinLength || h.Length > MaxLength || h.Size() < HeaderSize {
			t.Fatalf("accepted header out of bounds: %+v", h)
		}
		var re [HeaderSize]byte
		putHeader(re[:], h)
		if !bytes.Equal(re[:], b[:HeaderSize]) {
			t.Fatalf("header does not re-encode:\n% x\n% x", re, b[:HeaderSize])
		}
	})
}

// FuzzValidate: Validate never panics, errors are typed, and an accepted
// batch has the size, CRC and counts it claims; Next agrees on where it
// ends; patching the offset and epoch keeps it valid.
//
// With fixCRC the target first writes the right CRC into the input, so that
// the fuzzer also explores the checks behind the CRC.
func FuzzValidate(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		if fixCRC && len(b) >= HeaderSize {
			b = append([]byte(nil), b...)
			SetCRC(b)
		}
		h, err := Validate(b)
		if err != nil {
			if !IsCorrupt(err) {
				t.Fatalf("untyped error %v", err)
			}
			if _, perr := ValidateProduced(b); perr == nil {
				t.Fatal("ValidateProduced accepted what Validate refused")
			}
			return
		}
		if h.Size() != len(b) || Checksum(b) != h.CRC || h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 || !h.Codec().Valid() {
			t.Fatalf("accepted batch breaks invariants: %+v (len %d)", h, len(b))
		}
		one, rest, err := Next(b)
		if err != nil || len(one) != len(b) || len(rest) != 0 {
			t.Fatalf("Next disagrees: %d, %d, %v", len(one), len(rest), err)
		}
		c := append([]byte(nil), b...)
		SetBaseOffset(c, 1<<50)
		SetPartitionLeaderEpoch(c, 12)
		if _, err := Validate(c); err != nil {
			t.Fatalf("patched batch refused: %v", err)
		}
		if _, err := ValidateProduced(b); err == nil && (h.NumRecords == 0 || int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 || h.Control() || (h.ProducerID >= 0 && h.BaseSequence < 0)) {
			t.Fatalf("ValidateProduced accepted %+v", h)
		}
	})
}

// FuzzRecords frames fuzzed record bytes behind a valid header and CRC, so
// that the record decoder and the decompressors see the input. Invariants:
// no panic; typed errors; the decompressed size stays within the bound;
// accepted records rebuild into a batch that decodes to the same records.
func FuzzRecords(f *testing.F) {
	for _, b := range seedBatches(f) {
		h, _ := ParseHeader(b)
		f.Add(uint8(h.Codec()), h.NumRecords, h.LastOffsetDelta, b[HeaderSize:])
	}
	raw := appendRecords(nil, sampleRecords())
	f.Add(uint8(CodecSnappy), int32(5), int32(300), xerial(raw, 64))
	f.Add(uint8(CodecNone), int32(1), int32(0), []byte{0x06, 0, 0, 0, 1, 'k', 1, 'v', 0})
	f.Fuzz(func(t *testing.T, codec uint8, n, lastDelta int32, payload []byte) {
		h := Header{
			Attributes:      int16(codec & attrCodecMask),
			LastOffsetDelta: lastDelta,
			NumRecords:      n,
			ProducerID:      -1,
			ProducerEpoch:   -1,
			BaseSequence:    -1,
			Magic:           Magic,
			Length:          int32(HeaderSize - 12 + len(payload)),
		}
		b := make([]byte, HeaderSize+len(payload))
		putHeader(b, h)
		copy(b[HeaderSize:], payload)
		SetCRC(b)
		recs, err := Records(b, fuzzBound)
		if err != nil {
			if !IsCorrupt(err) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		scanned := []Record{}
		if err := Scan(b, fuzzBound, func(r *Record) error {
			c := *r
			c.Headers = slices.Clone(r.Headers)
			scanned = append(scanned, c)
			return nil
		}); err != nil {
			t.Fatalf("Records accepted what Scan refused: %v", err)
		}
		if d := cmp.Diff(recs, scanned, exactBytes); d != "" {
			t.Fatalf("Scan differs from Records (-records +scan):\n%s", d)
		}
		if len(recs) != int(n) {
			t.Fatalf("%d records for a count of %d", len(recs), n)
		}
		size := 0
		for _, r := range recs {
			size += len(r.Key) + len(r.Value)
			for _, hd := range r.Headers {
				size += len(hd.Key) + len(hd.Value)
			}
		}
		if Codec(codec&attrCodecMask) != CodecNone && size > fuzzBound {
			t.Fatalf("decoded %d bytes past the bound %d", size, fuzzBound)
		}
		rebuilt, err := Build(Header{LastOffsetDelta: lastDelta, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs, CodecNone)
		if err != nil {
			t.Fatalf("accepted records do not rebuild: %v", err)
		}
		again, err := Records(rebuilt, fuzzBound)
		if err != nil {
			t.Fatalf("rebuilt batch refused: %v", err)
		}
		if d := cmp.Diff(recs, again, exactBytes); d != "" {
			t.Fatalf("rebuilt records differ (-first +again):\n%s", d)
		}
		// Weir writes minimal varints, so an uncompressed payload never
		// grows when rebuilt.
		if Codec(codec&attrCodecMask) == CodecNone && len(rebuilt)-HeaderSize > len(payload) {
			t.Fatalf("rebuilt payload %d bytes, input %d", len(rebuilt)-HeaderSize, len(payload))
		}
		if binary.BigEndian.Uint32(rebuilt[posNumRecords:]) != uint32(n) {
			t.Fatal("rebuilt count differs")
		}
	})
}
