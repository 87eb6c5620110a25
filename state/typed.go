package state

import (
	"context"
	"fmt"

	"github.com/weir-dev/weir/serde"
)

// decodeError names the store and key of a value (or key) that did not
// decode.
func decodeError(store, what string, key []byte, err error) error {
	return fmt.Errorf("state: store %q: %s of key %s: %w", store, what, quoteKey(key), err)
}

// quoteKey renders a key for an error message, cut at 64 bytes.
func quoteKey(k []byte) string {
	const max = 64
	if len(k) > max {
		return fmt.Sprintf("%q...(%d bytes)", k[:max], len(k))
	}
	return fmt.Sprintf("%q", k)
}

// TypedKeyValue is a KeyValueStore seen through a key serde and a value
// serde. The store's name is passed to the serdes as the topic.
type TypedKeyValue[K, V any] struct {
	// Store is the byte-level store underneath.
	Store  KeyValueStore
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// NewTypedKeyValue wraps s with serdes for its keys and values.
func NewTypedKeyValue[K, V any](s KeyValueStore, keys serde.Serde[K], values serde.Serde[V]) *TypedKeyValue[K, V] {
	return &TypedKeyValue[K, V]{Store: s, keys: keys, values: values}
}

// Name returns the store's name.
func (t *TypedKeyValue[K, V]) Name() string { return t.Store.Name() }

// Flush flushes the store.
func (t *TypedKeyValue[K, V]) Flush(ctx context.Context) error { return t.Store.Flush(ctx) }

func (t *TypedKeyValue[K, V]) key(k K) ([]byte, error) {
	return encodeKey(t.Store.Name(), t.keys, k)
}

// Get returns the value of k and whether it was present.
func (t *TypedKeyValue[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := t.key(k)
	if err != nil {
		return zero, false, err
	}
	vb, err := t.Store.Get(kb)
	if err != nil || vb == nil {
		return zero, false, err
	}
	v, err := t.values.Deserialize(t.Store.Name(), vb)
	if err != nil {
		return zero, false, decodeError(t.Store.Name(), "value", kb, err)
	}
	return v, true, nil
}

// Put sets k to v.
func (t *TypedKeyValue[K, V]) Put(k K, v V) error {
	kb, vb, err := encodePair(t.Store.Name(), t.keys, t.values, k, v)
	if err != nil {
		return err
	}
	return t.Store.Put(kb, vb)
}

// Delete removes k.
func (t *TypedKeyValue[K, V]) Delete(k K) error {
	kb, err := t.key(k)
	if err != nil {
		return err
	}
	return t.Store.Delete(kb)
}

// Each calls fn for every pair in key order (reverse order with reverse),
// decoding keys and values, until fn returns false or an error happens.
func (t *TypedKeyValue[K, V]) Each(reverse bool, fn func(k K, v V) bool) error {
	it, err := t.Store.All(reverse)
	if err != nil {
		return err
	}
	return t.each(it, fn)
}

// EachInRange is Each over the keys in [from, to) of the encoded keys.
func (t *TypedKeyValue[K, V]) EachInRange(from, to K, reverse bool, fn func(k K, v V) bool) error {
	fb, err := t.key(from)
	if err != nil {
		return err
	}
	tb, err := t.key(to)
	if err != nil {
		return err
	}
	it, err := t.Store.Range(fb, tb, reverse)
	if err != nil {
		return err
	}
	return t.each(it, fn)
}

func (t *TypedKeyValue[K, V]) each(it Iterator, fn func(k K, v V) bool) error {
	name := t.Store.Name()
	for it.Next() {
		k, v, err := decodePair(name, t.keys, t.values, it.Key(), it.Value())
		if err != nil {
			_ = it.Close()
			return err
		}
		if !fn(k, v) {
			break
		}
	}
	return it.Close()
}
