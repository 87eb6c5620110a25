package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"sync"
)

// MemFS is an in-memory filesystem. Made by NewMem it behaves like a
// filesystem that never crashes; made by NewCrashableMem it also remembers
// what is durable, and Crash returns the filesystem a machine would find
// after losing power at that moment.
//
// Paths are cleaned with path.Clean; directories exist implicitly once
// MkdirAll names them.
type MemFS struct {
	mu sync.Mutex
	// cur maps a cleaned path to its file as the running program sees it.
	cur map[string]*memNode
	// dirs is the set of directories.
	dirs map[string]bool
	// durable maps a path to its file as it would survive a crash: the
	// namespace as of the last SyncDir of each directory. nil when the FS
	// is not crashable.
	durable map[string]*memNode
}

type memNode struct {
	mu   sync.RWMutex
	data []byte
	// synced is the content as of the last Sync (crashable FS only).
	synced []byte
}

// NewMem returns an empty in-memory filesystem that does not track
// durability.
func NewMem() *MemFS {
	return &MemFS{cur: map[string]*memNode{}, dirs: map[string]bool{"/": true, ".": true}}
}

// NewCrashableMem returns an empty in-memory filesystem that tracks what is
// durable, for crash tests.
func NewCrashableMem() *MemFS {
	m := NewMem()
	m.durable = map[string]*memNode{}
	return m
}

// CrashOptions says how Crash treats bytes that were written but not synced.
type CrashOptions struct {
	// Rand, when set, keeps a random prefix of each file's unsynced tail
	// (as a disk may have persisted part of it) and may flip bits in what
	// it keeps. When nil, every unsynced byte is lost.
	Rand *rand.Rand
}

// Crash returns a new filesystem holding what would survive a power loss
// now: for every durable name, the file's synced bytes (plus, with
// opts.Rand, a random part of the unsynced tail, possibly damaged). m itself
// is left untouched and may keep being used by goroutines that have not
// noticed the crash; they cannot affect the returned FS. Crash panics if m
// is not crashable.
func (m *MemFS) Crash(opts CrashOptions) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.durable == nil {
		panic("vfs: Crash on a MemFS made by NewMem")
	}
	out := NewCrashableMem()
	for d := range m.dirs {
		out.dirs[d] = true
	}
	names := make([]string, 0, len(m.durable))
	for name := range m.durable {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic use of opts.Rand
	for _, name := range names {
		n := m.durable[name]
		n.mu.RLock()
		data := append([]byte(nil), n.synced...)
		if r := opts.Rand; r != nil && len(n.data) > len(n.synced) && hasPrefix(n.data, n.synced) {
			tail := n.data[len(n.synced):]
			keep := r.IntN(len(tail) + 1)
			kept := append([]byte(nil), tail[:keep]...)
			if keep > 0 && r.IntN(4) == 0 {
				i := r.IntN(keep)
				kept[i] ^= 1 << uint(r.IntN(8))
			}
			data = append(data, kept...)
		}
		n.mu.RUnlock()
		nn := &memNode{data: data, synced: append([]byte(nil), data...)}
		out.cur[name] = nn
		out.durable[name] = nn
	}
	return out
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}

// ReadFile returns a copy of the current content of name.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	n, ok := m.cur[path.Clean(name)]
	m.mu.Unlock()
	if !ok {
		return nil, notExist("read", name)
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return append([]byte(nil), n.data...), nil
}

// WriteFile replaces the content of name, creating it if needed, and makes
// both the content and the name durable. Tests use it to damage files.
func (m *MemFS) WriteFile(name string, data []byte) {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n := &memNode{data: append([]byte(nil), data...), synced: append([]byte(nil), data...)}
	m.cur[name] = n
	if m.durable != nil {
		m.durable[name] = n
	}
}

func notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

func (m *MemFS) parentExistsLocked(name string) bool {
	return m.dirs[path.Dir(name)]
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.parentExistsLocked(name) {
		return nil, notExist("create", name)
	}
	n, ok := m.cur[name]
	if ok {
		n.mu.Lock()
		n.data = n.data[:0:0]
		n.mu.Unlock()
	} else {
		n = &memNode{}
		m.cur[name] = n
	}
	return &memFile{fs: m, n: n, name: name, write: true}, nil
}

