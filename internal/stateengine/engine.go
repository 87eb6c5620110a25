package stateengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/state"
	"io"
	iofs "io/fs"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/dgraph-io/ristretto/v2"
)

// Options configure an Engine: the state of one application instance.
type Options struct {
	// Dir is the instance's state directory; the Pebble database lives in
	// Dir/pebble. Required.
	Dir string
	// FS is the filesystem the Pebble database lives on. Default vfs.Default
	// (the OS); tests pass vfs.NewMem() or vfs.NewCrashableMem().
	FS vfs.FS
	// MemoryBudget bounds the memory of every store of the instance
	// together, in bytes: Pebble's block cache and memtables, uncommitted
	// write batches, the write-back caches and the read cache. Default
	// DefaultMemoryBudget (256 MiB). Minimum MinMemoryBudget. How it is
	// split is documented in docs/ARCHITECTURE.md 5.5 (see budgetSplit).
	MemoryBudget int64
	// NoSync commits store flushes without an fsync. The data and its
	// checkpoint still agree after any crash, but a machine crash (not a
	// process crash) may lose recent commits, and their changelog records
	// are replayed on restore. Default false (flushes are synced).
	NoSync bool
	// Logger receives the engine's log lines (store wiped and rebuilt, and
	// so on). Default slog.Default().
	Logger *slog.Logger
	// EarlyCommitContext returns the context a store's early commit (its
	// batch committed before its Flush, once all stores' batches pass
	// their share of MemoryBudget) hands its changelog writer's Flush.
	// The writes that fill a batch mostly arrive during a task's commit
	// (a cache flush), so the owner passes the commit attempt's context
	// here: an early commit then waits no longer than the attempt, and
	// not at all if the writer is told not to wait for acknowledgements.
	// Called on the goroutine writing to the store. Default nil:
	// context.Background(), which waits for every record appended.
	EarlyCommitContext func() context.Context
}

// DefaultMemoryBudget is Options.MemoryBudget's default: 256 MiB.
const DefaultMemoryBudget = 256 << 20

// MinMemoryBudget is the smallest MemoryBudget accepted: 16 MiB.
const MinMemoryBudget = 16 << 20

// EnsureDefaults fills the zero options with their defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.MemoryBudget == 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("state: Options.Dir is required"))
	}
	if o.MemoryBudget < MinMemoryBudget {
		errs = append(errs, fmt.Errorf("state: Options.MemoryBudget %d is below the minimum %d", o.MemoryBudget, MinMemoryBudget))
	}
	return errors.Join(errs...)
}

// budget is how the memory budget is split. The budget bounds resident
// memory, so each part is sized by what it costs there:
//
//   - Pebble's block cache lives outside the Go heap, and its memtables are
//     reserved out of it (Pebble's Cache.Reserve): blockCache is the two
//     together, and memtables full memtables of memtable bytes each
//     (MemTableStopWritesThreshold) fit in it.
//   - The write-back caches, uncommitted batches and the read cache live on
//     the Go heap, counted at what they hold there (see entryOverhead); the
//     collector lets the heap grow to twice its live bytes (GOGC=100, the
//     default) before it collects, so each takes half of its share.
//   - The rest is slack for the C allocator's own overhead (Pebble's
//     blocks are malloc'd; freed ones are not all returned to the OS).
type budget struct {
	blockCache int64 // Pebble's block cache, memtables included
	memtable   int64 // one memtable; at most memtables of them exist
	memtables  int
	writeCache int64 // all tasks' write-back caches together
	readCache  int64 // the shared ristretto cache
	batches    int64 // uncommitted batches of all stores together
	// restoreChunk is what one restore buffers between commits, out of
	// the batches' share: half of it, within [4 MiB, 16 MiB].
	restoreChunk int64
}

