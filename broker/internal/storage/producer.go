package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sort"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// maxProducerBatches is how many recent batches per producer are remembered
// for duplicate detection; Kafka clients keep at most 5 in flight.
const maxProducerBatches = 5

// producerBatch is one appended batch of an idempotent producer.
type producerBatch struct {
	firstSeq, lastSeq int32
	base, last        Offset
}

// producerState is what the log knows of one producer id.
type producerState struct {
	epoch   int16
	batches []producerBatch // oldest first, at most maxProducerBatches
	// txnOpen is set from the producer's first transactional batch until
	// its marker; txnFirst is that batch's base offset (see txn.go).
	txnOpen  bool
	txnFirst Offset
	// coordEpoch is the highest transaction coordinator epoch of the
	// producer's markers here (-1: none yet); a leader refuses a marker of
	// a lower one (TRANSACTION_COORDINATOR_FENCED, see WriteMarker).
	coordEpoch int32
}

// newProducerState is the state of a producer first seen at epoch.
func newProducerState(epoch int16) *producerState {
	return &producerState{epoch: epoch, coordEpoch: -1}
}

func (p *producerState) lastOffset() Offset {
	if len(p.batches) == 0 {
		return -1
	}
	return p.batches[len(p.batches)-1].last
}

// seqCheck is the outcome of checking a batch against producer state.
type seqCheck uint8

const (
	seqAppend seqCheck = iota
	seqDuplicate
)

