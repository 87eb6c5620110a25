package client

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// records keeps produced records for reuse once franz-go has called their
// promise: a task's sink and changelog writers produce a record per output
// and per store write, and a fresh *kgo.Record each (about 200 bytes, with
// pointers the collector scans) was a good part of the loop's garbage.
var records = sync.Pool{New: func() any { return new(kgo.Record) }}

// NewRecord returns an empty record for Produce. Hand it back with
// FreeRecord from its promise (franz-go touches a record no more once it
// has called the promise) or when it was never produced.
func NewRecord() *kgo.Record { return records.Get().(*kgo.Record) }

// FreeRecord empties r, keeping its headers' room, and keeps it for
// NewRecord. r must not be used afterwards.
func FreeRecord(r *kgo.Record) {
	h := r.Headers
	clear(h)
	*r = kgo.Record{Headers: h[:0]}
	records.Put(r)
}
