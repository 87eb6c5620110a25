package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/weir-dev/weir/serde"
)

// Interactive queries: read-only, typed views of an application's stores
// across the tasks of one instance (the runtime's Application) or of the
// test driver, both through Querier, so a query path tested with the driver
// runs unchanged against the runtime.

// ErrUnknownStore is returned for a store the topology does not have.
var ErrUnknownStore = errors.New("state: unknown store")

// ErrNotLocal is returned when the task holding a partition of a store
// runs on another instance (or on none: it is moving). KeyLocation in the
// runtime says where.
var ErrNotLocal = errors.New("state: store partition not held by this instance")

// ErrNotReady is returned when the partition's task is assigned here but
// cannot answer yet: it is restoring its stores, or a rebalance or a long
// processing step kept it busy past the read's deadline. Retry later.
var ErrNotReady = errors.New("state: store partition not ready (restoring or rebalancing)")

// IsNotLocal reports whether err says the partition is held elsewhere.
func IsNotLocal(err error) bool { return errors.Is(err, ErrNotLocal) }

// IsNotReady reports whether err says the partition cannot answer yet.
func IsNotReady(err error) bool { return errors.Is(err, ErrNotReady) }

// Querier reads the stores of the tasks of one instance, one partition at
// a time. The runtime and the test driver implement it.
type Querier interface {
	// PartitionOf returns the partition of store name that holds the
	// encoded key: the one the application's partitioner sends the key to
	// among the partitions of the input topics of the store's
	// sub-topology (0 for a global store, which every instance holds
	// whole).
	PartitionOf(name string, key []byte) (int32, error)
	// LocalPartitions returns the partitions of store name whose active
	// task runs here, sorted.
	LocalPartitions(name string) ([]int32, error)
	// ReadStore calls fn with the active instance of store name for
	// partition, while the task is kept from processing. fn must not keep
	// the store or anything it returned (iterators, slices) after it
	// returns. It fails with ErrNotLocal or ErrNotReady (wrapped) when
	// the partition is not readable here, and does not wait past ctx.
	ReadStore(ctx context.Context, name string, partition int32, fn func(Store) error) error
}

// queryPage is how many entries a view copies out of a store per read, so
// that the task is held off only briefly and the caller's loop runs
// without it.
const queryPage = 256