// OpenReadWrite implements FS.
func (m *MemFS) OpenReadWrite(name string) (File, error) {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.cur[name]
	if !ok {
		return nil, notExist("open", name)
	}
	return &memFile{fs: m, n: n, name: name, write: true}, nil
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.cur[name]
	if !ok {
		return nil, notExist("open", name)
	}
	return &memFile{fs: m, n: n, name: name}, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cur[name]; !ok {
		return notExist("remove", name)
	}
	delete(m.cur, name)
	return nil
}

// RemoveAll implements FS. NB: the removal is durable at once, as the log
// only uses RemoveAll to delete a whole partition.
func (m *MemFS) RemoveAll(dir string) error {
	dir = path.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := dir + "/"
	for name := range m.cur {
		if name == dir || strings.HasPrefix(name, prefix) {
			delete(m.cur, name)
		}
	}
	for name := range m.durable {
		if name == dir || strings.HasPrefix(name, prefix) {
			delete(m.durable, name)
		}
	}
	for d := range m.dirs {
		if d == dir || strings.HasPrefix(d, prefix) {
			delete(m.dirs, d)
		}
	}
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = path.Clean(oldname), path.Clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.cur[oldname]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	if !m.parentExistsLocked(newname) {
		return notExist("rename", newname)
	}
	delete(m.cur, oldname)
	m.cur[newname] = n
	return nil
}

// MkdirAll implements FS. NB: directories are durable at once.
func (m *MemFS) MkdirAll(dir string) error {
	dir = path.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := dir; ; d = path.Dir(d) {
		if _, isFile := m.cur[d]; isFile {
			return fmt.Errorf("vfs: mkdir %s: a file is in the way", d)
		}
		m.dirs[d] = true
		if d == "/" || d == "." {
			break
		}
	}
	return nil
}

// List implements FS.
func (m *MemFS) List(dir string) ([]string, error) {
	dir = path.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return nil, notExist("list", dir)
	}
	var names []string
	for name := range m.cur {
		if path.Dir(name) == dir {
			names = append(names, path.Base(name))
		}
	}
	for d := range m.dirs {
		if d != dir && path.Dir(d) == dir {
			names = append(names, path.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Exists implements FS.
func (m *MemFS) Exists(name string) bool {
	name = path.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.cur[name]
	return ok || m.dirs[name]
}

// SyncDir implements FS: the current entries of dir become the durable ones.
func (m *MemFS) SyncDir(dir string) error {
	dir = path.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return notExist("syncdir", dir)
	}
	if m.durable == nil {
		return nil
	}
	for name := range m.durable {
		if path.Dir(name) == dir {
			delete(m.durable, name)
		}
	}
	for name, n := range m.cur {
		if path.Dir(name) == dir {
			m.durable[name] = n
		}
	}
	return nil
}

type memFile struct {
	fs     *MemFS
	n      *memNode
	name   string
	write  bool
	mu     sync.Mutex
	closed bool
}

var errClosed = errors.New("vfs: file already closed")

func (f *memFile) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.isClosed() {
		return 0, errClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("vfs: read %s: negative offset", f.name)
	}
	f.n.mu.RLock()
	defer f.n.mu.RUnlock()
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if f.isClosed() {
		return 0, errClosed
	}
	if !f.write {
		return 0, fmt.Errorf("vfs: write %s: opened read-only", f.name)
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	f.n.data = append(f.n.data, p...)
	return len(p), nil
}

func (f *memFile) Sync() error {
	if f.isClosed() {
		return errClosed
	}
	if f.fs.durable == nil {
		return nil
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	// NB: aliasing is safe because bytes are never overwritten in place:
	// Write appends and Truncate caps the capacity, so a later append
	// reallocates rather than writing over what synced shows.
	f.n.synced = f.n.data[:len(f.n.data):len(f.n.data)]
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if f.isClosed() {
		return errClosed
	}
	if !f.write {
		return fmt.Errorf("vfs: truncate %s: opened read-only", f.name)
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if size < 0 {
		return fmt.Errorf("vfs: truncate %s: negative size", f.name)
	}
	if size <= int64(len(f.n.data)) {
		f.n.data = f.n.data[:size:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	if f.isClosed() {
		return 0, errClosed
	}
	f.n.mu.RLock()
	defer f.n.mu.RUnlock()
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	f.closed = true
	return nil
}
