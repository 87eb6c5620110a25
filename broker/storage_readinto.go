package broker

import (
	"github.com/weir-dev/weir/broker/internal/storage"
	"github.com/weir-dev/weir/broker/internal/topics"
)

var _ topics.BufferReader = (*storageLog)(nil)

// ReadInto is Read into the caller's buffer (see topics.BufferReader).
func (s *storageLog) ReadInto(dst []byte, from topics.Offset, maxBytes int) ([]byte, error) {
	b, err := s.l.ReadInto(dst, from, maxBytes)
	return b, kafkaErr(err)
}

var _ topics.RangeReader = (*storageLog)(nil)

// ReadRange is ReadInto as a file range (see topics.RangeReader).
func (s *storageLog) ReadRange(from topics.Offset, maxBytes, minBytes int) (topics.FileRange, bool, error) {
	r, ok, err := s.l.ReadRange(from, maxBytes, minBytes)
	if !ok || err != nil {
		return nil, false, kafkaErr(err)
	}
	return fileRange(r), true, nil
}

// fileRange is a storage.FileRange as a topics.FileRange.
type fileRange storage.FileRange

func (r fileRange) Range() (int, int64, int) { return r.FD, r.Off, r.Len }
func (r fileRange) Close() error             { return storage.FileRange(r).Close() }
