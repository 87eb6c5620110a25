package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Record is one decoded record of a batch.
type Record struct {
	// OffsetDelta is the record's offset relative to the batch's BaseOffset.
	OffsetDelta int32
	// TimestampDelta is the record's timestamp relative to the batch's
	// FirstTimestamp, in milliseconds.
	TimestampDelta int64
	// Key is the record's key; nil is a null key, distinct from an empty one.
	Key []byte
	// Value is the record's value; nil is a null value (a tombstone).
	Value []byte
	// Headers are the record's headers, in order.
	Headers []RecordHeader
}

// RecordHeader is one header of a record.
type RecordHeader struct {
	// Key is the header's key (never null in Kafka's format).
	Key string
	// Value is the header's value; nil is a null value.
	Value []byte
}

// Records decodes every record of the batch b, which must be exactly one
// batch that passes Validate (Records checks that first). Compressed records
// are decompressed into a new buffer of at most maxDecompressed bytes; if
// they would exceed it the error wraps ErrTooLarge. For an uncompressed batch
// maxDecompressed bounds nothing: the records are already in memory.
//
// Every varint, length and count is checked against the bytes that remain;
// offset deltas must be strictly increasing and at most LastOffsetDelta, and
// the records must fill their bytes exactly. Any violation is a
// *CorruptError whose Offset is the byte position in b for an uncompressed
// batch, and in the decompressed record bytes for a compressed one.
//
// NB: Key, Value and header Value slices alias b (uncompressed) or the
// decompressed buffer; copy them to keep them past a change to b.
func Records(b []byte, maxDecompressed int) ([]Record, error) {
	h, data, start, err := recordBytes(b, maxDecompressed)
	if err != nil {
		return nil, err
	}
	n := int(h.NumRecords)
	if n > (len(data)-start)/minRecordSize {
		return nil, corrupt(start, "record count %d does not fit in %d record bytes", n, len(data)-start)
	}
	// Grow as records decode rather than trusting the count up front: a
	// lying count over a large decompressed payload fails before it costs
	// 88 bytes of Record per claimed record.
	recs := make([]Record, 0, min(n, 1024))
	err = walkRecords(h, data, start, func(int) *Record {
		recs = append(recs, Record{})
		return &recs[len(recs)-1]
	}, nil)
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// Scan is Records without the slice: it calls fn for each record in order,
// with the same checks, and stops at the first error from the batch or from
// fn (which it returns). The *Record passed to fn, and its Headers slice,
// are reused for the next record; for an uncompressed batch whose records
// have no headers Scan allocates once per call (the reused Record), not per
// record. A corrupt record after some good
// ones is reported after fn has seen the good ones. Compaction's key scan and
// the compacted-topic key check on produce use it.
func Scan(b []byte, maxDecompressed int, fn func(*Record) error) error {
	h, data, start, err := recordBytes(b, maxDecompressed)
	if err != nil {
		return err
	}
	if int(h.NumRecords) > (len(data)-start)/minRecordSize {
		return corrupt(start, "record count %d does not fit in %d record bytes", h.NumRecords, len(data)-start)
	}
	var r Record
	var hbuf []RecordHeader
	return walkRecords(h, data, start,
		func(int) *Record {
			r = Record{Headers: hbuf}
			return &r
		},
		func(r *Record) error {
			if cap(r.Headers) > cap(hbuf) {
				hbuf = r.Headers[:0]
			}
			return fn(r)
		})
}

// recordBytes validates b and returns its header and its record bytes, from
// data[start:]: b itself (start = HeaderSize) when uncompressed, else the
// decompression bounded by max (start = 0).
func recordBytes(b []byte, max int) (h Header, data []byte, start int, err error) {
	h, err = Validate(b)
	if err != nil {
		return h, nil, 0, err
	}
	if h.Codec() == CodecNone {
		return h, b, HeaderSize, nil
	}
	data, err = decompress(h.Codec(), b[HeaderSize:], max)
	return h, data, 0, err
}

// walkRecords decodes h.NumRecords records filling data[start:] exactly,
// each into the Record slot(i) returns, calling visit (if not nil) after
// each.
func walkRecords(h Header, data []byte, start int, slot func(i int) *Record, visit func(*Record) error) error {
	n := int(h.NumRecords)
	d := decoder{b: data, pos: start}
	prevDelta := int64(-1)
	for i := range n {
		recStart := d.pos
		length, err := d.varint("record length")
		if err != nil {
			return err
		}
		if length < 0 || int(length) > len(d.b)-d.pos {
			return corrupt(recStart, "record %d length %d, %d bytes remain", i, length, len(d.b)-d.pos)
		}
		end := d.pos + int(length)
		rd := decoder{b: d.b[:end], pos: d.pos}
		r := slot(i)
		if _, err := rd.byte("record attributes"); err != nil {
			return err
		}
		if r.TimestampDelta, err = rd.varlong("timestamp delta"); err != nil {
			return err
		}
		od, err := rd.varint("offset delta")
		if err != nil {
			return err
		}
		if int64(od) <= prevDelta || od > h.LastOffsetDelta {
			return corrupt(recStart, "record %d offset delta %d after %d, last offset delta %d", i, od, prevDelta, h.LastOffsetDelta)
		}
		prevDelta = int64(od)
		r.OffsetDelta = od
		if r.Key, err = rd.nullableBytes("key"); err != nil {
			return err
		}
		if r.Value, err = rd.nullableBytes("value"); err != nil {
			return err
		}
		hcPos := rd.pos
		nh, err := rd.varint("header count")
		if err != nil {
			return err
		}
		// Each header takes at least two bytes (key and value lengths).
		if nh < 0 || int(nh) > (len(rd.b)-rd.pos)/2 {
			return corrupt(hcPos, "record %d header count %d, %d bytes remain", i, nh, len(rd.b)-rd.pos)
		}
		if nh == 0 {
			r.Headers = nil
		} else {
			if cap(r.Headers) < int(nh) {
				r.Headers = make([]RecordHeader, nh)
			}
			r.Headers = r.Headers[:nh]
			for j := range r.Headers {
				keyPos := rd.pos
				k, err := rd.nullableBytes("header key")
				if err != nil {
					return err
				}
				if k == nil {
					return corrupt(keyPos, "record %d header %d has a null key", i, j)
				}
				r.Headers[j].Key = string(k)
				if r.Headers[j].Value, err = rd.nullableBytes("header value"); err != nil {
					return err
				}
			}
		}
		if rd.pos != end {
			return corrupt(rd.pos, "record %d has %d bytes past its fields", i, end-rd.pos)
		}
		d.pos = end
		if visit != nil {
			if err := visit(r); err != nil {
				return err
			}
		}
	}
	if d.pos != len(d.b) {
		return corrupt(d.pos, "%d bytes after the last of %d records", len(d.b)-d.pos, n)
	}
	return nil
}

// decoder reads Kafka's varint-framed record fields from b, checking each
// against the bytes that remain.
type decoder struct {
	b   []byte
	pos int
}

func (d *decoder) byte(what string) (byte, error) {
	if d.pos >= len(d.b) {
		return 0, corrupt(d.pos, "%s: no bytes left", what)
	}
	c := d.b[d.pos]
	d.pos++
	return c, nil
}

func (d *decoder) varlong(what string) (int64, error) {
	v, n := binary.Varint(d.b[d.pos:])
	if n == 0 {
		return 0, corrupt(d.pos, "%s: varint runs past the end", what)
	}
	if n < 0 {
		return 0, corrupt(d.pos, "%s: varint overflows 64 bits", what)
	}
	d.pos += n
	return v, nil
}

func (d *decoder) varint(what string) (int32, error) {
	start := d.pos
	v, err := d.varlong(what)
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, corrupt(start, "%s: varint %d overflows 32 bits", what, v)
	}
	return int32(v), nil
}

