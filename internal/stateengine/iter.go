package stateengine

import "fmt"

// span is one key range [lo, hi) of a backend.
type span struct{ lo, hi []byte }

// spanIter chains backend iterators over spans, in the order given, and
// passes each key to accept, which decodes it and says whether to yield it.
// It is the core of the window and session iterators.
type spanIter struct {
	be      backend
	spans   []span
	reverse bool
	i       int
	cur     rawIter
	err     error
	done    bool
	// acc decodes each raw key and says whether to yield it.
	acc acceptor
}

// acceptor is implemented by the window and session iterators (an
// interface, not a closure, so that building an iterator allocates less).
type acceptor interface {
	// accept decodes a raw key; false skips it, an error stops.
	accept(k []byte) (bool, error)
}

func (s *spanIter) Next() bool {
	if s.done {
		return false
	}
	for {
		if s.cur == nil {
			if s.i >= len(s.spans) {
				s.done = true
				return false
			}
			sp := s.spans[s.i]
			s.i++
			s.cur, s.err = s.be.iter(sp.lo, sp.hi, s.reverse)
			if s.err != nil {
				s.done = true
				return false
			}
		}
		if s.cur.next() {
			ok, err := s.acc.accept(s.cur.key())
			if err != nil {
				s.err = err
				s.stop()
				return false
			}
			if ok {
				return true
			}
			continue
		}
		err := s.cur.close()
		s.cur = nil
		if err != nil {
			s.err = err
			s.done = true
			return false
		}
	}
}

func (s *spanIter) stop() {
	if s.cur != nil {
		if err := s.cur.close(); err != nil && s.err == nil {
			s.err = err
		}
		s.cur = nil
	}
	s.done = true
}

func (s *spanIter) Value() []byte {
	if s.cur == nil {
		return nil
	}
	return s.cur.value()
}
func (s *spanIter) Err() error { return s.err }
func (s *spanIter) Close() error {
	s.stop()
	return s.err
}

func corruptKey(store string, k []byte, err error) error {
	return fmt.Errorf("state: store %q: corrupt key %x: %w", store, k, err)
}