func budgetSplit(total int64) budget {
	// Shares of the resident budget: block cache and memtables 40%; on
	// the Go heap, collector headroom included, write caches 30%, batches
	// 10%, read cache 10%; slack 10%.
	b := budget{
		blockCache: total * 40 / 100,
		memtable:   total * 10 / 100,
		memtables:  2,
		writeCache: total * 30 / 100 / 2,
		readCache:  total * 10 / 100 / 2,
		batches:    total * 10 / 100 / 2,
	}
	b.restoreChunk = min(max(b.batches/2, 4<<20), 16<<20)
	return b
}

// Key space of the shared Pebble database:
//
//	0x00 'c' partition(4) name  -> store id(4) kind(1)   catalog
//	0x00 'n'                    -> next store id(4)
//	0x01 id(4)                  -> meta of store id (checkpoint, stream time)
//	0x01 id(4) key...           -> data of store id (keys are never empty)
//
// The meta key is the store's bare data prefix, so a restore can write a
// store's data and checkpoint as one SSTable within the store's own range.
const (
	sysPrefix  = 0x00
	dataPrefix = 0x01
)

func dataKeyPrefix(id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{dataPrefix}, id)
}

func catalogKey(name string, partition int32) []byte {
	b := binary.BigEndian.AppendUint32([]byte{sysPrefix, 'c'}, uint32(partition))
	return append(b, name...)
}

var nextIDKey = []byte{sysPrefix, 'n'}

// Engine holds the stores of one application instance: one Pebble database
// shared by every persistent store (each store and partition under its own
// key prefix), the in-memory stores, and the memory budget they share. It is
// safe for concurrent use; the stores it opens are not (see Store).
type Engine struct {
	opts  Options
	split budget
	db    *pebble.DB
	cache *pebble.Cache
	popts *pebble.Options
	// sst is where restores build the SSTables they ingest.
	sst    *sstEnv
	rcache *ristretto.Cache[string, []byte]

	// cacheUsed is the bytes held by every write-back cache together.
	cacheUsed atomic.Int64
	// batchUsed is the bytes of every store's uncommitted batch together.
	batchUsed atomic.Int64
	// rcGen numbers read-cache generations (see base.newRCGeneration).
	rcGen atomic.Uint64
	// corrupt is set once a read met corruption (see markCorrupt).
	corrupt atomic.Bool

	mu sync.Mutex
	// open are the stores open now, by catalog key. Guarded by mu.
	open map[string]*base
	// closed is set by Close. Guarded by mu.
	closed bool
}

// Open opens (or creates) the instance's state under opts.Dir. A database
// that Pebble finds corrupt is wiped and created afresh, with a log line:
// every store then restores from its changelog.
func Open(opts Options) (*Engine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, split: budgetSplit(opts.MemoryBudget), open: map[string]*base{}}
	dir := opts.FS.PathJoin(opts.Dir, "pebble")
	if err := mkdirSynced(opts.FS, dir); err != nil {
		return nil, err
	}
	e.cache = pebble.NewCache(e.split.blockCache)
	if err := e.wipeIfMarkedCorrupt(dir); err != nil {
		e.cache.Unref()
		return nil, err
	}
	db, err := e.openPebble(dir)
	if err != nil && pebble.IsCorruptionError(err) {
		opts.Logger.Warn("state: Pebble database is corrupt; wiping it, stores will be rebuilt from their changelogs", "dir", dir, "err", err)
		if rerr := opts.FS.RemoveAll(dir); rerr != nil {
			e.cache.Unref()
			return nil, fmt.Errorf("state: wipe corrupt database %s: %w (after %v)", dir, rerr, err)
		}
		if merr := mkdirSynced(opts.FS, dir); merr != nil {
			e.cache.Unref()
			return nil, merr
		}
		// A corruption reported while opening wrote the marker; the
		// database it speaks of is gone.
		if e.corrupt.Swap(false) {
			if rerr := opts.FS.Remove(opts.FS.PathJoin(opts.Dir, corruptMarker)); rerr != nil && !errors.Is(rerr, iofs.ErrNotExist) {
				e.cache.Unref()
				return nil, fmt.Errorf("state: remove corruption marker: %w", rerr)
			}
		}
		db, err = e.openPebble(dir)
	}
	if err != nil {
		e.cache.Unref()
		return nil, fmt.Errorf("state: open Pebble database in %s: %w", dir, err)
	}
	e.db = db
	// Restores build SSTables in Dir/restore, on the database's filesystem
	// so that ingesting links them; files left by a crash are removed.
	sstDir := opts.FS.PathJoin(opts.Dir, "restore")
	if err := opts.FS.RemoveAll(sstDir); err != nil {
		_ = db.Close()
		e.cache.Unref()
		return nil, fmt.Errorf("state: clear %s: %w", sstDir, err)
	}
	if err := mkdirSynced(opts.FS, sstDir); err != nil {
		_ = db.Close()
		e.cache.Unref()
		return nil, err
	}
	e.sst = &sstEnv{fs: opts.FS, dir: sstDir, wopts: e.popts.MakeWriterOptions(0, db.FormatMajorVersion().MaxTableFormat()), chunkBytes: int(e.split.restoreChunk)}
	rc, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters: max(e.split.readCache/100, 1000),
		MaxCost:     e.split.readCache,
		BufferItems: 64,
	})
	if err != nil {
		_ = db.Close()
		e.cache.Unref()
		return nil, fmt.Errorf("state: read cache: %w", err)
	}
	e.rcache = rc
	return e, nil
}

