package vfs

import (
	"fmt"
	"sync"
	"syscall"
)

// Op names a filesystem operation for an Injector.
type Op uint8

// The operations an Injector sees.
const (
	OpCreate Op = iota
	OpOpen
	OpWrite
	OpSync
	OpTruncate
	OpRemove
	OpRename
	OpSyncDir
	OpRead
)

func (o Op) String() string {
	return [...]string{"create", "open", "write", "sync", "truncate", "remove", "rename", "syncdir", "read"}[o]
}

// Injector decides, before each operation, whether it fails: a non-nil error
// is returned instead of performing the operation.
type Injector func(op Op, name string) error

// InjectingFS wraps an FS and fails operations chosen by its Injector. A
// failing write may first write part of its bytes, like a device that fills
// up mid-write.
type InjectingFS struct {
	FS
	mu  sync.Mutex
	inj Injector
	// PartialWrites, when set before use, makes a failed write store half of
	// its bytes before failing.
	PartialWrites bool
}

// NewInjecting returns an FS that consults inj (which may be nil and may be
// replaced with SetInjector) before every operation.
func NewInjecting(inner FS, inj Injector) *InjectingFS {
	return &InjectingFS{FS: inner, inj: inj}
}

// SetInjector replaces the injector; nil injects nothing.
func (f *InjectingFS) SetInjector(inj Injector) {
	f.mu.Lock()
	f.inj = inj
	f.mu.Unlock()
}

func (f *InjectingFS) check(op Op, name string) error {
	f.mu.Lock()
	inj := f.inj
	f.mu.Unlock()
	if inj == nil {
		return nil
	}
	return inj(op, name)
}

// ErrNoSpace is what a typical injector returns to simulate a full disk.
var ErrNoSpace = fmt.Errorf("vfs: injected: %w", syscall.ENOSPC)

// Create implements FS.
func (f *InjectingFS) Create(name string) (File, error) {
	if err := f.check(OpCreate, name); err != nil {
		return nil, err
	}
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &injFile{File: file, fs: f, name: name}, nil
}

// OpenReadWrite implements FS.
func (f *InjectingFS) OpenReadWrite(name string) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	file, err := f.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &injFile{File: file, fs: f, name: name}, nil
}

// Open implements FS.
func (f *InjectingFS) Open(name string) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &injFile{File: file, fs: f, name: name}, nil
}

// Remove implements FS.
func (f *InjectingFS) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

// Rename implements FS.
func (f *InjectingFS) Rename(oldname, newname string) error {
	if err := f.check(OpRename, oldname); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}

// SyncDir implements FS.
func (f *InjectingFS) SyncDir(dir string) error {
	if err := f.check(OpSyncDir, dir); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

type injFile struct {
	File
	fs   *InjectingFS
	name string
}

func (f *injFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *injFile) Write(p []byte) (int, error) {
	if err := f.fs.check(OpWrite, f.name); err != nil {
		if f.fs.PartialWrites && len(p) > 1 {
			n, _ := f.File.Write(p[:len(p)/2])
			return n, err
		}
		return 0, err
	}
	return f.File.Write(p)
}

func (f *injFile) Sync() error {
	if err := f.fs.check(OpSync, f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *injFile) Truncate(size int64) error {
	if err := f.fs.check(OpTruncate, f.name); err != nil {
		return err
	}
	return f.File.Truncate(size)
}
