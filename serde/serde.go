package serde

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/weir-dev/weir/internal/msgpackcheck"
)

// Serde serializes values of type T to bytes and back. Implementations are
// safe for concurrent use. topic is the topic (or store changelog) the bytes
// belong to; most serdes ignore it.
type Serde[T any] interface {
	// Serialize encodes v. The returned slice is the caller's.
	Serialize(topic string, v T) ([]byte, error)
	// Deserialize decodes b. It must not retain b.
	Deserialize(topic string, b []byte) (T, error)
}

// Appender is implemented by serdes that can encode into a caller's buffer:
// Append appends the encoding of v to dst and returns the extended slice,
// as Serialize would return it. Callers that reuse buffers (stores, sinks)
// use it through AppendTo to save an allocation per value. The serdes of
// this package for strings, numbers and msgpack implement it (Bytes does not: its
// Serialize allocates nothing, and it keeps nil, a tombstone, apart from
// empty).
type Appender[T any] interface {
	Append(dst []byte, topic string, v T) ([]byte, error)
}

// AppendTo appends s's encoding of v to dst: through Appender if s has it,
// else by Serialize and a copy. Code that encodes many values with one
// serde keeps an Encoder instead.
func AppendTo[T any](s Serde[T], dst []byte, topic string, v T) ([]byte, error) {
	return NewEncoder(s).Append(dst, topic, v)
}

// Encoder is the encoding side of a serde with its Appender looked up once.
// AppendTo looks it up on every call, and asserting a generic interface
// type is a run-time table lookup: per-record code (sinks, stores,
// aggregations) builds an Encoder when it is set up and keeps it.
type Encoder[T any] struct {
	s Serde[T]
	a Appender[T] // nil: s only serializes
}

// NewEncoder returns the Encoder of s.
func NewEncoder[T any](s Serde[T]) Encoder[T] {
	a, _ := s.(Appender[T])
	return Encoder[T]{s: s, a: a}
}

// Appends reports whether the serde encodes into a caller's buffer
// (implements Appender).
func (e Encoder[T]) Appends() bool { return e.a != nil }

// Serialize is the serde's Serialize.
func (e Encoder[T]) Serialize(topic string, v T) ([]byte, error) { return e.s.Serialize(topic, v) }

// Append is AppendTo with the encoder's serde.
func (e Encoder[T]) Append(dst []byte, topic string, v T) ([]byte, error) {
	if e.a != nil {
		return e.a.Append(dst, topic, v)
	}
	b, err := e.s.Serialize(topic, v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// AliasDecoder is implemented by serdes that can decode without copying:
// DeserializeAlias may return a value that shares b's memory (the String
// serde returns a string over b's bytes), where Deserialize must not retain
// b. Call it only for bytes that nobody writes again, and know that the
// value keeps b's whole backing array alive as long as it lives. Task
// engines use it for records marked streams.RawRecord.Stable.
type AliasDecoder[T any] interface {
	DeserializeAlias(topic string, b []byte) (T, error)
}

// DecodeError reports bytes a serde could not decode. Callers that know more
// (the store and key, the topic, partition and offset) wrap it.
type DecodeError struct {
	// Serde names the serde: "string", "int64", "msgpack[main.Order]", ...
	Serde string
	// Topic is the topic passed to Deserialize.
	Topic string
	// Len is the length of the bytes that failed.
	Len int
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("serde: %s cannot decode %d bytes (topic %q): %v", e.Serde, e.Len, e.Topic, e.Err)
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// IsDecode reports whether err is or wraps a *DecodeError.
func IsDecode(err error) bool {
	var d *DecodeError
	return errors.As(err, &d)
}

// Func builds a Serde from two functions.
func Func[T any](ser func(topic string, v T) ([]byte, error), de func(topic string, b []byte) (T, error)) Serde[T] {
	return funcSerde[T]{ser: ser, de: de}
}

type funcSerde[T any] struct {
	ser func(string, T) ([]byte, error)
	de  func(string, []byte) (T, error)
}

func (f funcSerde[T]) Serialize(topic string, v T) ([]byte, error)   { return f.ser(topic, v) }
func (f funcSerde[T]) Deserialize(topic string, b []byte) (T, error) { return f.de(topic, b) }

// String returns the serde of UTF-8 strings: the bytes of the string as is.
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

func (stringSerde) Serialize(_ string, v string) ([]byte, error) { return []byte(v), nil }
func (stringSerde) Append(dst []byte, _ string, v string) ([]byte, error) {
	return append(dst, v...), nil
}
func (stringSerde) Deserialize(_ string, b []byte) (string, error) {
	return string(b), nil
}

// DeserializeAlias implements AliasDecoder: the string shares b's bytes.
func (stringSerde) DeserializeAlias(_ string, b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// Bytes returns the identity serde of byte slices. Serialize returns v
// itself (not a copy); Deserialize returns a copy of b.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type bytesSerde struct{}

func (bytesSerde) Serialize(_ string, v []byte) ([]byte, error) { return v, nil }
func (bytesSerde) Deserialize(_ string, b []byte) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	return append([]byte{}, b...), nil
}

// Int64 returns the serde of int64 as 8 big-endian bytes (two's
// complement), Kafka's LongSerializer encoding. Decoding anything but 8
// bytes (or nil, which gives 0) fails.
func Int64() Serde[int64] { return int64Serde{} }

type int64Serde struct{}

func (int64Serde) Serialize(_ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
}

func (int64Serde) Append(dst []byte, _ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}

func (int64Serde) Deserialize(topic string, b []byte) (int64, error) {
	u, err := fixed8("int64", topic, b)
	return int64(u), err
}

// Uint64 returns the serde of uint64 as 8 big-endian bytes; bytewise order
// is numeric order.
func Uint64() Serde[uint64] { return uint64Serde{} }

type uint64Serde struct{}

func (uint64Serde) Serialize(_ string, v uint64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v), nil
}

func (uint64Serde) Append(dst []byte, _ string, v uint64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, v), nil
}

func (uint64Serde) Deserialize(topic string, b []byte) (uint64, error) {
	return fixed8("uint64", topic, b)
}

// OrderedInt64 returns a serde of int64 whose bytes sort like the numbers:
// 8 big-endian bytes with the sign bit flipped. Use it for store keys that
// are range-scanned; it is not Kafka's encoding.
func OrderedInt64() Serde[int64] { return orderedInt64Serde{} }

type orderedInt64Serde struct{}

func (orderedInt64Serde) Serialize(_ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)^(1<<63)), nil
}

