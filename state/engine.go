package state

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure an Engine: the state of one application instance.
type Options struct {
	// Dir is the instance's state directory. The Pebble database lives in
	// Dir/pebble. Required unless FS is an in-memory filesystem, where
	// Default "" means the root of FS.
	Dir string
	// FS is the filesystem the Pebble database lives on. Default vfs.Default
	// (the OS); tests pass vfs.NewMem() or vfs.NewCrashableMem().
	FS vfs.FS
	// MemoryBudget bounds the memory of every store of the instance
	// together, in bytes: Pebble's block cache and memtables, the write-back
	// caches and the read caches. Default DefaultMemoryBudget (256 MiB).
	// Minimum MinMemoryBudget.
	MemoryBudget int64
	// Logger receives the engine's log lines (store wiped and rebuilt, and
	// so on). Default slog.Default().
	Logger *slog.Logger
}

// DefaultMemoryBudget is Options.MemoryBudget's default: 256 MiB.
const DefaultMemoryBudget = 256 << 20

// MinMemoryBudget is the smallest MemoryBudget accepted: 16 MiB.
const MinMemoryBudget = 16 << 20

// Engine holds the stores of one application instance: one Pebble database
// shared by every persistent store (each store and partition under its own
// key prefix), the in-memory stores, and the memory budget they share. It is
// safe for concurrent use; the stores it opens are not (see Store).
type Engine struct {
	opts Options
}

// ErrNotImplemented is returned by parts of the package still being built.
var ErrNotImplemented = errors.New("state: not implemented yet")

// Open opens (or creates) the instance's state under opts.Dir.
func Open(opts Options) (*Engine, error) {
	return nil, ErrNotImplemented
}

// Close closes the engine. Stores still open are closed first, without a
// flush.
func (e *Engine) Close() error { return nil }

// OpenKeyValue opens the key-value store spec.Name of the given partition.
// A logged store writes every change to changelog (which must be non-nil
// unless spec.Unlogged). The store returned is not cached; wrap it with
// Cache.KeyValue. Restore it with Restore before use.
func (e *Engine) OpenKeyValue(ctx context.Context, spec Spec, partition int32, changelog ChangelogWriter) (KeyValueStore, error) {
	return nil, ErrNotImplemented
}

// OpenWindow opens the window store spec.Name of the given partition, as
// OpenKeyValue.
func (e *Engine) OpenWindow(ctx context.Context, spec Spec, partition int32, changelog ChangelogWriter) (WindowStore, error) {
	return nil, ErrNotImplemented
}

// OpenSession opens the session store spec.Name of the given partition, as
// OpenKeyValue.
func (e *Engine) OpenSession(ctx context.Context, spec Spec, partition int32, changelog ChangelogWriter) (SessionStore, error) {
	return nil, ErrNotImplemented
}

// Drop deletes the data and checkpoint of the store name of the given
// partition, which must not be open: the runtime calls it when a task has
// moved to another instance for good. Dropping a store that does not exist
// is not an error.
func (e *Engine) Drop(name string, partition int32) error {
	return ErrNotImplemented
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	// From and To are the changelog offsets replayed: [From, To).
	From, To Offset
	// Records is the number of changelog records applied.
	Records int64
	// Wiped is set when the store was wiped and rebuilt from the start;
	// Reason says why.
	Wiped  bool
	Reason string
}

// Restore brings s up to the end of its changelog, replaying only the tail
// after the offset s reflects. A store that claims an offset beyond the
// changelog's end is wiped and rebuilt from the changelog's start, with a
// log line. s may be a store from an Engine or a cached wrapper of one.
func Restore(ctx context.Context, s Store, r ChangelogReader) (RestoreResult, error) {
	return RestoreResult{}, ErrNotImplemented
}
