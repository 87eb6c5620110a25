package stateengine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/state"

	"github.com/cockroachdb/pebble/v2"
)

// PersistedStore is one Pebble-backed store partition the engine's
// database holds, open or not.
type PersistedStore struct {
	Name      string
	Partition int32
	// Checkpoint is the changelog offset a restore of the store resumes
	// from: 0 when the store never committed.
	Checkpoint state.Offset
}

// Persisted lists the Pebble-backed store partitions the database holds
// (in-memory stores hold nothing across an Open), ordered by partition
// then name. The runtime reads it at startup to tell the group which tasks
// this instance holds state for. A store whose checkpoint cannot be read
// is listed with checkpoint 0 (its open wipes it).
func (e *Engine) Persisted() ([]PersistedStore, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: []byte{sysPrefix, 'c'}, UpperBound: []byte{sysPrefix, 'c' + 1}})
	if err != nil {
		return nil, fmt.Errorf("state: read catalog: %w", err)
	}
	var out []PersistedStore
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) < 6 || len(v) != 5 {
			continue
		}
		ps := PersistedStore{Name: string(k[6:]), Partition: int32(binary.BigEndian.Uint32(k[2:6]))}
		mv, c, err := e.db.Get(dataKeyPrefix(binary.BigEndian.Uint32(v)))
		switch {
		case err == nil:
			if m, derr := decodeMeta(mv); derr == nil {
				ps.Checkpoint = m.checkpoint
			}
			_ = c.Close()
		case !errors.Is(err, pebble.ErrNotFound):
			_ = it.Close()
			return nil, fmt.Errorf("state: read checkpoint of %q partition %d: %w", ps.Name, ps.Partition, err)
		}
		out = append(out, ps)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("state: read catalog: %w", err)
	}
	return out, nil
}
