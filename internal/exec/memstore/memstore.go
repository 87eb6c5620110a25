// Package memstore holds small, unlogged in-memory implementations of the
// state store interfaces (state.KeyValueStore, WindowStore, SessionStore)
// for the test driver and the task engine's own tests: maps, with ordered
// iteration by sorting on demand. They favour simplicity and point-lookup
// speed over range-scan speed, and keep no changelog.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"math"
	"sort"
	"time"

	"github.com/weir-dev/weir/state"
)

var errEmptyKey = errors.New("memstore: empty key")

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// KeyValue is an in-memory state.KeyValueStore.
type KeyValue struct {
	name string
	m    map[string][]byte
}

// NewKeyValue returns an empty store.
func NewKeyValue(name string) *KeyValue { return &KeyValue{name: name, m: map[string][]byte{}} }

// Name implements state.Store.
func (s *KeyValue) Name() string { return s.name }

// Flush implements state.Store (nothing to do).
func (s *KeyValue) Flush(context.Context) error { return nil }

// Close implements state.Store.
func (s *KeyValue) Close() error { return nil }

// Get implements state.KeyValueStore.
func (s *KeyValue) Get(key []byte) ([]byte, error) {
	v, ok := s.m[string(key)]
	if !ok {
		return nil, nil
	}
	return clone(v), nil
}

// Put implements state.KeyValueStore.
func (s *KeyValue) Put(key, value []byte) error {
	if len(key) == 0 {
		return errEmptyKey
	}
	if value == nil {
		delete(s.m, string(key))
		return nil
	}
	if old, ok := s.m[string(key)]; ok && cap(old) >= len(value) {
		s.m[string(key)] = append(old[:0], value...)
		return nil
	}
	s.m[string(key)] = clone(value)
	return nil
}

// PutIfAbsent implements state.KeyValueStore.
func (s *KeyValue) PutIfAbsent(key, value []byte) ([]byte, error) {
	if v, ok := s.m[string(key)]; ok {
		return clone(v), nil
	}
	return nil, s.Put(key, value)
}

// Delete implements state.KeyValueStore.
func (s *KeyValue) Delete(key []byte) error {
	delete(s.m, string(key))
	return nil
}

// Range implements state.KeyValueStore.
func (s *KeyValue) Range(from, to []byte, reverse bool) (state.Iterator, error) {
	return s.iter(func(k []byte) bool {
		return (from == nil || bytes.Compare(k, from) >= 0) && (to == nil || bytes.Compare(k, to) < 0)
	}, reverse), nil
}

// Prefix implements state.KeyValueStore.
func (s *KeyValue) Prefix(prefix []byte, reverse bool) (state.Iterator, error) {
	return s.iter(func(k []byte) bool { return bytes.HasPrefix(k, prefix) }, reverse), nil
}

// All implements state.KeyValueStore.
func (s *KeyValue) All(reverse bool) (state.Iterator, error) {
	return s.iter(func([]byte) bool { return true }, reverse), nil
}

// ApproximateCount implements state.KeyValueStore (exact).
func (s *KeyValue) ApproximateCount() (int64, error) { return int64(len(s.m)), nil }

func (s *KeyValue) iter(keep func([]byte) bool, reverse bool) *kvIter {
	it := &kvIter{i: -1}
	for k, v := range s.m {
		if keep([]byte(k)) {
			it.kvs = append(it.kvs, [2][]byte{[]byte(k), clone(v)})
		}
	}
	sort.Slice(it.kvs, func(i, j int) bool {
		c := bytes.Compare(it.kvs[i][0], it.kvs[j][0])
		if reverse {
			return c > 0
		}
		return c < 0
	})
	return it
}

type kvIter struct {
	kvs [][2][]byte
	i   int
}

func (it *kvIter) Next() bool {
	it.i++
	return it.i < len(it.kvs)
}
func (it *kvIter) Key() []byte   { return it.kvs[it.i][0] }
func (it *kvIter) Value() []byte { return it.kvs[it.i][1] }
func (it *kvIter) Err() error    { return nil }
func (it *kvIter) Close() error  { return nil }

// window entry of one key.
type wentry struct {
	start int64
	value []byte
}

// Window is an in-memory state.WindowStore with retention.
type Window struct {
	name      string
	retention int64
	m         map[string][]wentry // sorted by start
	observed  int64
	expired   int64
	// last caches the entries of the key of the latest lookup (lastKey):
	// an aggregation's Put follows its Get of the same key. Invalidated by
	// every map write.
	lastKey []byte
	last    []wentry
	lastOK  bool
}

