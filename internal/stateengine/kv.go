package stateengine

import "github.com/weir-dev/weir/state"
import "bytes"

// kvStore is the KeyValueStore on a backend: user keys are the backend's
// keys as they are.
type kvStore struct {
	*base
	data backend
}

func newKVStore(b *base, data backend) *kvStore { return &kvStore{base: b, data: data} }

func (s *kvStore) Get(key []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.rc != nil {
		if v, ok := s.rc.Get(s.rcPrefix + string(key)); ok {
			return append(make([]byte, 0, len(v)), v...), nil
		}
	}
	v, err := s.data.get(key)
	if err != nil || v == nil {
		return nil, err
	}
	if s.rc != nil {
		c := append([]byte(nil), v...)
		s.rc.Set(s.rcPrefix+string(key), c, int64(len(key)+len(c)+64))
	}
	return v, nil
}

func (s *kvStore) Put(key, value []byte) error {
	if value == nil {
		return s.Delete(key)
	}
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	s.rcInvalidate(key)
	if err := s.data.set(key, value); err != nil {
		return err
	}
	if err := s.logChange(key, value); err != nil {
		return err
	}
	return s.afterWrite()
}

// apply writes a restored change without logging it.
func (s *kvStore) apply(key, value []byte) error {
	if value == nil {
		return s.data.del(key)
	}
	return s.data.set(key, value)
}

func (s *kvStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := s.Get(key)
	if err != nil || old != nil {
		return old, err
	}
	return nil, s.Put(key, value)
}

func (s *kvStore) Delete(key []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	s.rcInvalidate(key)
	if err := s.data.del(key); err != nil {
		return err
	}
	if err := s.logChange(key, nil); err != nil {
		return err
	}
	return s.afterWrite()
}

func (s *kvStore) Range(from, to []byte, reverse bool) (state.Iterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if from != nil && to != nil && bytes.Compare(from, to) >= 0 {
		return emptyIter{}, nil
	}
	it, err := s.data.iter(from, to, reverse)
	if err != nil {
		return nil, err
	}
	return kvIter{it}, nil
}

func (s *kvStore) Prefix(prefix []byte, reverse bool) (state.Iterator, error) {
	return s.Range(prefix, prefixEnd(prefix), reverse)
}

func (s *kvStore) All(reverse bool) (state.Iterator, error) {
	return s.Range(nil, nil, reverse)
}

func (s *kvStore) ApproximateCount() (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return s.data.count()
}

// prefixEnd returns the smallest key greater than every key starting with
// prefix, or nil if there is none (prefix is all 0xFF or empty).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

type kvIter struct{ rawIter }

func (i kvIter) Next() bool    { return i.next() }
func (i kvIter) Key() []byte   { return i.key() }
func (i kvIter) Value() []byte { return i.value() }
func (i kvIter) Err() error    { return i.err() }
func (i kvIter) Close() error  { return i.close() }

type emptyIter struct{}

func (emptyIter) Next() bool         { return false }
func (emptyIter) Key() []byte        { return nil }
func (emptyIter) Value() []byte      { return nil }
func (emptyIter) WindowStart() int64 { return 0 }
func (emptyIter) Start() int64       { return 0 }
func (emptyIter) End() int64         { return 0 }
func (emptyIter) Err() error         { return nil }
func (emptyIter) Close() error       { return nil }