// lastSeqOf returns the sequence number of the batch's last record, wrapping
// past MaxInt32 to 0 as Kafka does.
func lastSeqOf(h batch.Header) int32 {
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// checkProducer checks an idempotent or transactional batch h against the
// state p (nil for an unknown producer). For a duplicate it returns the
// original batch.
//
// A batch older than the producer's epoch here is refused, whether a
// producer's or a transactional one the broker writes (a marker, an offset
// commit): under KIP-890 part 2 every marker carries an epoch above its
// transaction's, so a produce, offset commit or marker still in flight from
// a transaction that has ended here is fenced instead of landing in the
// next one. Markers and broker-written batches carry no sequence number and
// are not checked further.
func checkProducer(p *producerState, h batch.Header) (seqCheck, producerBatch, error) {
	if p == nil {
		return seqAppend, producerBatch{}, nil
	}
	if h.ProducerEpoch < p.epoch && (h.BaseSequence >= 0 || h.Transactional()) {
		return 0, producerBatch{}, fmt.Errorf("%w: producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, p.epoch)
	}
	if h.BaseSequence < 0 || h.Control() {
		return seqAppend, producerBatch{}, nil
	}
	switch {
	case h.ProducerEpoch > p.epoch:
		if h.BaseSequence != 0 {
			return 0, producerBatch{}, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d, want 0", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return seqAppend, producerBatch{}, nil
	}
	last := lastSeqOf(h)
	for _, b := range p.batches {
		if b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return seqDuplicate, b, nil
		}
	}
	if len(p.batches) == 0 {
		return seqAppend, producerBatch{}, nil
	}
	if want := nextSeq(p.batches[len(p.batches)-1].lastSeq); h.BaseSequence != want {
		return 0, producerBatch{}, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, want %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, want)
	}
	return seqAppend, producerBatch{}, nil
}

// recordProducer updates producer state with an appended batch (whose
// BaseOffset is assigned). It is also how recovery replays batch headers.
func recordProducer(m map[int64]*producerState, h batch.Header) {
	if h.ProducerID < 0 {
		return
	}
	p := m[h.ProducerID]
	if p == nil {
		p = newProducerState(h.ProducerEpoch)
		m[h.ProducerID] = p
	}
	if h.ProducerEpoch > p.epoch {
		p.epoch = h.ProducerEpoch
		p.batches = p.batches[:0]
	}
	if h.BaseSequence < 0 || h.Control() {
		return
	}
	if len(p.batches) == maxProducerBatches {
		copy(p.batches, p.batches[1:])
		p.batches = p.batches[:maxProducerBatches-1]
	}
	p.batches = append(p.batches, producerBatch{
		firstSeq: h.BaseSequence, lastSeq: lastSeqOf(h),
		base: Offset(h.BaseOffset), last: Offset(h.LastOffset()),
	})
}

// Producer snapshot file ("<base>.snapshot"): the producer state as of
// offset base, written when a segment is rolled so recovery replays only
// the batches after it. Layout, big-endian:
//
//	version int16 (3) | count int32 | count × producer | crc32c uint32
//	producer = id int64 | epoch int16 | n int8 | n × (firstSeq int32,
//	           lastSeq int32, base int64, last int64) | txnFirst int64 |
//	           coordEpoch int32
//
// txnFirst is the first offset of the producer's open transaction, -1 if
// none; coordEpoch the highest coordinator epoch of its markers, -1 if
// none. Version 1 (written before transactions) has neither, version 2 no
// coordEpoch (read as -1). The CRC32C covers everything before it.
const snapshotVersion = 3

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeProducers(m map[int64]*producerState) []byte {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := binary.BigEndian.AppendUint16(nil, snapshotVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		p := m[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(p.epoch))
		b = append(b, byte(len(p.batches)))
		for _, e := range p.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(e.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(e.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(e.base))
			b = binary.BigEndian.AppendUint64(b, uint64(e.last))
		}
		first := int64(-1)
		if p.txnOpen {
			first = int64(p.txnFirst)
		}
		b = binary.BigEndian.AppendUint64(b, uint64(first))
		b = binary.BigEndian.AppendUint32(b, uint32(p.coordEpoch))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeProducers(b []byte) (map[int64]*producerState, error) {
	if len(b) < 10 {
		return nil, fmt.Errorf("storage: producer snapshot of %d bytes is too short", len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("storage: producer snapshot checksum mismatch")
	}
	v := binary.BigEndian.Uint16(body)
	if v < 1 || v > snapshotVersion {
		return nil, fmt.Errorf("storage: producer snapshot version %d", v)
	}
	n := binary.BigEndian.Uint32(body[2:])
	body = body[6:]
	if uint64(n)*11 > uint64(len(body)) {
		return nil, fmt.Errorf("storage: producer snapshot claims %d producers in %d bytes", n, len(body))
	}
	m := make(map[int64]*producerState, n)
	for range n {
		if len(body) < 11 {
			return nil, fmt.Errorf("storage: producer snapshot truncated")
		}
		id := int64(binary.BigEndian.Uint64(body))
		p := newProducerState(int16(binary.BigEndian.Uint16(body[8:])))
		k := int(body[10])
		body = body[11:]
		if k > maxProducerBatches || len(body) < k*24 {
			return nil, fmt.Errorf("storage: producer snapshot entry for %d truncated", id)
		}
		for range k {
			p.batches = append(p.batches, producerBatch{
				firstSeq: int32(binary.BigEndian.Uint32(body)),
				lastSeq:  int32(binary.BigEndian.Uint32(body[4:])),
				base:     Offset(binary.BigEndian.Uint64(body[8:])),
				last:     Offset(binary.BigEndian.Uint64(body[16:])),
			})
			body = body[24:]
		}
		if v >= 2 {
			if len(body) < 8 {
				return nil, fmt.Errorf("storage: producer snapshot entry for %d truncated", id)
			}
			if first := int64(binary.BigEndian.Uint64(body)); first >= 0 {
				p.txnOpen, p.txnFirst = true, Offset(first)
			}
			body = body[8:]
		}
		if v >= 3 {
			if len(body) < 4 {
				return nil, fmt.Errorf("storage: producer snapshot entry for %d truncated", id)
			}
			p.coordEpoch = int32(binary.BigEndian.Uint32(body))
			body = body[4:]
		}
		m[id] = p
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("storage: %d bytes after the producer snapshot's entries", len(body))
	}
	return m, nil
}
