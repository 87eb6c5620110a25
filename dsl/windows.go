package dsl

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/weir-dev/weir/serde"
)

// Window is a time interval [Start, End).
type Window struct {
	Start, End time.Time
}

func (w Window) String() string {
	return fmt.Sprintf("[%d,%d)", w.Start.UnixMilli(), w.End.UnixMilli())
}

// Windowed is a key qualified by the window it was aggregated in: the key
// type of a windowed aggregation's table.
type Windowed[K any] struct {
	Key    K
	Window Window
}

func (w Windowed[K]) String() string { return fmt.Sprintf("%v@%v", w.Key, w.Window) }

// TimeWindows are fixed-size windows: tumbling (advance == size) or hopping
// (advance < size). A record at t belongs to every window with
// start <= t < start+size. Windows are aligned to the epoch; timestamps
// are expected to be >= 0.
type TimeWindows struct {
	size, advance, grace time.Duration
}

// TumblingWindows returns non-overlapping windows of size, with no grace.
func TumblingWindows(size time.Duration) TimeWindows {
	return TimeWindows{size: size, advance: size}
}

// HoppingWindows returns windows of size starting every advance
// (0 < advance <= size), with no grace.
func HoppingWindows(size, advance time.Duration) TimeWindows {
	return TimeWindows{size: size, advance: advance}
}

// Grace returns w accepting out-of-order records until stream time passes a
// window's end plus d; later records for the window are dropped and counted
// (metric "<node>: late"). Default 0.
func (w TimeWindows) Grace(d time.Duration) TimeWindows {
	w.grace = d
	return w
}

// Size returns the window size.
func (w TimeWindows) Size() time.Duration { return w.size }

func (w TimeWindows) valid() error {
	if w.size <= 0 || w.advance <= 0 || w.advance > w.size || w.grace < 0 {
		return fmt.Errorf("dsl: invalid time windows (size %v, advance %v, grace %v): need 0 < advance <= size and grace >= 0", w.size, w.advance, w.grace)
	}
	return nil
}

// starts returns the starts (ms) of the windows containing ts, ascending.
func (w TimeWindows) starts(ts int64, buf []int64) []int64 {
	size, adv := w.size.Milliseconds(), w.advance.Milliseconds()
	first := ts - size + adv
	if first < 0 {
		first = 0
	}
	for s := first / adv * adv; s <= ts; s += adv {
		buf = append(buf, s)
	}
	return buf
}

// SlidingWindows are windows of a fixed maximum time difference between
// records, defined by the records themselves: two records fall in a common
// window when their timestamps are at most timeDifference apart.
type SlidingWindows struct {
	diff, grace time.Duration
}

// SlidingWindowsOf returns sliding windows for records at most diff apart.
func SlidingWindowsOf(diff time.Duration) SlidingWindows { return SlidingWindows{diff: diff} }

// Grace sets the grace period; see TimeWindows.Grace.
func (w SlidingWindows) Grace(d time.Duration) SlidingWindows {
	w.grace = d
	return w
}

// SessionWindows group a key's records into sessions separated by gaps of
// inactivity: a record within gap of a session joins it, and a record that
// bridges two sessions merges them.
type SessionWindows struct {
	gap, grace time.Duration
}

// SessionWindowsWithGap returns session windows with the inactivity gap.
func SessionWindowsWithGap(gap time.Duration) SessionWindows { return SessionWindows{gap: gap} }

// Grace sets the grace period: a record is dropped when stream time has
// passed its session's end plus grace. Default 0.
func (w SessionWindows) Grace(d time.Duration) SessionWindows {
	w.grace = d
	return w
}

// WindowedSerde serializes a Windowed key of fixed-size windows as the
// inner key's bytes followed by the window start (8 bytes, big endian,
// milliseconds), the layout Kafka Streams uses; the end is start + size.
func WindowedSerde[K any](inner serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	return windowedSerde[K]{inner: inner, enc: serde.NewEncoder(inner), size: size.Milliseconds()}
}

type windowedSerde[K any] struct {
	inner serde.Serde[K]
	enc   serde.Encoder[K]
	size  int64
}

