package broker

import "github.com/weir-dev/weir/broker/internal/topics"

var _ topics.BufferReader = (*storageLog)(nil)

// ReadInto is Read into the caller's buffer (see topics.BufferReader).
func (s *storageLog) ReadInto(dst []byte, from topics.Offset, maxBytes int) ([]byte, error) {
	b, err := s.l.ReadInto(dst, from, maxBytes)
	return b, kafkaErr(err)
}
