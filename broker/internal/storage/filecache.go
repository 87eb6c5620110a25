package storage

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// DefaultOpenSegmentFiles is the bound of a FileCache a Log makes for
// itself when Options.FileCache is nil.
const DefaultOpenSegmentFiles = 64

// FileCache bounds how many sealed segment files are open at once, across
// every log that shares it (a broker shares one among its partitions). A
// sealed segment's file is opened on its first read and closed again when
// the cache needs room; the active segment's file (and one being written by
// compaction) is held open outside the bound. So a broker holds at most
// one descriptor per partition plus the bound, however many segments its
// partitions keep.
//
// Eviction is CLOCK (second chance): a read marks its file used; the sweep
// spares a used file once and never closes one a read holds.
type FileCache struct {
	limit int
	// mu guards ring and hand. Lock order: FileCache.mu, then segFile.mu.
	// Both are taken inside the Log's locks and never the other way.
	mu   sync.Mutex
	ring []*segFile // open, unpinned files (and closed ones not yet swept)
	hand int
	// opens counts files the cache opened (re-opens of evicted files), for
	// tests and metrics.
	opens atomic.Int64
}

// NewFileCache returns a cache holding at most limit sealed segment files
// open (at least 1).
func NewFileCache(limit int) *FileCache {
	return &FileCache{limit: max(limit, 1)}
}

// OpenFiles returns how many sealed segment files are open now.
func (c *FileCache) OpenFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, sf := range c.ring {
		sf.mu.Lock()
		if sf.f != nil && !sf.pinned {
			n++
		}
		sf.mu.Unlock()
	}
	return n
}

// Reopens returns how many times the cache opened a segment file that was
// not open (a read of an evicted or never-opened sealed segment).
func (c *FileCache) Reopens() int64 { return c.opens.Load() }

// pinned wraps a file the caller opened (the active segment's, writable)
// as a segFile held open outside the bound until unpin.
func (c *FileCache) pinned(fs vfs.FS, f vfs.File, path string) *segFile {
	return &segFile{cache: c, fs: fs, path: path, f: f, pinned: true}
}

// closed returns a segFile for the sealed segment at path, not open: its
// first read opens it.
func (c *FileCache) closed(fs vfs.FS, path string) *segFile {
	return &segFile{cache: c, fs: fs, path: path}
}

// addLocked puts an open, unpinned file in the ring and sweeps the ring
// down to the bound. Caller holds c.mu.
func (c *FileCache) addLocked(sf *segFile) {
	c.ring = append(c.ring, sf)
	c.sweepLocked()
}

// sweepLocked closes unused files until at most limit are in the ring.
// Caller holds c.mu.
func (c *FileCache) sweepLocked() {
	// Two passes over the ring clear every used mark; files held by reads
	// stay, and the ring may then exceed the bound until they are released.
	for steps := 2 * len(c.ring); len(c.ring) > c.limit && steps > 0; steps-- {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		sf := c.ring[c.hand]
		sf.mu.Lock()
		switch {
		case sf.f == nil || sf.pinned:
			// Closed for good, or writable again (a follower truncation
			// made it active): no longer the ring's.
			sf.inRing = false
			sf.mu.Unlock()
			c.removeAtLocked(c.hand)
		case sf.refs > 0 || sf.used.Load():
			sf.used.Store(false)
			sf.mu.Unlock()
			c.hand++
		default:
			f := sf.f
			sf.f, sf.inRing = nil, false
			sf.mu.Unlock()
			c.removeAtLocked(c.hand)
			// NB: a close error of a read-only file loses nothing.
			_ = f.Close()
		}
	}
}

func (c *FileCache) removeAtLocked(i int) {
	last := len(c.ring) - 1
	c.ring[i] = c.ring[last]
	c.ring[last] = nil
	c.ring = c.ring[:last]
}

// segFile is a segment's file as the log uses it: a vfs.File that the
// FileCache may close while no read holds it and that reopens (read-only)
// on the next read. While pinned (the active segment) it stays open.
type segFile struct {
	cache *FileCache
	fs    vfs.FS

	// mu guards the fields below.
	mu   sync.Mutex
	path string
	f    vfs.File // nil while closed
	refs int      // reads holding f
	// pinned: held open outside the bound (active or being written).
	pinned bool
	// dropped: closed for good (Close); never reopened.
	dropped bool
	inRing  bool
	// retired holds handles replaced by repin that reads still held.
	retired []vfs.File

	used atomic.Bool // read since the sweep last passed
}

var _ vfs.File = (*segFile)(nil)