func (s windowedSerde[K]) Serialize(topic string, w Windowed[K]) ([]byte, error) {
	return s.Append(nil, topic, w)
}

// Append implements serde.Appender: the inner key's bytes and the start,
// appended to dst (one allocation at most when dst is nil).
func (s windowedSerde[K]) Append(dst []byte, topic string, w Windowed[K]) ([]byte, error) {
	out, err := s.enc.Append(dst, topic, w.Key)
	if err != nil {
		return dst, err
	}
	return binary.BigEndian.AppendUint64(out, uint64(w.Window.Start.UnixMilli())), nil
}

func (s windowedSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	if len(b) < 8 {
		return Windowed[K]{}, &serde.DecodeError{Serde: "windowed", Topic: topic, Len: len(b), Err: fmt.Errorf("want at least 8 bytes")}
	}
	k, err := s.inner.Deserialize(topic, b[:len(b)-8])
	if err != nil {
		return Windowed[K]{}, err
	}
	start := int64(binary.BigEndian.Uint64(b[len(b)-8:]))
	return Windowed[K]{Key: k, Window: Window{Start: time.UnixMilli(start), End: time.UnixMilli(start + s.size)}}, nil
}

// SessionWindowedSerde serializes a session-windowed key as the inner key's
// bytes, then the session end and start (8 bytes each, big endian,
// milliseconds), Kafka Streams' layout. A session's End is its last
// record's timestamp (inclusive).
func SessionWindowedSerde[K any](inner serde.Serde[K]) serde.Serde[Windowed[K]] {
	return sessionSerde[K]{inner: inner, enc: serde.NewEncoder(inner)}
}

type sessionSerde[K any] struct {
	inner serde.Serde[K]
	enc   serde.Encoder[K]
}

func (s sessionSerde[K]) Serialize(topic string, w Windowed[K]) ([]byte, error) {
	return s.Append(nil, topic, w)
}

// Append implements serde.Appender.
func (s sessionSerde[K]) Append(dst []byte, topic string, w Windowed[K]) ([]byte, error) {
	kb, err := s.enc.Append(dst, topic, w.Key)
	if err != nil {
		return dst, err
	}
	kb = binary.BigEndian.AppendUint64(kb, uint64(w.Window.End.UnixMilli()))
	return binary.BigEndian.AppendUint64(kb, uint64(w.Window.Start.UnixMilli())), nil
}

func (s sessionSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	if len(b) < 16 {
		return Windowed[K]{}, &serde.DecodeError{Serde: "session-windowed", Topic: topic, Len: len(b), Err: fmt.Errorf("want at least 16 bytes")}
	}
	n := len(b) - 16
	k, err := s.inner.Deserialize(topic, b[:n])
	if err != nil {
		return Windowed[K]{}, err
	}
	end := int64(binary.BigEndian.Uint64(b[n:]))
	start := int64(binary.BigEndian.Uint64(b[n+8:]))
	return Windowed[K]{Key: k, Window: Window{Start: time.UnixMilli(start), End: time.UnixMilli(end)}}, nil
}

// Nullable is a value that may be absent: a table's deleted key, the
// missing side of a left or outer join, a tombstone in a topic.
type Nullable[V any] struct {
	Value V
	Valid bool
}

// Some returns a present Nullable.
func Some[V any](v V) Nullable[V] { return Nullable[V]{Value: v, Valid: true} }

// NullableSerde maps absent values to nil bytes (a tombstone) and back.
func NullableSerde[V any](inner serde.Serde[V]) serde.Serde[Nullable[V]] {
	return nullableSerde[V]{inner: inner}
}

type nullableSerde[V any] struct{ inner serde.Serde[V] }

func (s nullableSerde[V]) Serialize(topic string, v Nullable[V]) ([]byte, error) {
	if !v.Valid {
		return nil, nil
	}
	b, err := s.inner.Serialize(topic, v.Value)
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

func (s nullableSerde[V]) Deserialize(topic string, b []byte) (Nullable[V], error) {
	if b == nil {
		return Nullable[V]{}, nil
	}
	v, err := s.inner.Deserialize(topic, b)
	if err != nil {
		return Nullable[V]{}, err
	}
	return Nullable[V]{Value: v, Valid: true}, nil
}