// corruptMarker names the file (in Options.Dir) that says the database
// met corruption while running; it holds the reason.
const corruptMarker = "CORRUPT"

// markCorrupt records that Pebble reported corruption during a read: the
// corruption may lie in any store's data, so the whole database is wiped
// at the next Open (from a marker file, synced) and every store rebuilds
// from its changelog. Until then reads keep returning the errors Pebble
// gives (IsCorruption reports them); the runtime stops the instance.
func (e *Engine) markCorrupt(cause error) {
	if !e.corrupt.CompareAndSwap(false, true) {
		return
	}
	fs, path := e.opts.FS, e.opts.FS.PathJoin(e.opts.Dir, corruptMarker)
	e.opts.Logger.Error("state: Pebble found corruption while reading; the database will be wiped at the next open and every store rebuilt from its changelog",
		"dir", e.opts.Dir, "err", cause)
	err := func() error {
		f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		if _, err := f.Write([]byte(cause.Error())); err != nil {
			_ = f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return mkdirSynced(fs, e.opts.Dir)
	}()
	if err != nil {
		e.opts.Logger.Error("state: could not write the corruption marker; the database may not be wiped at the next open", "path", path, "err", err)
	}
}

// Corrupted reports whether a read of this engine met corruption: the
// database is then wiped at the next Open.
func (e *Engine) Corrupted() bool { return e.corrupt.Load() }

// wipeIfMarkedCorrupt wipes the database directory dir if an earlier run
// marked it corrupt, then removes the marker (in that order, so a crash in
// between wipes again).
func (e *Engine) wipeIfMarkedCorrupt(dir string) error {
	fs, path := e.opts.FS, e.opts.FS.PathJoin(e.opts.Dir, corruptMarker)
	f, err := fs.Open(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: open %s: %w", path, err)
	}
	reason, _ := io.ReadAll(io.LimitReader(f, 4096))
	_ = f.Close()
	e.opts.Logger.Warn("state: wiping the Pebble database, marked corrupt by an earlier run; stores will be rebuilt from their changelogs",
		"dir", dir, "reason", string(reason))
	if err := fs.RemoveAll(dir); err != nil {
		return fmt.Errorf("state: wipe corrupt database %s: %w", dir, err)
	}
	if err := mkdirSynced(fs, dir); err != nil {
		return err
	}
	if err := fs.Remove(path); err != nil {
		return fmt.Errorf("state: remove %s: %w", path, err)
	}
	return mkdirSynced(fs, e.opts.Dir)
}

// IsCorruption reports whether err says that stored state is corrupt: a
// corruption Pebble found, or a checkpoint that does not decode.
func IsCorruption(err error) bool {
	return pebble.IsCorruptionError(err) || errors.Is(err, errCorruptMeta)
}

// mkdirSynced creates dir and its missing parents and syncs every
// directory on the way up, so that neither dir nor the entries already in
// its parents (the Pebble directory) can vanish in a machine crash.
func mkdirSynced(fs vfs.FS, dir string) error {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state: create %s: %w", dir, err)
	}
	for p := dir; ; {
		parent := fs.PathDir(p)
		if parent == p || parent == "" || parent == "." {
			return nil
		}
		d, err := fs.OpenDir(parent)
		if err != nil {
			return fmt.Errorf("state: open directory %s: %w", parent, err)
		}
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return fmt.Errorf("state: sync directory %s: %w", parent, err)
		}
		p = parent
	}
}

