package streamstest

import (
	"fmt"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// KeyValueStore is a typed, read-only view of a key-value store across the
// driver's tasks: a key is looked up in the task of its partition.
type KeyValueStore[K, V any] struct {
	d    *Driver
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// GetKeyValueStore returns a typed view of the key-value store name; the
// serdes must be those the topology stores with.
func GetKeyValueStore[K, V any](d *Driver, name string, keySerde serde.Serde[K], valueSerde serde.Serde[V]) *KeyValueStore[K, V] {
	return &KeyValueStore[K, V]{d: d, name: name, ks: keySerde, vs: valueSerde}
}

func kvInstances(d *Driver, name string) ([]state.KeyValueStore, error) {
	ss, err := d.storeInstances(name)
	if err != nil {
		return nil, err
	}
	out := make([]state.KeyValueStore, 0, len(ss))
	for _, s := range ss {
		kv, ok := s.(state.KeyValueStore)
		if !ok {
			return nil, fmt.Errorf("streamstest: store %q is not a key-value store", name)
		}
		out = append(out, kv)
	}
	return out, nil
}

// Get returns the value of k and whether it is present.
func (s *KeyValueStore[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := s.ks.Serialize(s.name, k)
	if err != nil {
		return zero, false, err
	}
	kvs, err := kvInstances(s.d, s.name)
	if err != nil {
		return zero, false, err
	}
	for _, kv := range kvs {
		b, err := kv.Get(kb)
		if err != nil {
			return zero, false, err
		}
		if b != nil {
			v, err := s.vs.Deserialize(s.name, b)
			return v, err == nil, err
		}
	}
	return zero, false, nil
}

// All returns every key and value, store instance by instance, each in key
// order.
func (s *KeyValueStore[K, V]) All() ([]dsl.KeyValue[K, V], error) {
	kvs, err := kvInstances(s.d, s.name)
	if err != nil {
		return nil, err
	}
	var out []dsl.KeyValue[K, V]
	for _, kv := range kvs {
		it, err := kv.All(false)
		if err != nil {
			return nil, err
		}
		for it.Next() {
			k, err := s.ks.Deserialize(s.name, it.Key())
			if err != nil {
				it.Close()
				return nil, err
			}
			v, err := s.vs.Deserialize(s.name, it.Value())
			if err != nil {
				it.Close()
				return nil, err
			}
			out = append(out, dsl.KeyValue[K, V]{Key: k, Value: v})
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WindowValue is one window of a window store: its start (ms) and value.
type WindowValue[V any] struct {
	Start int64
	Value V
}

// WindowStore is a typed, read-only view of a window store.
type WindowStore[K, V any] struct {
	d    *Driver
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// GetWindowStore returns a typed view of the window store name.
func GetWindowStore[K, V any](d *Driver, name string, keySerde serde.Serde[K], valueSerde serde.Serde[V]) *WindowStore[K, V] {
	return &WindowStore[K, V]{d: d, name: name, ks: keySerde, vs: valueSerde}
}

// Fetch returns k's windows starting in [from, to] (ms), ascending.
func (s *WindowStore[K, V]) Fetch(k K, from, to int64) ([]WindowValue[V], error) {
	kb, err := s.ks.Serialize(s.name, k)
	if err != nil {
		return nil, err
	}
	ss, err := s.d.storeInstances(s.name)
	if err != nil {
		return nil, err
	}
	var out []WindowValue[V]
	for _, st := range ss {
		ws, ok := st.(state.WindowStore)
		if !ok {
			return nil, fmt.Errorf("streamstest: store %q is not a window store", s.name)
		}
		it, err := ws.Fetch(kb, from, to, false)
		if err != nil {
			return nil, err
		}
		for it.Next() {
			v, err := s.vs.Deserialize(s.name, it.Value())
			if err != nil {
				it.Close()
				return nil, err
			}
			out = append(out, WindowValue[V]{Start: it.WindowStart(), Value: v})
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SessionValue is one session of a session store.
type SessionValue[V any] struct {
	Start, End int64
	Value      V
}

// SessionStore is a typed, read-only view of a session store.
type SessionStore[K, V any] struct {
	d    *Driver
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// GetSessionStore returns a typed view of the session store name.
func GetSessionStore[K, V any](d *Driver, name string, keySerde serde.Serde[K], valueSerde serde.Serde[V]) *SessionStore[K, V] {
	return &SessionStore[K, V]{d: d, name: name, ks: keySerde, vs: valueSerde}
}

// Fetch returns k's sessions, ascending by end.
func (s *SessionStore[K, V]) Fetch(k K) ([]SessionValue[V], error) {
	kb, err := s.ks.Serialize(s.name, k)
	if err != nil {
		return nil, err
	}
	ss, err := s.d.storeInstances(s.name)
	if err != nil {
		return nil, err
	}
	var out []SessionValue[V]
	for _, st := range ss {
		ws, ok := st.(state.SessionStore)
		if !ok {
			return nil, fmt.Errorf("streamstest: store %q is not a session store", s.name)
		}
		it, err := ws.Fetch(kb)
		if err != nil {
			return nil, err
		}
		for it.Next() {
			v, err := s.vs.Deserialize(s.name, it.Value())
			if err != nil {
				it.Close()
				return nil, err
			}
			out = append(out, SessionValue[V]{Start: it.Start(), End: it.End(), Value: v})
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RawStore returns the store instance of name in task id, for tests that
// need the untyped interface.
func (d *Driver) RawStore(name string, id streams.TaskID) (state.Store, bool) {
	s, ok := d.stores[storeKey{name: name, task: id}]
	return s, ok
}
