package stateengine

import (
	"context"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/state"
)

// RestoreResult says what a restore did.
type RestoreResult struct {
	// From and To are the changelog offsets replayed: [From, To).
	From, To state.Offset
	// Records is the number of changelog records applied.
	Records int64
	// Wiped is set when the store was wiped and rebuilt from the start;
	// Reason says why.
	Wiped  bool
	Reason string
}

// ChangelogDecodeError reports a changelog record a restore could not apply.
type ChangelogDecodeError struct {
	Store     string
	Topic     string
	Partition int32
	Offset    state.Offset
	Err       error
}

// Error implements error.
func (e *ChangelogDecodeError) Error() string {
	return fmt.Sprintf("state: store %q: changelog %s partition %d offset %d: %v", e.Store, e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *ChangelogDecodeError) Unwrap() error { return e.Err }

// IsChangelogDecode reports whether err is or wraps a *ChangelogDecodeError.
func IsChangelogDecode(err error) bool {
	var d *ChangelogDecodeError
	return errors.As(err, &d)
}

// restorer is implemented by the stores (and the cached wrappers, which
// drop their entries and delegate).
type restorer interface {
	storeOf
	applyChange(key, value []byte) error
}

func (s *kvStore) applyChange(key, value []byte) error { return s.apply(key, value) }

// Restore brings s up to the end of its changelog, replaying only the tail
// after the offset s reflects. A store that claims an offset beyond the
// changelog's end is wiped and rebuilt from the changelog's start, with a
// log line. s may be a store from an Engine or a cached wrapper of one (whose
// cached entries are dropped). Unflushed writes to s are dropped first.
func Restore(ctx context.Context, s state.Store, r state.ChangelogReader) (RestoreResult, error) {
	if c, ok := s.(interface{ dropCached() }); ok {
		c.dropCached()
	}
	rs, ok := s.(restorer)
	if !ok {
		return RestoreResult{}, fmt.Errorf("state: restore %q: not a store opened by an Engine", s.Name())
	}
	b := rs.baseStore()
	if err := b.check(); err != nil {
		return RestoreResult{}, err
	}
	// Start from the committed state: forget writes since the last flush.
	if err := b.reload(); err != nil {
		return RestoreResult{}, err
	}
	end, err := r.EndOffset(ctx)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("state: restore %q: changelog end offset: %w", b.spec.Name, err)
	}
	res := RestoreResult{From: b.m.checkpoint, To: end}
	if b.m.checkpoint > end {
		res.Wiped = true
		res.Reason = fmt.Sprintf("store claims changelog offset %d beyond the changelog end %d", b.m.checkpoint, end)
		b.e.opts.Logger.Warn("state: wiping store and rebuilding it from its changelog: "+res.Reason,
			"store", b.spec.Name, "partition", b.partition, "topic", r.Topic())
		if err := b.wipe(); err != nil {
			return res, fmt.Errorf("state: restore %q: %w", b.spec.Name, err)
		}
		// The kind-specific retention bookkeeping restarts with the data.
		if err := b.reload(); err != nil {
			return res, err
		}
		res.From = 0
	}
	if b.m.checkpoint == end {
		return res, nil
	}
	// Each commit records the offset reached, so an interrupted restore
	// resumes from there; on Pebble each is one ingested SSTable (see
	// restore_sst.go).
	b.be.bulk()
	err = r.Read(ctx, b.m.checkpoint, end, func(batch []state.ChangelogRecord) error {
		for i := range batch {
			rec := &batch[i]
			if err := rs.applyChange(rec.Key, rec.Value); err != nil {
				return &ChangelogDecodeError{Store: b.spec.Name, Topic: r.Topic(), Partition: r.Partition(), Offset: rec.Offset, Err: err}
			}
			res.Records++
		}
		if n := len(batch); n > 0 && b.be.pending() >= int(b.e.split.restoreChunk) {
			b.m.checkpoint = batch[n-1].Offset + 1
			if err := b.be.commit(b.m); err != nil {
				return err
			}
			b.be.bulk()
		}
		return nil
	})
	if err != nil {
		// Keep what was committed; drop the rest. A later Restore resumes.
		_ = b.reload()
		if p, ok := b.be.(*pebbleBackend); ok {
			p.endBulk()
		}
		if IsChangelogDecode(err) {
			return res, err
		}
		return res, fmt.Errorf("state: restore %q from %s partition %d: %w", b.spec.Name, r.Topic(), r.Partition(), err)
	}
	b.m.checkpoint = end
	if err := b.be.commit(b.m); err != nil {
		_ = b.reload()
		return res, fmt.Errorf("state: restore %q: %w", b.spec.Name, err)
	}
	if p, ok := b.be.(*pebbleBackend); ok {
		p.endBulk()
	}
	return res, nil
}

// reload drops uncommitted writes and reloads the committed meta, and
// with it the retention bookkeeping of window and session stores.
func (b *base) reload() error {
	if p, ok := b.be.(*pebbleBackend); ok {
		p.discard()
	}
	b.newRCGeneration()
	b.e.batchUsed.Add(-b.accounted)
	b.accounted = 0
	m, err := b.be.loadMeta()
	if err != nil {
		b.e.opts.Logger.Warn("state: store checkpoint is corrupt; wiping the store", "store", b.spec.Name, "partition", b.partition, "err", err)
		if err := b.wipe(); err != nil {
			return err
		}
		m = zeroMeta
	}
	b.m = m
	if b.onReload != nil {
		b.onReload()
	}
	return nil
}

// Checkpoint returns the changelog offset s reflects as of its last commit
// (or restore): every changelog record below it is in the store's data. A
// new store's checkpoint is 0.
func Checkpoint(s state.Store) (state.Offset, error) {
	so, ok := s.(storeOf)
	if !ok {
		return state.NoOffset, fmt.Errorf("state: checkpoint of %q: not a store opened by an Engine", s.Name())
	}
	b := so.baseStore()
	if err := b.check(); err != nil {
		return state.NoOffset, err
	}
	m, err := b.be.loadMeta()
	if err != nil {
		return state.NoOffset, fmt.Errorf("state: checkpoint of %q: %w", s.Name(), err)
	}
	return m.checkpoint, nil
}