// acquire returns the open file, opening it if need be, and holds it until
// release.
func (sf *segFile) acquire() (vfs.File, error) {
	sf.mu.Lock()
	if f := sf.f; f != nil {
		sf.refs++
		sf.mu.Unlock()
		sf.used.Store(true)
		return f, nil
	}
	if sf.dropped {
		sf.mu.Unlock()
		return nil, fmt.Errorf("storage: %s: %w", sf.path, os.ErrClosed)
	}
	path := sf.path
	sf.mu.Unlock()
	f, err := sf.fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	c := sf.cache
	c.opens.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	sf.mu.Lock()
	switch {
	case sf.dropped:
		sf.mu.Unlock()
		f.Close()
		return nil, fmt.Errorf("storage: %s: %w", path, os.ErrClosed)
	case sf.f != nil:
		// Opened meanwhile by another read.
		f.Close()
	default:
		sf.f = f
	}
	sf.refs++
	f = sf.f
	add := !sf.pinned && !sf.inRing
	sf.inRing = sf.inRing || add
	sf.mu.Unlock()
	sf.used.Store(true)
	if add {
		c.addLocked(sf)
	}
	return f, nil
}

// release ends a hold taken by acquire.
func (sf *segFile) release() {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	sf.refs--
	if sf.refs > 0 {
		return
	}
	for _, f := range sf.retired {
		_ = f.Close()
	}
	sf.retired = nil
	if sf.dropped && sf.f != nil {
		_ = sf.f.Close()
		sf.f = nil
	}
}

// unpin puts the file under the bound (the segment is sealed): from now on
// the cache may close it. path is the file's name from now on (a compacted
// segment is renamed into place before it is unpinned).
func (sf *segFile) unpin(path string) {
	c := sf.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	sf.mu.Lock()
	sf.path = path
	sf.pinned = false
	add := sf.f != nil && !sf.inRing && !sf.dropped
	sf.inRing = sf.inRing || add
	sf.mu.Unlock()
	if add {
		c.addLocked(sf)
	}
}

// repin replaces the file by w (a writable handle of the same file) and
// holds it open outside the bound: the segment became active again.
func (sf *segFile) repin(w vfs.File) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if old := sf.f; old != nil {
		if sf.refs == 0 {
			_ = old.Close()
		} else {
			sf.retired = append(sf.retired, old)
		}
	}
	sf.f, sf.pinned, sf.dropped = w, true, false
}

// Close closes the file for good: a read holding it finishes first.
func (sf *segFile) Close() error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	sf.dropped = true
	if sf.refs > 0 || sf.f == nil {
		return nil
	}
	err := sf.f.Close()
	sf.f = nil
	return err
}

func (sf *segFile) ReadAt(p []byte, off int64) (int, error) {
	f, err := sf.acquire()
	if err != nil {
		return 0, err
	}
	defer sf.release()
	return f.ReadAt(p, off)
}

func (sf *segFile) WriteAt(p []byte, off int64) (int, error) {
	f, err := sf.acquire()
	if err != nil {
		return 0, err
	}
	defer sf.release()
	return f.WriteAt(p, off)
}

// Read and Write: the log addresses its files by position only.
func (sf *segFile) Read([]byte) (int, error) {
	return 0, fmt.Errorf("storage: %s: sequential read of a segment file: %w", sf.path, io.ErrNoProgress)
}

func (sf *segFile) Write([]byte) (int, error) {
	return 0, fmt.Errorf("storage: %s: sequential write of a segment file: %w", sf.path, io.ErrNoProgress)
}

func (sf *segFile) Preallocate(offset, length int64) error {
	f, err := sf.acquire()
	if err != nil {
		return err
	}
	defer sf.release()
	return f.Preallocate(offset, length)
}

func (sf *segFile) Stat() (vfs.FileInfo, error) {
	f, err := sf.acquire()
	if err != nil {
		return nil, err
	}
	defer sf.release()
	return f.Stat()
}

func (sf *segFile) Sync() error {
	f, err := sf.acquire()
	if err != nil {
		return err
	}
	defer sf.release()
	return f.Sync()
}

func (sf *segFile) SyncTo(length int64) (bool, error) {
	f, err := sf.acquire()
	if err != nil {
		return false, err
	}
	defer sf.release()
	return f.SyncTo(length)
}

func (sf *segFile) SyncData() error {
	f, err := sf.acquire()
	if err != nil {
		return err
	}
	defer sf.release()
	return f.SyncData()
}

func (sf *segFile) Prefetch(offset, length int64) error {
	f, err := sf.acquire()
	if err != nil {
		return err
	}
	defer sf.release()
	return f.Prefetch(offset, length)
}

// Fd returns the descriptor of a pinned file (the active segment's), else
// vfs.InvalidFd: an unpinned one may be closed at any moment. See dupFd.
func (sf *segFile) Fd() uintptr {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.f == nil || !sf.pinned {
		return vfs.InvalidFd
	}
	return sf.f.Fd()
}

// Truncate cuts the file (see truncateFile).
func (sf *segFile) Truncate(size int64) error {
	f, err := sf.acquire()
	if err != nil {
		return err
	}
	defer sf.release()
	return truncateFile(f, size)
}

// dupFd returns a duplicate of the file's descriptor, owned by the caller,
// or ok false where the file has none (not the OS's filesystem).
func (sf *segFile) dupFd() (int, bool, error) {
	f, err := sf.acquire()
	if err != nil {
		return 0, false, err
	}
	defer sf.release()
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return 0, false, nil
	}
	dup, err := dupCloexec(fd)
	if err != nil {
		return 0, false, err
	}
	return dup, true, nil
}
