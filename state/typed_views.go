package state

import (
	"fmt"
	"iter"
	"time"

	"github.com/weir-dev/weir/serde"
)

// Entry is a key and its value, as a typed key-value store's iteration
// yields them.
type Entry[K, V any] struct {
	Key   K
	Value V
}

// All yields every pair in key order, decoded. An error (a key or value
// that does not decode, a failing store) is yielded once, with a zero
// Entry, and ends the iteration.
func (t *TypedKeyValue[K, V]) All() iter.Seq2[Entry[K, V], error] {
	return t.seq(func() (Iterator, error) { return t.Store.All(false) })
}

// Range yields the pairs whose encoded keys lie in [encode(from),
// encode(to)), in key order. Errors as for All.
func (t *TypedKeyValue[K, V]) Range(from, to K) iter.Seq2[Entry[K, V], error] {
	return t.seq(func() (Iterator, error) {
		fb, err := t.key(from)
		if err != nil {
			return nil, err
		}
		tb, err := t.key(to)
		if err != nil {
			return nil, err
		}
		return t.Store.Range(fb, tb, false)
	})
}

func (t *TypedKeyValue[K, V]) seq(open func() (Iterator, error)) iter.Seq2[Entry[K, V], error] {
	return func(yield func(Entry[K, V], error) bool) {
		it, err := open()
		if err != nil {
			yield(Entry[K, V]{}, err)
			return
		}
		stopped := false
		err = t.each(it, func(k K, v V) bool {
			if !yield(Entry[K, V]{Key: k, Value: v}, nil) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil && !stopped {
			yield(Entry[K, V]{}, err)
		}
	}
}

// WindowEntry is a key, the start of one of its windows and the window's
// value.
type WindowEntry[K, V any] struct {
	Key   K
	Start time.Time
	Value V
}

// TypedWindow is a WindowStore seen through a key serde and a value serde,
// with window starts as time.Time (millisecond precision, the scale of
// record timestamps). The store's name is passed to the serdes as the
// topic.
type TypedWindow[K, V any] struct {
	// Store is the byte-level store underneath.
	Store  WindowStore
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// NewTypedWindow wraps s with serdes for its keys and values.
func NewTypedWindow[K, V any](s WindowStore, keys serde.Serde[K], values serde.Serde[V]) *TypedWindow[K, V] {
	return &TypedWindow[K, V]{Store: s, keys: keys, values: values}
}

// Name returns the store's name.
func (t *TypedWindow[K, V]) Name() string { return t.Store.Name() }

// Put sets the value of k in the window starting at start.
func (t *TypedWindow[K, V]) Put(k K, start time.Time, v V) error {
	kb, vb, err := encodePair(t.Store.Name(), t.keys, t.values, k, v)
	if err != nil {
		return err
	}
	return t.Store.Put(kb, start.UnixMilli(), vb)
}

// Delete removes k's entry in the window starting at start.
func (t *TypedWindow[K, V]) Delete(k K, start time.Time) error {
	kb, err := encodeKey(t.Store.Name(), t.keys, k)
	if err != nil {
		return err
	}
	return t.Store.Put(kb, start.UnixMilli(), nil)
}

// Get returns k's value in the window starting at start, and whether there
// is one.
func (t *TypedWindow[K, V]) Get(k K, start time.Time) (V, bool, error) {
	var zero V
	kb, err := encodeKey(t.Store.Name(), t.keys, k)
	if err != nil {
		return zero, false, err
	}
	vb, err := t.Store.Get(kb, start.UnixMilli())
	if err != nil || vb == nil {
		return zero, false, err
	}
	v, err := t.values.Deserialize(t.Store.Name(), vb)
	if err != nil {
		return zero, false, decodeError(t.Store.Name(), "value", kb, err)
	}
	return v, true, nil
}

// Fetch yields k's windows whose start lies in [from, to], by ascending
// start. An error is yielded once, with a zero entry, and ends the
// iteration.
func (t *TypedWindow[K, V]) Fetch(k K, from, to time.Time) iter.Seq2[WindowEntry[K, V], error] {
	return t.seq(func() (WindowIterator, error) {
		kb, err := encodeKey(t.Store.Name(), t.keys, k)
		if err != nil {
			return nil, err
		}
		return t.Store.Fetch(kb, from.UnixMilli(), to.UnixMilli(), false)
	})
}

// All yields every unexpired window of every key (by time segment, then
// key, then start). Errors as for Fetch.
func (t *TypedWindow[K, V]) All() iter.Seq2[WindowEntry[K, V], error] {
	return t.seq(func() (WindowIterator, error) { return t.Store.All(false) })
}

func (t *TypedWindow[K, V]) seq(open func() (WindowIterator, error)) iter.Seq2[WindowEntry[K, V], error] {
	return func(yield func(WindowEntry[K, V], error) bool) {
		it, err := open()
		if err != nil {
			yield(WindowEntry[K, V]{}, err)
			return
		}
		name := t.Store.Name()
		for it.Next() {
			k, v, err := decodePair(name, t.keys, t.values, it.Key(), it.Value())
			if err != nil {
				_ = it.Close()
				yield(WindowEntry[K, V]{}, err)
				return
			}
			if !yield(WindowEntry[K, V]{Key: k, Start: time.UnixMilli(it.WindowStart()), Value: v}, nil) {
				_ = it.Close()
				return
			}
		}
		if err := it.Close(); err != nil {
			yield(WindowEntry[K, V]{}, err)
		}
	}
}

// SessionEntry is a key, one of its sessions (the timestamps of its first
// and last records, both inclusive) and the session's value.
type SessionEntry[K, V any] struct {
	Key        K
	Start, End time.Time
	Value      V
}

// TypedSession is a SessionStore seen through a key serde and a value
// serde, with session bounds as time.Time (millisecond precision). The
// store's name is passed to the serdes as the topic.
type TypedSession[K, V any] struct {
	// Store is the byte-level store underneath.
	Store  SessionStore
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// NewTypedSession wraps s with serdes for its keys and values.
func NewTypedSession[K, V any](s SessionStore, keys serde.Serde[K], values serde.Serde[V]) *TypedSession[K, V] {
	return &TypedSession[K, V]{Store: s, keys: keys, values: values}
}

// Name returns the store's name.
func (t *TypedSession[K, V]) Name() string { return t.Store.Name() }

// Put sets the value of k's session [start, end].
func (t *TypedSession[K, V]) Put(k K, start, end time.Time, v V) error {
	kb, vb, err := encodePair(t.Store.Name(), t.keys, t.values, k, v)
	if err != nil {
		return err
	}
	return t.Store.Put(kb, start.UnixMilli(), end.UnixMilli(), vb)
}

// Remove removes k's session [start, end].
func (t *TypedSession[K, V]) Remove(k K, start, end time.Time) error {
	kb, err := encodeKey(t.Store.Name(), t.keys, k)
	if err != nil {
		return err
	}
	return t.Store.Remove(kb, start.UnixMilli(), end.UnixMilli())
}

// Fetch yields every session of k, by ascending end, then start. An error
// is yielded once, with a zero entry, and ends the iteration.
func (t *TypedSession[K, V]) Fetch(k K) iter.Seq2[SessionEntry[K, V], error] {
	return t.seq(func() (SessionIterator, error) {
		kb, err := encodeKey(t.Store.Name(), t.keys, k)
		if err != nil {
			return nil, err
		}
		return t.Store.Fetch(kb)
	})
}

// FindSessions yields k's sessions that end at or after earliestEnd and
// start at or before latestStart (see SessionStore.FindSessions).
func (t *TypedSession[K, V]) FindSessions(k K, earliestEnd, latestStart time.Time) iter.Seq2[SessionEntry[K, V], error] {
	return t.seq(func() (SessionIterator, error) {
		kb, err := encodeKey(t.Store.Name(), t.keys, k)
		if err != nil {
			return nil, err
		}
		return t.Store.FindSessions(kb, earliestEnd.UnixMilli(), latestStart.UnixMilli())
	})
}

func (t *TypedSession[K, V]) seq(open func() (SessionIterator, error)) iter.Seq2[SessionEntry[K, V], error] {
	return func(yield func(SessionEntry[K, V], error) bool) {
		it, err := open()
		if err != nil {
			yield(SessionEntry[K, V]{}, err)
			return
		}
		name := t.Store.Name()
		for it.Next() {
			k, v, err := decodePair(name, t.keys, t.values, it.Key(), it.Value())
			if err != nil {
				_ = it.Close()
				yield(SessionEntry[K, V]{}, err)
				return
			}
			e := SessionEntry[K, V]{Key: k, Start: time.UnixMilli(it.Start()), End: time.UnixMilli(it.End()), Value: v}
			if !yield(e, nil) {
				_ = it.Close()
				return
			}
		}
		if err := it.Close(); err != nil {
			yield(SessionEntry[K, V]{}, err)
		}
	}
}

func encodeKey[K any](store string, keys serde.Serde[K], k K) ([]byte, error) {
	kb, err := keys.Serialize(store, k)
	if err != nil {
		return nil, fmt.Errorf("state: store %q: encode key: %w", store, err)
	}
	return kb, nil
}

// encodePair encodes a key and a value to put; an empty encoding of the
// value is a value, not a deletion.
func encodePair[K, V any](store string, keys serde.Serde[K], values serde.Serde[V], k K, v V) (kb, vb []byte, err error) {
	if kb, err = encodeKey(store, keys, k); err != nil {
		return nil, nil, err
	}
	vb, err = values.Serialize(store, v)
	if err != nil {
		return nil, nil, fmt.Errorf("state: store %q: encode value of key %s: %w", store, quoteKey(kb), err)
	}
	if vb == nil {
		vb = []byte{}
	}
	return kb, vb, nil
}

func decodePair[K, V any](store string, keys serde.Serde[K], values serde.Serde[V], kb, vb []byte) (K, V, error) {
	var (
		zk K
		zv V
	)
	k, err := keys.Deserialize(store, kb)
	if err != nil {
		return zk, zv, decodeError(store, "key", kb, err)
	}
	v, err := values.Deserialize(store, vb)
	if err != nil {
		return zk, zv, decodeError(store, "value", kb, err)
	}
	return k, v, nil
}
