package metadata

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The byte layout, shared by log entries and snapshots:
//
//	entry    = magic(1) count(uvarint) record{count}
//	record   = type(1) version(1) length(uvarint) payload(length)
//
// magic is entryMagic for a log entry (the []byte the quorum replicates) and
// snapshotMagic for a snapshot. A payload is the record's fields in order:
// signed integers as zigzag varints, unsigned ones as uvarints, strings and
// lists as a uvarint length then their bytes or elements, booleans and
// presence flags as one byte 0 or 1, UUIDs as their 16 bytes. Every varint
// must be in its shortest form and every flag 0 or 1, so that a decoded
// entry encodes back to exactly the same bytes. There is no checksum: the
// quorum's storage checksums what it stores.
const (
	entryMagic    byte = 0xe0
	snapshotMagic byte = 0x5e
)

// minRecordSize is the smallest encoded record: type, version, length.
const minRecordSize = 3

// maxRecordsPerEntry bounds the records of one entry (each takes at least 3
// bytes, so a length-checked count would already bound memory; this keeps a
// corrupt count from pre-allocating far more than the entry could hold).
const maxRecordsPerEntry = 1 << 22

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendNodes(b []byte, ns []NodeID) []byte {
	b = appendUvarint(b, uint64(len(ns)))
	for _, n := range ns {
		b = appendVarint(b, int64(n))
	}
	return b
}

// decoder reads one payload. The first problem sticks in err; later reads
// return zero values, so record decoders read every field and check err
// once.
type decoder struct {
	b   []byte
	off int
	err error
	// what names the field being read, for the error message.
	what string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = malformedf("%s at byte %d: %s", d.what, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	d.what = what
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("truncated or overflowing varint")
		return 0
	}
	if n != uvarintLen(v) {
		d.fail("varint not in its shortest form")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(what string) int64 {
	u := d.uvarint(what)
	// zigzag, as binary.Varint
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) int32(what string) int32 {
	v := d.varint(what)
	if d.err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
		d.fail("%d overflows int32", v)
		return 0
	}
	return int32(v)
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	d.what = what
	if d.remaining() < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) bool(what string) bool {
	c := d.byte(what)
	if c > 1 {
		d.fail("boolean byte %d is neither 0 nor 1", c)
		return false
	}
	return c == 1
}

// count reads a list length. Every element takes at least minSize bytes,
// so a count beyond what remains is refused before anything is allocated,
// and what is allocated stays proportional to the input.
func (d *decoder) count(what string, minSize int) int {
	n := d.uvarint(what)
	if d.err == nil && n > uint64(d.remaining()/minSize) {
		d.fail("count %d exceeds what the %d bytes left can hold", n, d.remaining())
		return 0
	}
	return int(n)
}

func (d *decoder) string(what string) string {
	n := d.count(what, 1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[d.off : d.off+n])
	d.off += n
	return s
}

func (d *decoder) uuid(what string) [16]byte {
	var u [16]byte
	if d.err != nil {
		return u
	}
	d.what = what
	if d.remaining() < 16 {
		d.fail("truncated")
		return u
	}
	copy(u[:], d.b[d.off:])
	d.off += 16
	return u
}

// nodes reads a list of node ids; a zero-length list decodes as nil.
func (d *decoder) nodes(what string) []NodeID {
	n := d.count(what, 1)
	if d.err != nil || n == 0 {
		return nil
	}
	ns := make([]NodeID, n)
	for i := range ns {
		ns[i] = NodeID(d.int32(what))
	}
	if d.err != nil {
		return nil
	}
	return ns
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// EncodeEntry encodes records as one log entry: the []byte to propose to the
// quorum. The records are applied together or not at all.
func EncodeEntry(records []Record) []byte {
	return appendRecords(nil, entryMagic, records)
}

// DecodeEntry decodes one log entry. Errors wrap ErrMalformed or
// ErrUnknownRecord.
func DecodeEntry(data []byte) ([]Record, error) {
	return decodeRecords(data, entryMagic, "entry")
}

func appendRecords(b []byte, magic byte, records []Record) []byte {
	b = append(b, magic)
	b = appendUvarint(b, uint64(len(records)))
	var payload []byte
	for _, r := range records {
		payload = r.appendPayload(payload[:0])
		b = append(b, byte(r.Type()), r.version())
		b = appendUvarint(b, uint64(len(payload)))
		b = append(b, payload...)
	}
	return b
}

func decodeRecords(data []byte, magic byte, kind string) ([]Record, error) {
	d := &decoder{b: data}
	m := d.byte("magic")
	if d.err == nil && m != magic {
		return nil, fmt.Errorf("metadata: %s: %w", kind, malformedf("magic byte %#x, want %#x", m, magic))
	}
	n := d.count("record count", minRecordSize)
	if d.err == nil && n > maxRecordsPerEntry {
		d.fail("%d records exceed the limit of %d", n, maxRecordsPerEntry)
	}
	if d.err != nil {
		return nil, fmt.Errorf("metadata: %s: %w", kind, d.err)
	}
	records := make([]Record, 0, n)
	for i := 0; i < n; i++ {
		start := d.off
		typ := RecordType(d.byte("record type"))
		ver := d.byte("record version")
		size := d.count("record length", 1)
		if d.err != nil {
			return nil, fmt.Errorf("metadata: %s: record %d: %w", kind, i, d.err)
		}
		payload := d.b[d.off : d.off+size]
		d.off += size
		r, err := decodeRecord(typ, ver, payload)
		if err != nil {
			return nil, fmt.Errorf("metadata: %s: record %d (at byte %d): %w", kind, i, start, err)
		}
		records = append(records, r)
	}
	if d.remaining() != 0 {
		return nil, fmt.Errorf("metadata: %s: %w", kind, malformedf("%d trailing bytes after %d records", d.remaining(), n))
	}
	return records, nil
}