func (e *Engine) openPebble(dir string) (db *pebble.DB, err error) {
	// NB: Pebble panics on some kinds of corruption it meets while opening;
	// turn that into an error so a bad directory is reported, not fatal.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", pebble.ErrCorruption, r)
		}
	}()
	o := &pebble.Options{
		FS:                          e.opts.FS,
		Cache:                       e.cache,
		MemTableSize:                uint64(e.split.memtable),
		MemTableStopWritesThreshold: e.split.memtables,
		Logger:                      pebbleLogger{e.opts.Logger},
		// NB: by default Pebble treats corruption found by a read or a
		// compaction as fatal; Weir marks the database for a rebuild
		// instead, and the read returns the error.
		EventListener: &pebble.EventListener{
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				e.markCorrupt(fmt.Errorf("%s: %w", info.Path, info.Details))
			},
			// A flush frees a memtable and a compaction the blocks it read
			// and evicted: hand the C allocator's free memory back then.
			FlushEnd:      func(pebble.FlushInfo) { trimCHeap() },
			CompactionEnd: func(pebble.CompactionInfo) { trimCHeap() },
		},
	}
	o.EnsureDefaults()
	e.popts = o
	return pebble.Open(dir, o)
}

// Close closes the engine. Stores still open are closed first, without a
// flush.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var open []*base
	for _, b := range e.open {
		open = append(open, b)
	}
	e.mu.Unlock()
	for _, b := range open {
		_ = b.Close()
	}
	e.rcache.Close()
	err := e.db.Close()
	e.cache.Unref()
	if err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return nil
}

// Metrics are figures about the engine's memory.
type Metrics struct {
	// BlockCacheBytes is the size of Pebble's block cache contents.
	BlockCacheBytes int64
	// MemtableBytes is the size of Pebble's memtables.
	MemtableBytes int64
	// WriteCacheBytes is held by the write-back caches.
	WriteCacheBytes int64
	// BatchBytes is held by uncommitted store batches.
	BatchBytes int64
}

// Metrics returns the engine's memory figures.
func (e *Engine) Metrics() Metrics {
	m := e.db.Metrics()
	return Metrics{
		BlockCacheBytes: m.BlockCache.Size,
		MemtableBytes:   int64(m.MemTable.Size),
		WriteCacheBytes: e.cacheUsed.Load(),
		BatchBytes:      e.batchUsed.Load(),
	}
}

// PebbleMetrics returns the Pebble database's own metrics (for
// benchmarks and diagnostics: table and file cache sizes, iterators).
func (e *Engine) PebbleMetrics() *pebble.Metrics { return e.db.Metrics() }

// ErrClosed is returned by calls on a closed engine or store.
var ErrClosed = errors.New("state: closed")

// ErrAlreadyOpen is returned when a store and partition is opened twice.
var ErrAlreadyOpen = errors.New("state: store already open")

