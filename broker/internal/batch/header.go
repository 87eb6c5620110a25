package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the number of bytes of a RecordBatch v2 header: baseOffset(8)
// batchLength(4) partitionLeaderEpoch(4) magic(1) crc(4) attributes(2)
// lastOffsetDelta(4) firstTimestamp(8) maxTimestamp(8) producerId(8)
// producerEpoch(2) baseSequence(4) recordCount(4).
const HeaderSize = 61

// Byte positions of the header fields.
const (
	posBaseOffset      = 0
	posLength          = 8
	posLeaderEpoch     = 12
	posMagic           = 16
	posCRC             = 17
	posAttributes      = 21 // the CRC covers from here to the end
	posLastOffsetDelta = 23
	posFirstTimestamp  = 27
	posMaxTimestamp    = 35
	posProducerID      = 43
	posProducerEpoch   = 51
	posBaseSequence    = 53
	posNumRecords      = 57
)

// lengthOverhead is the number of bytes of a batch not counted by its
// batchLength field (baseOffset and batchLength themselves).
const lengthOverhead = 12

// MinLength is the smallest legal batchLength: a header with no records.
const MinLength = HeaderSize - lengthOverhead

// MaxLength is the largest batchLength this package accepts (1 GiB). It is a
// sanity bound against absurd lengths, far above any broker's configured
// message size limit; callers enforce their own, smaller, limits.
const MaxLength = 1 << 30

// Magic is the only batch format version this package reads and writes.
const Magic = 2

// minRecordSize is the smallest encoding of one record: length, attributes,
// timestampDelta, offsetDelta, keyLength, valueLength and headerCount, one
// byte each.
const minRecordSize = 7

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
	// attrDeleteHorizon (KIP-534): the batch's first timestamp is the
	// time after which compaction may remove it. The log cleaner sets it.
	attrDeleteHorizon = 0x40
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec of a batch, held in the low three bits of
// its attributes.
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's name as Kafka's compression.type spells it.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Valid reports whether c is one of the codecs Kafka defines.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// Header is the decoded fixed part of a RecordBatch v2.
type Header struct {
	// BaseOffset is the offset of the batch's first record. Producers send 0;
	// the log assigns it with SetBaseOffset.
	BaseOffset int64
	// Length is the batchLength field: the batch's size minus 12.
	Length int32
	// PartitionLeaderEpoch is the leader epoch at append, assigned by the log.
	PartitionLeaderEpoch int32
	// Magic is the format version; always 2 once parsed.
	Magic int8
	// CRC is the CRC32C (Castagnoli) of the bytes from Attributes to the end.
	CRC uint32
	// Attributes holds the codec, timestamp type, transactional and control
	// bits.
	Attributes int16
	// LastOffsetDelta is the offset of the last record relative to
	// BaseOffset.
	LastOffsetDelta int32
	// FirstTimestamp is the timestamp of the first record, in Unix
	// milliseconds; record timestamps are deltas from it.
	FirstTimestamp int64
	// MaxTimestamp is the largest record timestamp, or the log append time
	// when LogAppendTime is set.
	MaxTimestamp int64
	// ProducerID is the idempotent producer's id, or -1.
	ProducerID int64
	// ProducerEpoch is the idempotent producer's epoch, or -1.
	ProducerEpoch int16
	// BaseSequence is the sequence number of the first record, or -1.
	BaseSequence int32
	// NumRecords is the number of records in the batch.
	NumRecords int32
}

// Size returns the size in bytes of the whole batch: Length + 12.
func (h Header) Size() int { return int(h.Length) + lengthOverhead }

// Codec returns the batch's compression codec.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether the batch's timestamps are the broker's
// append time (MaxTimestamp) rather than the producer's create times.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// DeleteHorizon returns the time, in milliseconds, after which compaction
// may remove the batch (KIP-534), if the cleaner set one.
func (h Header) DeleteHorizon() (int64, bool) {
	return h.FirstTimestamp, h.Attributes&attrDeleteHorizon != 0
}

