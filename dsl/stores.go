package dsl

import (
	"fmt"
	"time"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// StoreHandle is a store a custom processor may use: a store declared with
// KeyValueStore, WindowStore or SessionStore, or the store of a table.
// Pass it to Process with Stores.
type StoreHandle interface {
	// StoreName returns the store's name.
	StoreName() string
}

// StoreContext opens a processor's stores. Every streams.ProcessorContext
// is one: a processor opens its stores in Init with handle.Open(ctx).
type StoreContext interface {
	Store(name string) (any, error)
}

// Stores connects a Process node to the stores it uses. Only Process
// takes it.
func Stores(handles ...StoreHandle) Opt {
	return option{optStores, func(c *opConfig) {
		for _, h := range handles {
			c.stores = append(c.stores, h.StoreName())
		}
	}}
}

// KeyValueHandle is a typed key-value store declared with KeyValueStore.
type KeyValueHandle[K, V any] struct {
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// KeyValueStore declares a key-value store named name, with its changelog
// ("<application>-<name>-changelog"), for custom processors (Process with
// Stores). Opts: InMemory (default: on Pebble).
func KeyValueStore[K, V any](b *Builder, name string, keys serde.Serde[K], values serde.Serde[V], opts ...Opt) KeyValueHandle[K, V] {
	c := b.config("KeyValueStore", opts, optInMemory)
	AddStore(b, streams.StoreSpec{Spec: state.Spec{Name: name, Kind: state.KindKeyValue, InMemory: c.inMemory}})
	return KeyValueHandle[K, V]{name: name, keys: keys, values: values}
}

// StoreName returns the store's name.
func (h KeyValueHandle[K, V]) StoreName() string { return h.name }

// Open returns the task's instance of the store, typed. Call it from a
// processor's Init; the node must be connected to the store (Stores).
func (h KeyValueHandle[K, V]) Open(ctx StoreContext) (*state.TypedKeyValue[K, V], error) {
	s, err := openStore[state.KeyValueStore](ctx, h.name, "a key-value")
	if err != nil {
		return nil, err
	}
	return state.NewTypedKeyValue(s, h.keys, h.values), nil
}

// WindowHandle is a typed window store declared with WindowStore.
type WindowHandle[K, V any] struct {
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// WindowStore declares a window store named name that keeps windows for
// retention of stream time, for custom processors (Process with Stores).
// Opts: InMemory (default: on Pebble).
func WindowStore[K, V any](b *Builder, name string, keys serde.Serde[K], values serde.Serde[V], retention time.Duration, opts ...Opt) WindowHandle[K, V] {
	c := b.config("WindowStore", opts, optInMemory)
	AddStore(b, streams.StoreSpec{Spec: state.Spec{Name: name, Kind: state.KindWindow, InMemory: c.inMemory, Retention: retention}})
	return WindowHandle[K, V]{name: name, keys: keys, values: values}
}

// StoreName returns the store's name.
func (h WindowHandle[K, V]) StoreName() string { return h.name }

// Open returns the task's instance of the store, typed (see
// KeyValueHandle.Open).
func (h WindowHandle[K, V]) Open(ctx StoreContext) (*state.TypedWindow[K, V], error) {
	s, err := openStore[state.WindowStore](ctx, h.name, "a window")
	if err != nil {
		return nil, err
	}
	return state.NewTypedWindow(s, h.keys, h.values), nil
}

// SessionHandle is a typed session store declared with SessionStore.
type SessionHandle[K, V any] struct {
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// SessionStore declares a session store named name that keeps sessions for
// retention of stream time, for custom processors (Process with Stores).
// Opts: InMemory (default: on Pebble).
func SessionStore[K, V any](b *Builder, name string, keys serde.Serde[K], values serde.Serde[V], retention time.Duration, opts ...Opt) SessionHandle[K, V] {
	c := b.config("SessionStore", opts, optInMemory)
	AddStore(b, streams.StoreSpec{Spec: state.Spec{Name: name, Kind: state.KindSession, InMemory: c.inMemory, Retention: retention}})
	return SessionHandle[K, V]{name: name, keys: keys, values: values}
}

// StoreName returns the store's name.
func (h SessionHandle[K, V]) StoreName() string { return h.name }

// Open returns the task's instance of the store, typed (see
// KeyValueHandle.Open).
func (h SessionHandle[K, V]) Open(ctx StoreContext) (*state.TypedSession[K, V], error) {
	s, err := openStore[state.SessionStore](ctx, h.name, "a session")
	if err != nil {
		return nil, err
	}
	return state.NewTypedSession(s, h.keys, h.values), nil
}

func openStore[S any](ctx StoreContext, name, kind string) (S, error) {
	var zero S
	s, err := ctx.Store(name)
	if err != nil {
		return zero, err
	}
	typed, ok := s.(S)
	if !ok {
		return zero, fmt.Errorf("dsl: store %q is not %s store (it is a %T)", name, kind, s)
	}
	return typed, nil
}