func (orderedInt64Serde) Append(dst []byte, _ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63)), nil
}

func (orderedInt64Serde) Deserialize(topic string, b []byte) (int64, error) {
	u, err := fixed8("ordered int64", topic, b)
	if err != nil || b == nil {
		return 0, err
	}
	return int64(u ^ (1 << 63)), nil
}

func fixed8(name, topic string, b []byte) (uint64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, &DecodeError{Serde: name, Topic: topic, Len: len(b), Err: fmt.Errorf("want 8 bytes")}
	}
	return binary.BigEndian.Uint64(b), nil
}

// Float64 returns the serde of float64 as the 8 big-endian bytes of its
// IEEE 754 bits (Kafka's DoubleSerializer encoding).
func Float64() Serde[float64] { return float64Serde{} }

type float64Serde struct{}

func (float64Serde) Serialize(_ string, v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(v)), nil
}

func (float64Serde) Append(dst []byte, _ string, v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(v)), nil
}

func (float64Serde) Deserialize(topic string, b []byte) (float64, error) {
	u, err := fixed8("float64", topic, b)
	return math.Float64frombits(u), err
}

// JSON returns a serde that encodes T with encoding/json. Nil bytes decode
// to the zero T.
func JSON[T any]() Serde[T] { return jsonSerde[T]{name: "json[" + typeName[T]() + "]"} }

type jsonSerde[T any] struct{ name string }

func (jsonSerde[T]) Serialize(_ string, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("serde: json encode: %w", err)
	}
	return b, nil
}

func (s jsonSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, &DecodeError{Serde: s.name, Topic: topic, Len: len(b), Err: err}
	}
	return v, nil
}

// Msgpack returns a serde that encodes T with msgpack
// (github.com/vmihailenco/msgpack/v5), Weir's default value encoding. Struct
// fields are encoded by name (msgpack tags apply), so adding a field keeps
// old bytes readable. Nil bytes decode to the zero T; trailing bytes after
// one value are an error. It implements Appender: sinks and stores encode
// into their own buffers without a copy.
func Msgpack[T any]() Serde[T] {
	s := msgpackSerde[T]{name: "msgpack[" + typeName[T]() + "]", coders: &sync.Pool{}}
	s.coders.New = func() any {
		c := &msgpackCoder[T]{}
		c.enc = msgpack.NewEncoder(&c.w)
		c.dec = msgpack.NewDecoder(&c.r)
		return c
	}
	return s
}

type msgpackSerde[T any] struct {
	name string
	// coders keeps *msgpackCoder[T]: msgpack.Marshal and Unmarshal
	// allocate per call (the output buffer, a reader, the value boxed in an
	// interface); a kept coder reuses them.
	coders *sync.Pool
}

// msgpackCoder is an encoder and a decoder with what they work on. v is
// where values are encoded from and decoded into: a field of a pooled
// struct, so that passing &v to msgpack (an interface) allocates nothing.
type msgpackCoder[T any] struct {
	enc *msgpack.Encoder
	w   appendWriter
	dec *msgpack.Decoder
	r   bytes.Reader
	v   T
}

// appendWriter is the io.Writer (with WriteByte and WriteString, so that
// msgpack uses it unbuffered) that appends to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *appendWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

func (s msgpackSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	// NB: room for most values at once, as msgpack.Marshal's buffer has.
	return s.Append(make([]byte, 0, 64), topic, v)
}

// Append implements Appender.
func (s msgpackSerde[T]) Append(dst []byte, _ string, v T) ([]byte, error) {
	c := s.coders.Get().(*msgpackCoder[T])
	c.w.b, c.v = dst, v
	err := c.enc.Encode(&c.v)
	out := c.w.b
	var zero T
	c.w.b, c.v = nil, zero // keep nothing of the caller's alive in the pool
	s.coders.Put(c)
	if err != nil {
		return dst, fmt.Errorf("serde: msgpack encode: %w", err)
	}
	return out, nil
}

func (s msgpackSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	// The decoder allocates what a container's header declares, however
	// few bytes follow: a few hostile bytes could claim gigabytes. Only a
	// 16- or 32-bit header can claim much; most records have none.
	if msgpackcheck.MayClaimMuch(b) {
		if err := msgpackcheck.Check(b); err != nil {
			return v, &DecodeError{Serde: s.name, Topic: topic, Len: len(b), Err: err}
		}
	}
	c := s.coders.Get().(*msgpackCoder[T])
	c.r.Reset(b)
	c.dec.Reset(&c.r)
	err := c.dec.Decode(&c.v)
	v, c.v = c.v, v
	c.r.Reset(nil)
	s.coders.Put(c)
	if err != nil {
		var zero T
		return zero, &DecodeError{Serde: s.name, Topic: topic, Len: len(b), Err: err}
	}
	return v, nil
}

func typeName[T any]() string {
	return reflect.TypeFor[T]().String()
}
