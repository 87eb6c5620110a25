package streamstest

import (
	"context"
	"fmt"
	"slices"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// The driver answers the same typed queries as the runtime's Application
// (QueryKeyValue, QueryWindow, QuerySession return the same state views),
// so a query path is tested without a broker. Every task runs here, so
// every partition is local and ready.

var _ state.Querier = (*Driver)(nil)

// storeSub returns the sub-topology owning store name, and whether it is
// global.
func (d *Driver) storeSub(name string) (streams.SubtopologyID, bool, error) {
	spec, ok := d.topo.Store(name)
	if !ok {
		return 0, false, fmt.Errorf("%w: %q (streamstest)", state.ErrUnknownStore, name)
	}
	if spec.Global {
		return 0, true, nil
	}
	for _, st := range d.topo.Subtopologies() {
		if slices.Contains(st.Stores, name) {
			return st.ID, false, nil
		}
	}
	return 0, false, fmt.Errorf("%w: %q is used by no sub-topology", state.ErrUnknownStore, name)
}

// PartitionOf implements state.Querier with the partitioner the driver
// places keyed records with.
func (d *Driver) PartitionOf(name string, key []byte) (int32, error) {
	st, global, err := d.storeSub(name)
	if err != nil || global {
		return 0, err
	}
	n := d.subParts[st]
	if n == 0 {
		return 0, fmt.Errorf("%w: store %q: sub-topology %d has no tasks", state.ErrNotReady, name, st)
	}
	return int32(streams.KeyPartition(key, n)), nil
}

// LocalPartitions implements state.Querier: every partition whose task
// opened the store.
func (d *Driver) LocalPartitions(name string) ([]int32, error) {
	st, global, err := d.storeSub(name)
	if err != nil {
		return nil, err
	}
	if global {
		return []int32{0}, nil
	}
	var out []int32
	for _, t := range d.tasks {
		if id := t.ID(); id.Subtopology == st {
			if _, ok := d.stores[storeKey{name: name, task: id}]; ok {
				out = append(out, int32(id.Partition))
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// ReadStore implements state.Querier.
func (d *Driver) ReadStore(_ context.Context, name string, partition int32, fn func(state.Store) error) error {
	st, global, err := d.storeSub(name)
	if err != nil {
		return err
	}
	if global {
		ss, err := d.storeInstances(name)
		if err != nil {
			return err
		}
		if len(ss) == 0 {
			return fmt.Errorf("%w: global store %q is not open", state.ErrNotReady, name)
		}
		return fn(ss[0])
	}
	s, ok := d.stores[storeKey{name: name, task: streams.TaskID{Subtopology: st, Partition: streams.Partition(partition)}}]
	if !ok {
		return fmt.Errorf("%w: store %q partition %d (streamstest: no such task)", state.ErrNotLocal, name, partition)
	}
	return fn(s)
}

// QueryKeyValue returns a typed, read-only view of the key-value store
// name across the driver's tasks, as runtime.QueryKeyValue does for an
// application instance.
func QueryKeyValue[K, V any](d *Driver, store string, keys serde.Serde[K], values serde.Serde[V]) *state.KeyValueQuery[K, V] {
	return state.NewKeyValueQuery(d, store, keys, values)
}

// QueryWindow returns a typed, read-only view of the window store name.
func QueryWindow[K, V any](d *Driver, store string, keys serde.Serde[K], values serde.Serde[V]) *state.WindowQuery[K, V] {
	return state.NewWindowQuery(d, store, keys, values)
}

// QuerySession returns a typed, read-only view of the session store name.
func QuerySession[K, V any](d *Driver, store string, keys serde.Serde[K], values serde.Serde[V]) *state.SessionQuery[K, V] {
	return state.NewSessionQuery(d, store, keys, values)
}