// KeyValueQuery is a typed, read-only view of a key-value store across the
// local tasks. Make one with NewKeyValueQuery (runtime.KeyValueStore and
// streamstest.KeyValueStoreQuery do).
type KeyValueQuery[K, V any] struct {
	q      Querier
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// NewKeyValueQuery returns a view of the key-value store name; the serdes
// must be those the topology stores with.
func NewKeyValueQuery[K, V any](q Querier, name string, keys serde.Serde[K], values serde.Serde[V]) *KeyValueQuery[K, V] {
	return &KeyValueQuery[K, V]{q: q, name: name, keys: keys, values: values}
}

// Name returns the store's name.
func (v *KeyValueQuery[K, V]) Name() string { return v.name }

// Get returns the value of k and whether it is present. The key's task
// must run here (ErrNotLocal otherwise) and be ready (ErrNotReady).
func (v *KeyValueQuery[K, V]) Get(ctx context.Context, k K) (V, bool, error) {
	var zero V
	kb, err := encodeKey(v.name, v.keys, k)
	if err != nil {
		return zero, false, err
	}
	part, err := v.q.PartitionOf(v.name, kb)
	if err != nil {
		return zero, false, err
	}
	var vb []byte
	err = v.q.ReadStore(ctx, v.name, part, func(s Store) error {
		kv, ok := s.(KeyValueStore)
		if !ok {
			return kindError(v.name, s, KindKeyValue)
		}
		b, err := kv.Get(kb)
		vb = bytes.Clone(b)
		return err
	})
	if err != nil || vb == nil {
		return zero, false, err
	}
	val, err := v.values.Deserialize(v.name, vb)
	if err != nil {
		return zero, false, decodeError(v.name, "value", kb, err)
	}
	return val, true, nil
}

// Range yields the pairs of every local partition whose encoded keys lie in
// [encode(from), encode(to)), merged in encoded-key order. An error is
// yielded once, with a zero Entry, and ends the iteration.
func (v *KeyValueQuery[K, V]) Range(ctx context.Context, from, to K) iter.Seq2[Entry[K, V], error] {
	return func(yield func(Entry[K, V], error) bool) {
		fb, err := encodeKey(v.name, v.keys, from)
		if err != nil {
			yield(Entry[K, V]{}, err)
			return
		}
		tb, err := encodeKey(v.name, v.keys, to)
		if err != nil {
			yield(Entry[K, V]{}, err)
			return
		}
		v.merge(ctx, fb, tb, yield)
	}
}

// All yields every pair of every local partition, merged in encoded-key
// order. Errors as for Range.
func (v *KeyValueQuery[K, V]) All(ctx context.Context) iter.Seq2[Entry[K, V], error] {
	return func(yield func(Entry[K, V], error) bool) { v.merge(ctx, nil, nil, yield) }
}

// RawPair is one key-value pair copied out of a store.
type RawPair struct{ Key, Value []byte }

// ReadRange copies at most limit pairs of partition's instance of the
// key-value store name whose keys lie in [from, to) (nil: unbounded), in
// key order. more says whether pairs remain after the last one returned.
func ReadRange(ctx context.Context, q Querier, name string, partition int32, from, to []byte, limit int) (pairs []RawPair, more bool, err error) {
	err = q.ReadStore(ctx, name, partition, func(s Store) error {
		kv, ok := s.(KeyValueStore)
		if !ok {
			return kindError(name, s, KindKeyValue)
		}
		it, err := kv.Range(from, to, false)
		if err != nil {
			return err
		}
		for it.Next() {
			if len(pairs) == limit {
				more = true
				break
			}
			pairs = append(pairs, RawPair{Key: bytes.Clone(it.Key()), Value: bytes.Clone(it.Value())})
		}
		return it.Close()
	})
	return pairs, more, err
}

// partCursor is one partition's place in a merged range.
type partCursor struct {
	part int32
	next []byte // the next key to read from; nil before the first page
	page []RawPair
	more bool
}

func (v *KeyValueQuery[K, V]) merge(ctx context.Context, from, to []byte, yield func(Entry[K, V], error) bool) {
	parts, err := v.q.LocalPartitions(v.name)
	if err != nil {
		yield(Entry[K, V]{}, err)
		return
	}
	curs := make([]*partCursor, 0, len(parts))
	for _, p := range parts {
		curs = append(curs, &partCursor{part: p, next: from, more: true})
	}
	fill := func(c *partCursor) error {
		if len(c.page) > 0 || !c.more {
			return nil
		}
		page, more, err := ReadRange(ctx, v.q, v.name, c.part, c.next, to, queryPage)
		if err != nil {
			return err
		}
		c.page, c.more = page, more
		if len(page) > 0 {
			c.next = append(bytes.Clone(page[len(page)-1].Key), 0) // the smallest key after the last
		}
		return nil
	}
	for {
		var best *partCursor
		for _, c := range curs {
			if err := fill(c); err != nil {
				yield(Entry[K, V]{}, err)
				return
			}
			if len(c.page) > 0 && (best == nil || bytes.Compare(c.page[0].Key, best.page[0].Key) < 0) {
				best = c
			}
		}
		if best == nil {
			return
		}
		p := best.page[0]
		best.page = best.page[1:]
		k, val, err := decodePair(v.name, v.keys, v.values, p.Key, p.Value)
		if err != nil {
			yield(Entry[K, V]{}, err)
			return
		}
		if !yield(Entry[K, V]{Key: k, Value: val}, nil) {
			return
		}
	}
}

// WindowQuery is a typed, read-only view of a window store across the
// local tasks.
type WindowQuery[K, V any] struct {
	q      Querier
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// NewWindowQuery returns a view of the window store name; the serdes must
// be those the topology stores with.
func NewWindowQuery[K, V any](q Querier, name string, keys serde.Serde[K], values serde.Serde[V]) *WindowQuery[K, V] {
	return &WindowQuery[K, V]{q: q, name: name, keys: keys, values: values}
}

// Name returns the store's name.
func (v *WindowQuery[K, V]) Name() string { return v.name }

// RawWindow is one window copied out of a store.
type RawWindow struct {
	Key   []byte
	Start int64 // ms
	Value []byte
}

// ReadWindows copies at most limit windows of key, in partition's instance
// of the window store name, whose start (ms) lies in [from, to], by
// ascending start. more says whether windows remain after the last.
func ReadWindows(ctx context.Context, q Querier, name string, partition int32, key []byte, from, to int64, limit int) (ws []RawWindow, more bool, err error) {
	err = q.ReadStore(ctx, name, partition, func(s Store) error {
		st, ok := s.(WindowStore)
		if !ok {
			return kindError(name, s, KindWindow)
		}
		it, err := st.Fetch(key, from, to, false)
		if err != nil {
			return err
		}
		for it.Next() {
			if len(ws) == limit {
				more = true
				break
			}
			ws = append(ws, RawWindow{Key: bytes.Clone(it.Key()), Start: it.WindowStart(), Value: bytes.Clone(it.Value())})
		}
		return it.Close()
	})
	return ws, more, err
}

// Fetch yields k's windows whose start lies in [from, to], by ascending
// start. An error is yielded once, with a zero entry, and ends the
// iteration.
func (v *WindowQuery[K, V]) Fetch(ctx context.Context, k K, from, to time.Time) iter.Seq2[WindowEntry[K, V], error] {
	return func(yield func(WindowEntry[K, V], error) bool) {
		kb, err := encodeKey(v.name, v.keys, k)
		if err != nil {
			yield(WindowEntry[K, V]{}, err)
			return
		}
		part, err := v.q.PartitionOf(v.name, kb)
		if err != nil {
			yield(WindowEntry[K, V]{}, err)
			return
		}
		lo, hi := from.UnixMilli(), to.UnixMilli()
		for lo <= hi {
			ws, more, err := ReadWindows(ctx, v.q, v.name, part, kb, lo, hi, queryPage)
			if err != nil {
				yield(WindowEntry[K, V]{}, err)
				return
			}
			for _, w := range ws {
				val, err := v.values.Deserialize(v.name, w.Value)
				if err != nil {
					yield(WindowEntry[K, V]{}, decodeError(v.name, "value", kb, err))
					return
				}
				if !yield(WindowEntry[K, V]{Key: k, Start: time.UnixMilli(w.Start), Value: val}, nil) {
					return
				}
			}
			if !more || len(ws) == 0 {
				return
			}
			lo = ws[len(ws)-1].Start + 1
		}
	}
}

// SessionQuery is a typed, read-only view of a session store across the
// local tasks.
type SessionQuery[K, V any] struct {
	q      Querier
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// NewSessionQuery returns a view of the session store name; the serdes
// must be those the topology stores with.
func NewSessionQuery[K, V any](q Querier, name string, keys serde.Serde[K], values serde.Serde[V]) *SessionQuery[K, V] {
	return &SessionQuery[K, V]{q: q, name: name, keys: keys, values: values}
}

// Name returns the store's name.
func (v *SessionQuery[K, V]) Name() string { return v.name }

// RawSession is one session copied out of a store.
type RawSession struct {
	Key        []byte
	Start, End int64 // ms, both inclusive
	Value      []byte
}

// ReadSessions copies the sessions of key in partition's instance of the
// session store name, ascending by end, then start.
func ReadSessions(ctx context.Context, q Querier, name string, partition int32, key []byte) (ss []RawSession, err error) {
	err = q.ReadStore(ctx, name, partition, func(s Store) error {
		st, ok := s.(SessionStore)
		if !ok {
			return kindError(name, s, KindSession)
		}
		it, err := st.Fetch(key)
		if err != nil {
			return err
		}
		for it.Next() {
			ss = append(ss, RawSession{Key: bytes.Clone(it.Key()), Start: it.Start(), End: it.End(), Value: bytes.Clone(it.Value())})
		}
		return it.Close()
	})
	return ss, err
}

// Fetch yields every session of k, ascending by end, then start. An error
// is yielded once, with a zero entry, and ends the iteration.
func (v *SessionQuery[K, V]) Fetch(ctx context.Context, k K) iter.Seq2[SessionEntry[K, V], error] {
	return func(yield func(SessionEntry[K, V], error) bool) {
		kb, err := encodeKey(v.name, v.keys, k)
		if err != nil {
			yield(SessionEntry[K, V]{}, err)
			return
		}
		part, err := v.q.PartitionOf(v.name, kb)
		if err != nil {
			yield(SessionEntry[K, V]{}, err)
			return
		}
		ss, err := ReadSessions(ctx, v.q, v.name, part, kb)
		if err != nil {
			yield(SessionEntry[K, V]{}, err)
			return
		}
		for _, s := range ss {
			val, err := v.values.Deserialize(v.name, s.Value)
			if err != nil {
				yield(SessionEntry[K, V]{}, decodeError(v.name, "value", kb, err))
				return
			}
			if !yield(SessionEntry[K, V]{Key: k, Start: time.UnixMilli(s.Start), End: time.UnixMilli(s.End), Value: val}, nil) {
				return
			}
		}
	}
}

// kindError says a store is not of the kind a view expects.
func kindError(name string, s Store, want Kind) error {
	got := "unknown"
	switch s.(type) {
	case KeyValueStore:
		got = KindKeyValue.String()
	case WindowStore:
		got = KindWindow.String()
	case SessionStore:
		got = KindSession.String()
	}
	return fmt.Errorf("state: store %q is a %s store, not a %s store", name, got, want)
}
