package stateengine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/state"
	"math"
)

// storeMeta keeps what every store persists beside its data: its meta
// (changelog checkpoint and stream time), committed with the data. The
// in-memory stores keep their data themselves and only their meta here
// (memMeta); the Pebble stores keep both in a pebbleBackend.
type storeMeta interface {
	// pending returns the bytes written since the last commit.
	pending() int
	// commit makes every write so far and m durable, atomically.
	commit(m meta) error
	// loadMeta returns the committed meta (zero meta if none), or an error
	// wrapping errCorruptMeta.
	loadMeta() (meta, error)
	// wipe deletes every key and the meta, committed or not.
	wipe() error
	// bulk switches to a write-only mode for restores (no reads until the
	// next commit); Pebble then uses an unindexed batch.
	bulk()
	close() error
}

// backend is the ordered byte map one store (one name and partition) keeps
// its data in. Writes are buffered until commit, which makes them durable
// atomically together with the store's meta (its changelog checkpoint). The
// Pebble store types (kvStore, windowStore, sessionStore) build on it.
type backend interface {
	storeMeta
	// get returns a copy of key's value, or nil if absent.
	get(key []byte) ([]byte, error)
	set(key, value []byte) error
	del(key []byte) error
	// delRange deletes the keys in [from, to).
	delRange(from, to []byte) error
	// iter iterates [lower, upper); nil bounds are open.
	iter(lower, upper []byte, reverse bool) (rawIter, error)
	// count returns the number of keys: exact in memory; on Pebble exact
	// for small stores and estimated past that (see pebbleBackend.count).
	count() (int64, error)
}

// rawIter walks a backend's keys. key and value are valid until next.
type rawIter interface {
	next() bool
	key() []byte
	value() []byte
	err() error
	close() error
}

// meta is what a store persists beside its data, in the same batch.
type meta struct {
	// checkpoint is the changelog offset to resume a restore from: every
	// record below it is reflected in the data. 0 for a new store.
	checkpoint state.Offset
	// observed is the observed stream time of a window or session store
	// (math.MinInt64 if none).
	observed int64
}

var zeroMeta = meta{checkpoint: 0, observed: math.MinInt64}

const metaVersion = 1
const metaLen = 1 + 8 + 8

var errCorruptMeta = errors.New("state: corrupt store checkpoint")

func (m meta) encode() []byte {
	b := make([]byte, 0, metaLen)
	b = append(b, metaVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(m.checkpoint))
	return binary.BigEndian.AppendUint64(b, uint64(m.observed))
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) != metaLen || b[0] != metaVersion {
		return meta{}, fmt.Errorf("%w: %d bytes, version %d", errCorruptMeta, len(b), firstByte(b))
	}
	m := meta{
		checkpoint: state.Offset(binary.BigEndian.Uint64(b[1:])),
		observed:   int64(binary.BigEndian.Uint64(b[9:])),
	}
	if m.checkpoint < 0 {
		return meta{}, fmt.Errorf("%w: negative offset %d", errCorruptMeta, m.checkpoint)
	}
	return m, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}
