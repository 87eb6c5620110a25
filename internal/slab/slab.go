// Package slab carves the serialized keys and values of records from large
// shared buffers, so that a record costs no allocation of its own when its
// serdes can append (serde.Appender). A carved part is never written again:
// whoever receives it may keep it. A slab whose free tail is too small is
// left to the records that use it (the garbage collector frees it with the
// last of them) and a new one started.
package slab

import "github.com/weir-dev/weir/serde"

// Size is the capacity of a new slab.
const Size = 8 << 10

// minFree is the free tail below which a new slab is started.
const minFree = 256

// Slab is a buffer records are carved from. The zero value is ready. A Slab
// belongs to one goroutine.
type Slab struct{ buf []byte }

// Append serializes v with s into the slab's free tail and returns the
// bytes, with their capacity cut to their length so that appending to them
// reallocates. A serde without Appender serializes as usual. Values larger
// than the free tail get their own allocation. Callers that serialize many
// values with one serde build a Writer once instead.
func Append[T any](sl *Slab, s serde.Serde[T], topic string, v T) ([]byte, error) {
	return NewWriter(s).Append(sl, topic, v)
}

// Writer serializes values of one serde into slabs. It resolves once
// whether the serde appends (serde.Encoder), which Append does per call.
type Writer[T any] struct{ enc serde.Encoder[T] }

// NewWriter returns a Writer of s.
func NewWriter[T any](s serde.Serde[T]) Writer[T] { return Writer[T]{enc: serde.NewEncoder(s)} }

// Appends reports whether w's serde appends, so that what Append returns
// is carved from the slab (or allocated for it) and written by nobody
// else. The bytes a serializing serde returns may be its caller's (the
// Bytes serde returns its argument).
func (w Writer[T]) Appends() bool { return w.enc.Appends() }

// Append is the package function Append with w's serde.
func (w Writer[T]) Append(sl *Slab, topic string, v T) ([]byte, error) {
	if !w.enc.Appends() {
		return w.enc.Serialize(topic, v)
	}
	if cap(sl.buf)-len(sl.buf) < minFree {
		sl.buf = make([]byte, 0, Size)
	}
	n := len(sl.buf)
	free := sl.buf[n:n:cap(sl.buf)]
	b, err := w.enc.Append(free, topic, v)
	if err != nil || b == nil {
		return b, err
	}
	if len(b) > 0 && cap(b) == cap(free) && &b[0] == &sl.buf[:n+1][n] {
		sl.buf = sl.buf[:n+len(b)] // written in place: take it out of the free tail
	}
	return b[:len(b):len(b)], nil
}