// entries returns key's entries, from the last-lookup cache when it holds
// them.
func (s *Window) entries(key []byte) []wentry {
	if s.lastOK && bytes.Equal(key, s.lastKey) {
		return s.last
	}
	es := s.m[string(key)]
	s.lastKey, s.last, s.lastOK = append(s.lastKey[:0], key...), es, true
	return es
}

// NewWindow returns an empty window store keeping windows that start within
// retention of the largest start put (state.DefaultRetention if zero).
func NewWindow(name string, retention time.Duration) *Window {
	if retention <= 0 {
		retention = state.DefaultRetention
	}
	return &Window{name: name, retention: retention.Milliseconds(), m: map[string][]wentry{}, observed: math.MinInt64}
}

// Name implements state.Store.
func (s *Window) Name() string { return s.name }

// Flush implements state.Store.
func (s *Window) Flush(context.Context) error { return nil }

// Close implements state.Store.
func (s *Window) Close() error { return nil }

func (s *Window) minLive() int64 {
	if s.observed == math.MinInt64 {
		return math.MinInt64
	}
	return s.observed - s.retention
}

// Put implements state.WindowStore.
func (s *Window) Put(key []byte, start int64, value []byte) error {
	if len(key) == 0 {
		return errEmptyKey
	}
	if start > s.observed {
		s.observed = start
	}
	if start < s.minLive() {
		s.expired++
		return nil
	}
	es := s.entries(key)
	i := sort.Search(len(es), func(i int) bool { return es[i].start >= start })
	found := i < len(es) && es[i].start == start
	if found && value != nil && (len(es) == 0 || es[0].start >= s.minLive()) {
		// The common update in place: no map write (which would allocate
		// the key string).
		es[i].value = append(es[i].value[:0], value...)
		return nil
	}
	switch {
	case value == nil && found:
		es = append(es[:i], es[i+1:]...)
	case value == nil:
	case found:
		es[i].value = append(es[i].value[:0], value...)
	default:
		es = append(es, wentry{})
		copy(es[i+1:], es[i:])
		es[i] = wentry{start: start, value: clone(value)}
	}
	// Drop expired windows of this key as we go.
	lo := s.minLive()
	j := 0
	for j < len(es) && es[j].start < lo {
		j++
	}
	es = es[j:]
	s.lastOK = false
	if len(es) == 0 {
		delete(s.m, string(key))
	} else {
		s.m[string(key)] = es
	}
	return nil
}

// Get implements state.WindowStore.
func (s *Window) Get(key []byte, start int64) ([]byte, error) {
	if start < s.minLive() {
		return nil, nil
	}
	es := s.entries(key)
	i := sort.Search(len(es), func(i int) bool { return es[i].start >= start })
	if i < len(es) && es[i].start == start {
		return clone(es[i].value), nil
	}
	return nil, nil
}

// Fetch implements state.WindowStore.
func (s *Window) Fetch(key []byte, from, to int64, reverse bool) (state.WindowIterator, error) {
	if lo := s.minLive(); from < lo {
		from = lo
	}
	es := s.m[string(key)]
	i := sort.Search(len(es), func(i int) bool { return es[i].start >= from })
	it := &wIter{i: -1}
	for ; i < len(es) && es[i].start <= to; i++ {
		it.es = append(it.es, wrow{key: key, start: es[i].start, value: es[i].value})
	}
	if reverse {
		for a, b := 0, len(it.es)-1; a < b; a, b = a+1, b-1 {
			it.es[a], it.es[b] = it.es[b], it.es[a]
		}
	}
	return it, nil
}

// FetchAll implements state.WindowStore (ordered by start, then key).
func (s *Window) FetchAll(from, to int64, reverse bool) (state.WindowIterator, error) {
	if lo := s.minLive(); from < lo {
		from = lo
	}
	it := &wIter{i: -1}
	for k, es := range s.m {
		for _, e := range es {
			if e.start >= from && e.start <= to {
				it.es = append(it.es, wrow{key: []byte(k), start: e.start, value: e.value})
			}
		}
	}
	sort.Slice(it.es, func(i, j int) bool {
		a, b := it.es[i], it.es[j]
		less := a.start < b.start || a.start == b.start && bytes.Compare(a.key, b.key) < 0
		if reverse {
			return !less
		}
		return less
	})
	return it, nil
}

// All implements state.WindowStore.
func (s *Window) All(reverse bool) (state.WindowIterator, error) {
	return s.FetchAll(math.MinInt64, math.MaxInt64, reverse)
}

// ObservedStreamTime implements state.WindowStore.
func (s *Window) ObservedStreamTime() int64 { return s.observed }

// ExpiredPuts implements state.WindowStore.
func (s *Window) ExpiredPuts() int64 { return s.expired }

