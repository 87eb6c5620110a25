package stateengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/state"

	"github.com/dgraph-io/ristretto/v2"
)

// base is what every store shares: its backend, meta, changelog and the
// bookkeeping against the engine's budget. The kind-specific stores embed it.
type base struct {
	e          *Engine
	spec       state.Spec
	partition  int32
	changelog  state.ChangelogWriter // nil: unlogged
	catalogKey string
	// be keeps the store's meta, and on Pebble its data (the store types
	// reach it as a backend: kvStore.data, pebbleTimed.data).
	be storeMeta
	// m is the meta to commit next: checkpoint of the last commit (or
	// restore), observed stream time as of now.
	m meta
	// rc is the engine's read cache when the store uses it; keys there are
	// rcPrefix + key.
	rc       *ristretto.Cache[string, []byte]
	rcPrefix string
	rcID     uint32
	// accounted is this store's share of e.batchUsed.
	accounted int64
	closed    bool
	// onReload lets window and session stores reset their retention
	// bookkeeping when the meta is reloaded.
	onReload func()
	// onWipe lets a store that keeps its data outside the backend (the
	// in-memory window store) drop it with the backend's.
	onWipe func()
	// logSlab is the free tail of the buffer changelog copies are carved
	// from (see logChange).
	logSlab []byte
	// deferred is set when the changelog is transactional (see
	// TransactionalChangelog): Flush then only prepares (the writes stay
	// in the uncommitted batch, the checkpoint in m), and Persist commits
	// them once the transaction holding their changelog records has
	// committed. Invariant: nothing the backend holds comes from a
	// transaction that has not committed.
	deferred bool
	// prepared is set by a deferred Flush and cleared by Persist.
	prepared bool
}

// TransactionalChangelog is a state.ChangelogWriter whose records become
// visible to read_committed readers only when a transaction the caller
// ends commits. A store opened with one that says Transactional never
// writes to its backend on Flush: Flush waits for the changelog and records
// the checkpoint to commit, and Persist commits the store's writes with
// it once the transaction has committed. Closing the store instead (the
// transaction aborted) drops them, and a restore replays only committed
// changelog records: the store never holds state of an aborted
// transaction, even after a crash.
type TransactionalChangelog interface {
	state.ChangelogWriter
	Transactional() bool
}

// Persist commits what the last Flush of s prepared, when s was opened
// with a TransactionalChangelog; otherwise (or with nothing prepared) it
// does nothing. Call it once the transaction holding the changelog records
// of that Flush has committed, and before s is written again.
func Persist(s state.Store) error {
	so, ok := s.(storeOf)
	if !ok {
		return nil
	}
	b := so.baseStore()
	if !b.deferred || !b.prepared {
		return nil
	}
	if err := b.check(); err != nil {
		return err
	}
	b.prepared = false
	return b.commitBackend()
}

// Name returns the store's name.
func (b *base) Name() string { return b.spec.Name }

func (b *base) check() error {
	if b.closed {
		return fmt.Errorf("%w: store %q partition %d", ErrClosed, b.spec.Name, b.partition)
	}
	return nil
}

// logSlabSize is the size of the buffers changelog copies are carved from.
const logSlabSize = 8 << 10

// logChange appends a change to the changelog. key and value are copied,
// since the writer may keep them: carved from a shared buffer that is
// never written again where a copy lies (the garbage collector frees it
// with the last record using it), or, when large, allocated on their own.
func (b *base) logChange(key, value []byte) error {
	if b.changelog == nil {
		return nil
	}
	n := len(key) + len(value)
	var buf []byte
	switch {
	case n > logSlabSize/8:
		buf = make([]byte, n)
	default:
		if len(b.logSlab) < n {
			b.logSlab = make([]byte, logSlabSize)
		}
		buf, b.logSlab = b.logSlab[:n:n], b.logSlab[n:]
	}
	k := buf[:len(key):len(key)]
	copy(k, key)
	var v []byte
	if value != nil {
		v = buf[len(key):n:n]
		copy(v, value)
	}
	if err := b.changelog.Append(k, v); err != nil {
		return fmt.Errorf("state: store %q partition %d: changelog append: %w", b.spec.Name, b.partition, err)
	}
	return nil
}