// OpenKeyValue opens the key-value store spec.Name of the given partition.
// A logged store writes every change to changelog (which must be non-nil
// unless spec.Unlogged). The store returned is not write-back cached; wrap
// it with Cache.KeyValue. Restore it with Restore before use.
func (e *Engine) OpenKeyValue(ctx context.Context, spec state.Spec, partition int32, changelog state.ChangelogWriter) (state.KeyValueStore, error) {
	spec.Kind = state.KindKeyValue
	b, data, err := e.openBase(spec, partition, changelog)
	if err != nil {
		return nil, err
	}
	if spec.InMemory {
		mb := newMemBackend(b.m)
		b.be, data = mb, mb
	}
	return newKVStore(b, data), nil
}

// OpenWindow opens the window store spec.Name of the given partition, as
// OpenKeyValue.
func (e *Engine) OpenWindow(ctx context.Context, spec state.Spec, partition int32, changelog state.ChangelogWriter) (state.WindowStore, error) {
	spec.Kind = state.KindWindow
	t, err := e.openTimed(spec, partition, changelog, windowKind)
	if err != nil {
		return nil, err
	}
	return &windowStore{timedFace{t}}, nil
}

// OpenSession opens the session store spec.Name of the given partition, as
// OpenKeyValue.
func (e *Engine) OpenSession(ctx context.Context, spec state.Spec, partition int32, changelog state.ChangelogWriter) (state.SessionStore, error) {
	spec.Kind = state.KindSession
	t, err := e.openTimed(spec, partition, changelog, sessionKind)
	if err != nil {
		return nil, err
	}
	return &sessionStore{timedFace{t}}, nil
}

// openTimed opens the timed store under a window or session store.
func (e *Engine) openTimed(spec state.Spec, partition int32, changelog state.ChangelogWriter, kind *timedKind) (*timedStore, error) {
	b, data, err := e.openBase(spec, partition, changelog)
	if err != nil {
		return nil, err
	}
	return newTimedStore(b, kind, data), nil
}

func validateSpec(spec state.Spec, changelog state.ChangelogWriter) error {
	var errs []error
	if spec.Name == "" {
		errs = append(errs, errors.New("state: Spec.Name is required"))
	}
	if !spec.Unlogged && changelog == nil {
		errs = append(errs, fmt.Errorf("state: store %q is logged but has no changelog writer", spec.Name))
	}
	if spec.Retention < 0 {
		errs = append(errs, fmt.Errorf("state: store %q: negative retention", spec.Name))
	}
	if spec.WindowSize > 0 && spec.Retention > 0 && spec.Retention < spec.WindowSize {
		errs = append(errs, fmt.Errorf("state: store %q: retention %v is shorter than the window size %v", spec.Name, spec.Retention, spec.WindowSize))
	}
	if spec.ReadCache && spec.Kind != state.KindKeyValue {
		errs = append(errs, fmt.Errorf("state: store %q: a read cache is for key-value stores only", spec.Name))
	}
	return errors.Join(errs...)
}

// openBase opens the part every store has. data is the backend of a Pebble
// store, nil for an in-memory one (which keeps its data itself).
func (e *Engine) openBase(spec state.Spec, partition int32, changelog state.ChangelogWriter) (b *base, data backend, err error) {
	if err := validateSpec(spec, changelog); err != nil {
		return nil, nil, err
	}
	if spec.Retention == 0 {
		spec.Retention = state.DefaultRetention
	}
	if spec.Unlogged {
		changelog = nil
	}
	ck := string(catalogKey(spec.Name, partition))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil, ErrClosed
	}
	if _, ok := e.open[ck]; ok {
		return nil, nil, fmt.Errorf("%w: %q partition %d", ErrAlreadyOpen, spec.Name, partition)
	}
	b = &base{e: e, spec: spec, partition: partition, changelog: changelog, catalogKey: ck}
	if tc, ok := changelog.(TransactionalChangelog); ok && tc.Transactional() {
		b.deferred = true
	}
	if spec.InMemory {
		b.be = &memMeta{m: zeroMeta}
	} else {
		id, err := e.storeIDLocked(ck, spec.Kind)
		if err != nil {
			return nil, nil, err
		}
		pb := newPebbleBackend(e.db, e.sst, id, e.opts.NoSync, e.markCorrupt)
		b.be, data = pb, pb
		if spec.ReadCache {
			b.rc = e.rcache
			b.rcID = id
			b.newRCGeneration()
		}
	}
	m, err := b.be.loadMeta()
	if err != nil {
		e.opts.Logger.Warn("state: store checkpoint is corrupt; wiping the store, it will be rebuilt from its changelog",
			"store", spec.Name, "partition", partition, "err", err)
		if werr := b.be.wipe(); werr != nil {
			return nil, nil, fmt.Errorf("state: store %q partition %d: wipe after %v: %w", spec.Name, partition, err, werr)
		}
		m = zeroMeta
	}
	b.m = m
	e.open[ck] = b
	return b, data, nil
}