type wrow struct {
	key        []byte
	start, end int64
	value      []byte
}

type wIter struct {
	es []wrow
	i  int
}

func (it *wIter) Next() bool {
	it.i++
	return it.i < len(it.es)
}
func (it *wIter) Key() []byte        { return it.es[it.i].key }
func (it *wIter) WindowStart() int64 { return it.es[it.i].start }
func (it *wIter) Start() int64       { return it.es[it.i].start }
func (it *wIter) End() int64         { return it.es[it.i].end }
func (it *wIter) Value() []byte      { return it.es[it.i].value }
func (it *wIter) Err() error         { return nil }
func (it *wIter) Close() error       { return nil }

// Session is an in-memory state.SessionStore with retention.
type Session struct {
	name      string
	retention int64
	m         map[string][]wrow // sorted by end, start
	observed  int64
	expired   int64
}

// NewSession returns an empty session store keeping sessions that end within
// retention of the largest end put (state.DefaultRetention if zero).
func NewSession(name string, retention time.Duration) *Session {
	if retention <= 0 {
		retention = state.DefaultRetention
	}
	return &Session{name: name, retention: retention.Milliseconds(), m: map[string][]wrow{}, observed: math.MinInt64}
}

// Name implements state.Store.
func (s *Session) Name() string { return s.name }

// Flush implements state.Store.
func (s *Session) Flush(context.Context) error { return nil }

// Close implements state.Store.
func (s *Session) Close() error { return nil }

func (s *Session) minLive() int64 {
	if s.observed == math.MinInt64 {
		return math.MinInt64
	}
	return s.observed - s.retention
}

func (s *Session) find(es []wrow, start, end int64) (int, bool) {
	i := sort.Search(len(es), func(i int) bool {
		return es[i].end > end || es[i].end == end && es[i].start >= start
	})
	return i, i < len(es) && es[i].end == end && es[i].start == start
}

// Put implements state.SessionStore.
func (s *Session) Put(key []byte, start, end int64, value []byte) error {
	if len(key) == 0 {
		return errEmptyKey
	}
	if value == nil {
		return s.Remove(key, start, end)
	}
	if end > s.observed {
		s.observed = end
	}
	if end < s.minLive() {
		s.expired++
		return nil
	}
	es := s.m[string(key)]
	i, found := s.find(es, start, end)
	if found {
		es[i].value = clone(value)
	} else {
		es = append(es, wrow{})
		copy(es[i+1:], es[i:])
		es[i] = wrow{key: clone(key), start: start, end: end, value: clone(value)}
	}
	s.m[string(key)] = es
	return nil
}

// Remove implements state.SessionStore.
func (s *Session) Remove(key []byte, start, end int64) error {
	es := s.m[string(key)]
	if i, found := s.find(es, start, end); found {
		es = append(es[:i], es[i+1:]...)
		if len(es) == 0 {
			delete(s.m, string(key))
		} else {
			s.m[string(key)] = es
		}
	}
	return nil
}

// Get implements state.SessionStore.
func (s *Session) Get(key []byte, start, end int64) ([]byte, error) {
	es := s.m[string(key)]
	if i, found := s.find(es, start, end); found && end >= s.minLive() {
		return clone(es[i].value), nil
	}
	return nil, nil
}

// FindSessions implements state.SessionStore.
func (s *Session) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if lo := s.minLive(); earliestEnd < lo {
		earliestEnd = lo
	}
	it := &wIter{i: -1}
	for _, e := range s.m[string(key)] {
		if e.end >= earliestEnd && e.start <= latestStart {
			it.es = append(it.es, e)
		}
	}
	return it, nil
}

// Fetch implements state.SessionStore.
func (s *Session) Fetch(key []byte) (state.SessionIterator, error) {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

// All implements state.SessionStore.
func (s *Session) All() (state.SessionIterator, error) {
	it := &wIter{i: -1}
	lo := s.minLive()
	for _, es := range s.m {
		for _, e := range es {
			if e.end >= lo {
				it.es = append(it.es, e)
			}
		}
	}
	sort.Slice(it.es, func(i, j int) bool {
		a, b := it.es[i], it.es[j]
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c < 0
		}
		if a.end != b.end {
			return a.end < b.end
		}
		return a.start < b.start
	})
	return it, nil
}

// ObservedStreamTime implements state.SessionStore.
func (s *Session) ObservedStreamTime() int64 { return s.observed }

// ExpiredPuts implements state.SessionStore.
func (s *Session) ExpiredPuts() int64 { return s.expired }

var (
	_ state.KeyValueStore = (*KeyValue)(nil)
	_ state.WindowStore   = (*Window)(nil)
	_ state.SessionStore  = (*Session)(nil)
)