// nullableBytes reads a varint length (-1 = null) and that many bytes.
func (d *decoder) nullableBytes(what string) ([]byte, error) {
	start := d.pos
	l, err := d.varint(what)
	if err != nil {
		return nil, err
	}
	if l == -1 {
		return nil, nil
	}
	if l < 0 || int(l) > len(d.b)-d.pos {
		return nil, corrupt(start, "%s length %d, %d bytes remain", what, l, len(d.b)-d.pos)
	}
	v := d.b[d.pos : d.pos+int(l) : d.pos+int(l)]
	d.pos += int(l)
	return v, nil
}

// Build encodes a batch of recs compressed with codec. From h it takes
// BaseOffset, PartitionLeaderEpoch, the attribute bits other than the codec,
// FirstTimestamp, MaxTimestamp and the producer fields, as given; it fills
// Magic, Length, NumRecords, the codec bits and the CRC, and sets
// LastOffsetDelta to the last record's OffsetDelta (with no records it keeps
// h.LastOffsetDelta, as compaction does for an emptied batch). Offset deltas
// must be non-negative and strictly increasing. Compaction uses it to rewrite
// batches; tests use it to make them.
func Build(h Header, recs []Record, codec Codec) ([]byte, error) {
	if !codec.Valid() {
		return nil, fmt.Errorf("batch: build: unknown codec %d", codec)
	}
	if len(recs) > math.MaxInt32 {
		return nil, fmt.Errorf("batch: build: %d records", len(recs))
	}
	prev := int64(-1)
	for i := range recs {
		if int64(recs[i].OffsetDelta) <= prev {
			return nil, fmt.Errorf("batch: build: record %d offset delta %d not above %d", i, recs[i].OffsetDelta, prev)
		}
		prev = int64(recs[i].OffsetDelta)
		for j := range recs[i].Headers {
			if len(recs[i].Headers[j].Key) > math.MaxInt32 {
				return nil, fmt.Errorf("batch: build: header key too long")
			}
		}
	}
	if len(recs) > 0 {
		h.LastOffsetDelta = recs[len(recs)-1].OffsetDelta
	}
	if h.LastOffsetDelta < 0 {
		return nil, fmt.Errorf("batch: build: negative last offset delta %d", h.LastOffsetDelta)
	}
	h.Magic = Magic
	h.NumRecords = int32(len(recs))
	h.Attributes = h.Attributes&^attrCodecMask | int16(codec)

	out := make([]byte, HeaderSize, HeaderSize+estimateSize(recs))
	if codec == CodecNone {
		out = appendRecords(out, recs)
	} else {
		raw := appendRecords(make([]byte, 0, estimateSize(recs)), recs)
		var err error
		if out, err = compress(out, codec, raw); err != nil {
			return nil, err
		}
	}
	if len(out)-lengthOverhead > MaxLength {
		return nil, fmt.Errorf("batch: build: %d bytes exceed the maximum batch size", len(out))
	}
	h.Length = int32(len(out) - lengthOverhead)
	h.CRC = 0
	putHeader(out, h)
	SetCRC(out)
	return out, nil
}