// afterWrite accounts the uncommitted batch against the budget and, when
// all stores' batches together pass their share, commits this store's
// batch early.
func (b *base) afterWrite() error {
	if b.spec.InMemory {
		return nil // no batch: an in-memory store's writes are done
	}
	p := int64(b.be.pending())
	used := b.e.batchUsed.Add(p - b.accounted)
	b.accounted = p
	if used <= b.e.split.batches || p == 0 || b.deferred {
		// NB: a deferred store cannot commit early: its batch holds
		// writes of a transaction that has not committed. It grows
		// until the commit (one commit interval's writes).
		return nil
	}
	// NB: an early commit needs the changelog offset of what it commits,
	// so it flushes the changelog writer like a Flush, within the owner's
	// context (Options.EarlyCommitContext): a wait for acknowledgements
	// that never come must not hold the writer (a task's commit) past
	// its attempt. Writes reach a cached store's batch only on cache
	// flush or eviction, so this is rare.
	ctx := context.Background()
	if f := b.e.opts.EarlyCommitContext; f != nil {
		ctx = f()
	}
	return b.commit(ctx)
}

// Flush commits every write so far with the changelog offset it reflects.
func (b *base) Flush(ctx context.Context) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.commit(ctx)
}

func (b *base) commit(ctx context.Context) error {
	if b.changelog != nil {
		off, err := b.changelog.Flush(ctx)
		if err != nil {
			return fmt.Errorf("state: store %q partition %d: flush changelog: %w", b.spec.Name, b.partition, err)
		}
		if off != state.NoOffset && off+1 > b.m.checkpoint {
			b.m.checkpoint = off + 1
		}
	}
	if b.deferred {
		b.prepared = true
		return nil
	}
	return b.commitBackend()
}

// commitBackend commits the batch's writes and checkpoint to the backend
// and returns their room in the engine's batch budget.
func (b *base) commitBackend() error {
	err := b.be.commit(b.m)
	b.e.batchUsed.Add(-b.accounted)
	b.accounted = 0
	if err != nil {
		return fmt.Errorf("state: store %q partition %d: %w", b.spec.Name, b.partition, err)
	}
	return nil
}

// Close drops unflushed writes and releases the store.
func (b *base) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.newRCGeneration()
	b.e.batchUsed.Add(-b.accounted)
	b.accounted = 0
	err := b.be.close()
	b.e.forget(b)
	return err
}

// rcInvalidate removes key from the read cache and waits until the cache
// has applied every earlier Set, so no stale value can reappear.
func (b *base) rcInvalidate(key []byte) {
	if b.rc == nil {
		return
	}
	b.rc.Del(b.rcPrefix + string(key))
	b.rc.Wait()
}

// newRCGeneration gives the store a fresh read-cache key prefix. Values it
// cached may have come from its uncommitted batch; when that batch is
// dropped (Close, restore, wipe), the old generation's entries become
// unreachable (ristretto evicts them in time).
func (b *base) newRCGeneration() {
	if b.rc == nil {
		return
	}
	p := binary.BigEndian.AppendUint32(nil, b.rcID)
	p = binary.BigEndian.AppendUint64(p, b.e.rcGen.Add(1))
	b.rcPrefix = string(p)
}

// wipe deletes the store's data and checkpoint.
func (b *base) wipe() error {
	b.newRCGeneration()
	b.e.batchUsed.Add(-b.accounted)
	b.accounted = 0
	if err := b.be.wipe(); err != nil {
		return err
	}
	if b.onWipe != nil {
		b.onWipe()
	}
	b.m = zeroMeta
	return nil
}

var errEmptyKey = errors.New("state: empty key")

func (b *base) keyErr(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w in store %q", errEmptyKey, b.spec.Name)
	}
	return nil
}

// storeOf lets Restore and the caches reach the base of a store.
type storeOf interface {
	baseStore() *base
}

func (b *base) baseStore() *base { return b }
