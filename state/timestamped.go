package state

import (
	"encoding/binary"
	"fmt"

	"github.com/weir-dev/weir/serde"
)

// ValueAndTimestamp is a value together with the timestamp of the record
// that produced it. Tables and aggregations store these, so that what they
// forward downstream carries the right timestamp.
type ValueAndTimestamp[V any] struct {
	Value     V
	Timestamp int64
}

// TimestampedLen is the size of the timestamp prefix of a timestamped value.
const TimestampedLen = 8

// AppendTimestamped appends the timestamped encoding of (ts, value) to dst:
// ts as 8 big-endian bytes, then value.
func AppendTimestamped(dst []byte, ts int64, value []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	return append(dst, value...)
}

// SplitTimestamped splits a timestamped encoding into the timestamp and the
// value (which aliases b).
func SplitTimestamped(b []byte) (ts int64, value []byte, err error) {
	if len(b) < TimestampedLen {
		return 0, nil, fmt.Errorf("state: timestamped value of %d bytes is shorter than its %d-byte timestamp", len(b), TimestampedLen)
	}
	return int64(binary.BigEndian.Uint64(b)), b[TimestampedLen:], nil
}

// Timestamped returns the serde of ValueAndTimestamp[V]: the 8-byte
// big-endian timestamp followed by the bytes of inner.
func Timestamped[V any](inner serde.Serde[V]) serde.Serde[ValueAndTimestamp[V]] {
	return timestampedSerde[V]{inner: inner}
}

type timestampedSerde[V any] struct{ inner serde.Serde[V] }

func (s timestampedSerde[V]) Serialize(topic string, v ValueAndTimestamp[V]) ([]byte, error) {
	b, err := s.inner.Serialize(topic, v.Value)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, TimestampedLen+len(b))
	return AppendTimestamped(out, v.Timestamp, b), nil
}

func (s timestampedSerde[V]) Deserialize(topic string, b []byte) (ValueAndTimestamp[V], error) {
	if b == nil {
		return ValueAndTimestamp[V]{}, nil
	}
	ts, raw, err := SplitTimestamped(b)
	if err != nil {
		return ValueAndTimestamp[V]{}, &serde.DecodeError{Serde: "timestamped", Topic: topic, Len: len(b), Err: err}
	}
	v, err := s.inner.Deserialize(topic, raw)
	if err != nil {
		return ValueAndTimestamp[V]{}, err
	}
	return ValueAndTimestamp[V]{Value: v, Timestamp: ts}, nil
}