// storeIDLocked returns the id of a store, assigning one if new. A store
// whose catalog entry has another kind (the topology changed) is wiped and
// given the new kind. e.mu must be held.
func (e *Engine) storeIDLocked(ck string, kind state.Kind) (uint32, error) {
	v, c, err := e.db.Get([]byte(ck))
	if err == nil {
		ok := len(v) == 5
		var id uint32
		var old state.Kind
		if ok {
			id, old = binary.BigEndian.Uint32(v), state.Kind(v[4])
		}
		_ = c.Close()
		if ok && old == kind {
			return id, nil
		}
		if ok {
			e.opts.Logger.Warn("state: store changed kind; wiping it", "catalog", ck[6:], "was", old, "now", kind)
			be := newPebbleBackend(e.db, e.sst, id, e.opts.NoSync, e.markCorrupt)
			if err := be.wipe(); err != nil {
				return 0, err
			}
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return 0, fmt.Errorf("state: read catalog: %w", err)
	}
	var next uint32 = 1
	if v, c, err := e.db.Get(nextIDKey); err == nil {
		if len(v) == 4 {
			next = binary.BigEndian.Uint32(v)
		}
		_ = c.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return 0, fmt.Errorf("state: read catalog: %w", err)
	}
	if next == math.MaxUint32 {
		return 0, errors.New("state: store ids exhausted")
	}
	b := e.db.NewBatch()
	defer b.Close()
	_ = b.Set([]byte(ck), append(binary.BigEndian.AppendUint32(nil, next), byte(kind)), nil)
	_ = b.Set(nextIDKey, binary.BigEndian.AppendUint32(nil, next+1), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("state: write catalog: %w", err)
	}
	return next, nil
}

// Drop deletes the data and checkpoint of the store name of the given
// partition, which must not be open: the runtime calls it when a task has
// moved to another instance for good. Dropping a store that does not exist
// is not an error. (In-memory stores vanish on Close; Drop ignores them.)
func (e *Engine) Drop(name string, partition int32) error {
	ck := catalogKey(name, partition)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if _, ok := e.open[string(ck)]; ok {
		return fmt.Errorf("state: drop %q partition %d: store is open", name, partition)
	}
	v, c, err := e.db.Get(ck)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: read catalog: %w", err)
	}
	ok := len(v) == 5
	var id uint32
	if ok {
		id = binary.BigEndian.Uint32(v)
	}
	_ = c.Close()
	if ok {
		if err := newPebbleBackend(e.db, e.sst, id, e.opts.NoSync, e.markCorrupt).wipe(); err != nil {
			return err
		}
	}
	if err := e.db.Delete(ck, pebble.Sync); err != nil {
		return fmt.Errorf("state: drop %q partition %d: %w", name, partition, err)
	}
	return nil
}

func (e *Engine) forget(b *base) {
	e.mu.Lock()
	if e.open[b.catalogKey] == b {
		delete(e.open, b.catalogKey)
	}
	e.mu.Unlock()
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...interface{}) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Errorf(format string, args ...interface{}) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...interface{}) {
	// NB: Pebble calls Fatalf on broken invariants and expects it not to
	// return; panicking keeps that contract (openPebble recovers it).
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble: fatal: " + msg)
	panic("pebble: " + msg)
}
