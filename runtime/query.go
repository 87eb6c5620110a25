package runtime

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/weir-dev/weir/runtime/internal/app"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// Interactive queries. An Application answers typed, read-only queries of
// its stores across the tasks it runs (QueryKeyValue, QueryWindow,
// QuerySession: the test driver has the same functions over the same
// views, so a query path is tested without a broker), says where the task
// holding a key runs (KeyLocation), and with the QueryAddr option serves
// the same reads over HTTP/JSON, forwarding a key held elsewhere to the
// instance holding it.
//
// A read takes the task's turn: it never runs beside the task's
// processing, so it sees the store as of the last record processed
// (writes still in the task's write-back cache included). A key whose
// task runs on another instance is state.ErrNotLocal; a task restoring
// its stores, or an instance too busy to answer within the read's
// deadline, is state.ErrNotReady: never a stale or missing value passed
// off as current.

var _ state.Querier = (*Application)(nil)

// PartitionOf implements state.Querier.
func (a *Application) PartitionOf(store string, key []byte) (int32, error) {
	return a.a.PartitionOf(store, key)
}

// LocalPartitions implements state.Querier.
func (a *Application) LocalPartitions(store string) ([]int32, error) {
	return a.a.LocalPartitions(store)
}

// ReadStore implements state.Querier.
func (a *Application) ReadStore(ctx context.Context, store string, partition int32, fn func(state.Store) error) error {
	return a.a.ReadStore(ctx, store, partition, fn)
}

// QueryKeyValue returns a typed, read-only view of the key-value store
// name across the instance's tasks; the serdes must be those the topology
// stores with.
func QueryKeyValue[K, V any](a *Application, store string, keys serde.Serde[K], values serde.Serde[V]) *state.KeyValueQuery[K, V] {
	return state.NewKeyValueQuery(a, store, keys, values)
}

// QueryWindow returns a typed, read-only view of the window store name.
func QueryWindow[K, V any](a *Application, store string, keys serde.Serde[K], values serde.Serde[V]) *state.WindowQuery[K, V] {
	return state.NewWindowQuery(a, store, keys, values)
}

// QuerySession returns a typed, read-only view of the session store name.
func QuerySession[K, V any](a *Application, store string, keys serde.Serde[K], values serde.Serde[V]) *state.SessionQuery[K, V] {
	return state.NewSessionQuery(a, store, keys, values)
}

// KeyLocation is where the task holding a key of a store runs.
type KeyLocation struct {
	Store string
	// Partition is the partition the key belongs to (the application's
	// partitioner over the store's input topics), and Task its task.
	Partition int32
	Task      streams.TaskID
	// Active is the query address of the instance running the task: ""
	// when no instance does right now (the task is moving between
	// instances) or its instance advertises no address (no QueryAddr).
	Active string
	// Standbys are the query addresses of the instances keeping standby
	// copies of the task's stores, sorted.
	Standbys []string
	// Local is true when this instance runs the task.
	Local bool
}

// KeyLocation says where the task holding the encoded key of store runs,
// from the group's last assignment (every instance's QueryAddr is carried
// in it). It fails with state.ErrUnknownStore for a store the topology
// lacks and state.ErrNotReady before the instance has joined its group.
func (a *Application) KeyLocation(store string, key []byte) (KeyLocation, error) {
	l, err := a.a.KeyLocation(store, key)
	if err != nil {
		return KeyLocation{}, err
	}
	return KeyLocation(l), nil
}

// LocateKey is KeyLocation for a typed key, encoded with keys.
func LocateKey[K any](a *Application, store string, keys serde.Serde[K], key K) (KeyLocation, error) {
	kb, err := keys.Serialize(store, key)
	if err != nil {
		return KeyLocation{}, fmt.Errorf("runtime: store %q: encode key: %w", store, err)
	}
	return a.KeyLocation(store, kb)
}

// QueryAddr returns the query address the instance advertises (the
// QueryAddr option's, with the port chosen when it asked for port 0, and
// the host name for an unspecified host), or "" when the endpoint is off.
func (a *Application) QueryAddr() string { return a.a.QueryAddr() }

// QueryAddr turns on the interactive query endpoint: an HTTP server on
// addr (host:port; port 0 picks one, see Application.QueryAddr) answering
// JSON reads of the stores registered with QueryStore, forwarding a key
// held by another instance to it. The instance advertises the address to
// the others through the group. Bind it to an address the other instances
// can reach. Default "" (off).
//
//	GET /stores                                   the stores
//	GET /stores/{store}/key?key=K[&standby=true]  one key (404 when absent)
//	GET /stores/{store}/range?[from=K][&to=K][&limit=N][&cursor=C]
//	GET /stores/{store}/windows?key=K[&from=T][&to=T][&limit=N][&cursor=C]
//	GET /stores/{store}/sessions?key=K
//	GET /location?store=S&key=K
//
// A restoring task or a moving partition answers 503 with Retry-After;
// standby=true lets a standby copy answer, with "standby": true and "lag",
// the changelog records it is behind.
func QueryAddr(addr string) Option {
	return optFunc(func(c *config) { c.app.QueryAddr = addr })
}

// QueryStore lets the query endpoint read store, rendering its keys and
// values as JSON with the serdes the topology stores with (JSON of the
// decoded Go values), and parsing a key from a request's text: as it is for
// a string key, as JSON otherwise. Default: no store is readable over HTTP.
func QueryStore[K, V any](store string, keys serde.Serde[K], values serde.Serde[V]) Option {
	return optFunc(func(c *config) {
		if c.app.QueryStores == nil {
			c.app.QueryStores = map[string]app.QueryCodec{}
		}
		c.app.QueryStores[store] = jsonCodec[K, V]{keys: keys, values: values}
	})
}

// jsonCodec renders a store's keys and values as the JSON of their
// decoded Go values.
type jsonCodec[K, V any] struct {
	keys   serde.Serde[K]
	values serde.Serde[V]
}

func (c jsonCodec[K, V]) ParseKey(store, text string) ([]byte, error) {
	var k K
	if p, ok := any(&k).(*string); ok {
		*p = text
	} else if err := json.Unmarshal([]byte(text), &k); err != nil {
		return nil, fmt.Errorf("as JSON for %T: %w", k, err)
	}
	return c.keys.Serialize(store, k)
}

func (c jsonCodec[K, V]) KeyJSON(store string, b []byte) (json.RawMessage, error) {
	k, err := c.keys.Deserialize(store, b)
	if err != nil {
		return nil, err
	}
	return json.Marshal(k)
}

func (c jsonCodec[K, V]) ValueJSON(store string, b []byte) (json.RawMessage, error) {
	v, err := c.values.Deserialize(store, b)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