// SetCRC recomputes and writes the CRC of the batch b (exactly one batch).
// Use it after changing any field from attributes onwards.
func SetCRC(b []byte) {
	binary.BigEndian.PutUint32(b[posCRC:], Checksum(b))
}

func estimateSize(recs []Record) int {
	n := 0
	for i := range recs {
		r := &recs[i]
		n += 24 + len(r.Key) + len(r.Value)
		for j := range r.Headers {
			n += 10 + len(r.Headers[j].Key) + len(r.Headers[j].Value)
		}
	}
	return n
}

// appendRecords appends the uncompressed encoding of recs.
func appendRecords(dst []byte, recs []Record) []byte {
	var body []byte
	for i := range recs {
		r := &recs[i]
		body = body[:0]
		body = append(body, 0) // attributes: unused by Kafka
		body = binary.AppendVarint(body, r.TimestampDelta)
		body = binary.AppendVarint(body, int64(r.OffsetDelta))
		body = appendNullable(body, r.Key)
		body = appendNullable(body, r.Value)
		body = binary.AppendVarint(body, int64(len(r.Headers)))
		for j := range r.Headers {
			body = binary.AppendVarint(body, int64(len(r.Headers[j].Key)))
			body = append(body, r.Headers[j].Key...)
			body = appendNullable(body, r.Headers[j].Value)
		}
		dst = binary.AppendVarint(dst, int64(len(body)))
		dst = append(dst, body...)
	}
	return dst
}

func appendNullable(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}