// SetDeleteHorizon marks the batch b (exactly one, validated) as removable
// by compaction after ms, as Kafka's cleaner does (KIP-534: the attribute
// bit and the first timestamp), and rewrites its CRC. Only for batches
// whose records' timestamps no reader uses (control batches): their
// timestamps are relative to the first.
func SetDeleteHorizon(b []byte, ms int64) {
	a := binary.BigEndian.Uint16(b[posAttributes:])
	binary.BigEndian.PutUint16(b[posAttributes:], a|attrDeleteHorizon)
	binary.BigEndian.PutUint64(b[posFirstTimestamp:], uint64(ms))
	SetCRC(b)
}

// Control reports whether the batch holds control records (transaction
// markers) rather than data.
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// LastOffset returns the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// ParseHeader decodes the header at the start of b. It checks that b holds a
// whole header, that the magic byte is 2 and that the batch length is between
// MinLength and MaxLength; it does not check that b holds the whole batch nor
// the CRC (see Validate). It allocates nothing unless it fails.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, truncated(len(b), "header needs %d bytes, have %d", HeaderSize, len(b))
	}
	h := Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[posBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[posLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[posLeaderEpoch:])),
		Magic:                int8(b[posMagic]),
		CRC:                  binary.BigEndian.Uint32(b[posCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[posAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[posLastOffsetDelta:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[posFirstTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[posMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[posProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[posProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[posBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[posNumRecords:])),
	}
	if h.Magic != Magic {
		return h, corrupt(posMagic, "magic %d, want %d", h.Magic, Magic)
	}
	if h.Length < MinLength || h.Length > MaxLength {
		return h, corrupt(posLength, "batch length %d outside [%d, %d]", h.Length, MinLength, MaxLength)
	}
	return h, nil
}

// Validate checks that b is exactly one well-formed batch as the log stores
// it: a sane header whose length matches len(b), a matching CRC32C over
// attributes..end, a known codec, 0 <= NumRecords <= LastOffsetDelta+1 (a
// compacted batch may hold fewer records than its offset span) and sane
// producer fields. For uncompressed batches it also checks that the record
// bytes could hold NumRecords records. It does not decode records and
// allocates nothing unless it fails.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if size := h.Size(); size != len(b) {
		if size > len(b) {
			return h, truncated(posLength, "batch length %d needs %d bytes, have %d", h.Length, size, len(b))
		}
		return h, corrupt(size, "%d bytes after the batch's end", len(b)-size)
	}
	if crc := crc32.Checksum(b[posAttributes:], castagnoli); crc != h.CRC {
		return h, &CorruptError{Code: CodeChecksum, Reason: fmt.Sprintf("crc %#08x, computed %#08x", h.CRC, crc), Offset: posCRC}
	}
	if !h.Codec().Valid() {
		return h, corrupt(posAttributes, "unknown compression codec %d", h.Codec())
	}
	if h.LastOffsetDelta < 0 {
		return h, corrupt(posLastOffsetDelta, "negative last offset delta %d", h.LastOffsetDelta)
	}
	if h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
		return h, corrupt(posNumRecords, "record count %d, offset span %d", h.NumRecords, int64(h.LastOffsetDelta)+1)
	}
	if h.Codec() == CodecNone && int64(h.NumRecords)*minRecordSize > int64(len(b)-HeaderSize) {
		return h, corrupt(posNumRecords, "record count %d does not fit in %d record bytes", h.NumRecords, len(b)-HeaderSize)
	}
	if h.ProducerID < -1 {
		return h, corrupt(posProducerID, "producer id %d", h.ProducerID)
	}
	if h.ProducerEpoch < -1 {
		return h, corrupt(posProducerEpoch, "producer epoch %d", h.ProducerEpoch)
	}
	if h.BaseSequence < -1 {
		return h, corrupt(posBaseSequence, "base sequence %d", h.BaseSequence)
	}
	if h.Transactional() && (h.ProducerID < 0 || h.ProducerEpoch < 0) {
		return h, corrupt(posProducerID, "transactional batch without producer id and epoch (%d, %d)", h.ProducerID, h.ProducerEpoch)
	}
	return h, nil
}

// ValidateProduced is Validate plus what Kafka requires of a batch as a
// producer sends it: at least one record, one record per offset
// (NumRecords == LastOffsetDelta+1), no control batch (only the broker
// writes those), and an idempotent producer's batch (ProducerID >= 0) with
// an epoch and a sequence number.
func ValidateProduced(b []byte) (Header, error) {
	h, err := Validate(b)
	if err != nil {
		return h, err
	}
	if h.Control() {
		return h, refused(posAttributes, "producers may not write control batches")
	}
	if h.ProducerID >= 0 && (h.ProducerEpoch < 0 || h.BaseSequence < 0) {
		return h, refused(posBaseSequence, "idempotent batch of producer id %d without an epoch and a sequence number (epoch %d, base sequence %d)", h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	}
	if h.NumRecords == 0 {
		return h, corrupt(posNumRecords, "produced batch has no records")
	}
	if int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 {
		return h, corrupt(posNumRecords, "produced batch has %d records for %d offsets", h.NumRecords, int64(h.LastOffsetDelta)+1)
	}
	return h, nil
}

// Next splits the first batch off buf, a concatenation of batches such as a
// produce payload or a segment read. It checks the header (ParseHeader) and
// that the whole batch is present, not the CRC: call Validate on the batch.
// When buf does not hold the whole batch the error is a *CorruptError for
// which IsTruncated is true, so readers can stop at a partial tail. An empty
// buf returns nil, nil, nil.
func Next(buf []byte) (batch, rest []byte, err error) {
	if len(buf) == 0 {
		return nil, nil, nil
	}
	h, err := ParseHeader(buf)
	if err != nil {
		return nil, buf, err
	}
	size := h.Size()
	if size > len(buf) {
		return nil, buf, truncated(posLength, "batch length %d needs %d bytes, have %d", h.Length, size, len(buf))
	}
	return buf[:size:size], buf[size:], nil
}

// SetBaseOffset writes off into the baseOffset field of the batch at the
// start of b. The field lies outside the CRC, so the batch stays valid. b
// must hold at least a header.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[posBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch writes epoch into the partitionLeaderEpoch field of
// the batch at the start of b. The field lies outside the CRC, so the batch
// stays valid. b must hold at least a header.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[posLeaderEpoch:], uint32(epoch))
}

// SetMaxTimestampAndAppendTime marks the batch b (exactly one batch, as for
// Validate) as carrying the log append time: it sets the timestamp-type bit
// and writes ts into maxTimestamp, as a broker does for a topic with
// message.timestamp.type=LogAppendTime. Consumers then read ts as every
// record's timestamp.
//
// NB: unlike baseOffset and partitionLeaderEpoch, both fields are inside the
// CRC'd range, so this recomputes the CRC over the whole batch: it costs a
// pass over the bytes. It allocates nothing.
func SetMaxTimestampAndAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[posAttributes:]) | attrLogAppendTime
	binary.BigEndian.PutUint16(b[posAttributes:], attrs)
	binary.BigEndian.PutUint64(b[posMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[posCRC:], crc32.Checksum(b[posAttributes:], castagnoli))
}

// putHeader writes h into b[:HeaderSize] without computing the CRC.
func putHeader(b []byte, h Header) {
	binary.BigEndian.PutUint64(b[posBaseOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[posLength:], uint32(h.Length))
	binary.BigEndian.PutUint32(b[posLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[posMagic] = byte(h.Magic)
	binary.BigEndian.PutUint32(b[posCRC:], h.CRC)
	binary.BigEndian.PutUint16(b[posAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint32(b[posLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(b[posFirstTimestamp:], uint64(h.FirstTimestamp))
	binary.BigEndian.PutUint64(b[posMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[posProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[posProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[posBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[posNumRecords:], uint32(h.NumRecords))
}

// Checksum returns the CRC32C that the batch b's crc field should hold: the
// checksum of b's bytes from the attributes field to the end (0 when b is
// too short to have one).
func Checksum(b []byte) uint32 {
	if len(b) < posAttributes {
		return 0
	}
	return crc32.Checksum(b[posAttributes:], castagnoli)
}
