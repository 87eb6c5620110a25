package protocol

import (
	"encoding/binary"
	"fmt"
)

// maxProducePartitions bounds the topic and partition entries of one
// produce request. kmsg checks each array length against the bytes left,
// but a decoded entry is far larger than its one-byte minimum on the wire,
// so a 100 MiB frame of empty entries would decode into gigabytes. Produce is
// the one request that is legitimately that large (its bulk is record bytes,
// which are not amplified), so its entry count is checked before decoding.
const maxProducePartitions = 100000

// decodeAmplification is the budget charged per byte of a request other
// than Produce: decoding may allocate up to about this many bytes per wire
// byte (array entries of a few bytes become structs of ~100).
const decodeAmplification = 16

// shapeReader walks wire bytes without allocating. Any overrun sets bad.
type shapeReader struct {
	b   []byte
	bad bool
}

func (r *shapeReader) skip(n int) {
	if n < 0 || n > len(r.b) {
		r.bad, r.b = true, nil
		return
	}
	r.b = r.b[n:]
}

func (r *shapeReader) int16() int16 {
	if len(r.b) < 2 {
		r.bad, r.b = true, nil
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *shapeReader) int32() int32 {
	if len(r.b) < 4 {
		r.bad, r.b = true, nil
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *shapeReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// length reads a string/bytes/array length: int16 or int32 for classic
// encodings, uvarint+1 for compact ones. Null is -1.
func (r *shapeReader) length(flexible, wide bool) int {
	if flexible {
		return int(min(r.uvarint(), 1<<31)) - 1
	}
	if wide {
		return int(r.int32())
	}
	return int(r.int16())
}

func (r *shapeReader) tags() {
	for n := r.uvarint(); n > 0 && !r.bad; n-- {
		r.uvarint()
		r.skip(int(min(r.uvarint(), 1<<31)))
	}
}

// checkProduceShape counts the topic and partition entries of a produce
// request body and refuses more than maxProducePartitions. It allocates
// nothing. Bytes it cannot walk are left for kmsg to refuse.
func checkProduceShape(body []byte, version int16) error {
	flex := version >= 9
	r := &shapeReader{b: body}
	if version >= 3 {
		r.skip(max(r.length(flex, false), 0)) // transactional id
	}
	r.skip(6) // acks, timeout
	topics := r.length(flex, true)
	total := max(topics, 0)
	for range max(topics, 0) {
		if r.bad {
			return nil
		}
		r.skip(max(r.length(flex, false), 0)) // topic name
		parts := r.length(flex, true)
		total += max(parts, 0)
		if total > maxProducePartitions {
			return fmt.Errorf("%w: produce request with more than %d topic and partition entries", ErrFrame, maxProducePartitions)
		}
		for range max(parts, 0) {
			if r.bad {
				return nil
			}
			r.skip(4)                            // partition
			r.skip(max(r.length(flex, true), 0)) // records
			if flex {
				r.tags()
			}
		}
		if flex {
			r.tags()
		}
	}
	if total > maxProducePartitions {
		return fmt.Errorf("%w: produce request with more than %d topic and partition entries", ErrFrame, maxProducePartitions)
	}
	return nil
}
