package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// File is an open file. Reads are positional and may run concurrently with
// each other and with Write; Write appends at the file's end.
type File interface {
	io.ReaderAt
	// Write appends p at the end of the file.
	Write(p []byte) (int, error)
	// Sync makes the file's bytes durable.
	Sync() error
	// Truncate changes the file's size; later writes append at the new end.
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
	// Close releases the file.
	Close() error
}

// FS is a filesystem.
type FS interface {
	// Create creates name, or truncates it if it exists, and opens it for
	// reading and appending.
	Create(name string) (File, error)
	// OpenReadWrite opens the existing file name for reading and appending;
	// writes go to its end.
	OpenReadWrite(name string) (File, error)
	// Open opens the existing file name for reading.
	Open(name string) (File, error)
	// Remove removes the file name.
	Remove(name string) error
	// RemoveAll removes dir and everything under it; a missing dir is not an
	// error.
	RemoveAll(dir string) error
	// Rename renames oldname to newname, replacing newname if it exists.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Exists reports whether name exists.
	Exists(name string) bool
	// SyncDir makes the creations, renames and removals of entries of dir
	// durable.
	SyncDir(dir string) error
}

// IsNotExist reports whether err says a file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// IsNoSpace reports whether err says the device is full.
func IsNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// Default is the operating system's filesystem.
var Default FS = osFS{}

type osFS struct{}

type osFile struct{ f *os.File }

func (f osFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }
func (f osFile) Write(p []byte) (int, error)             { return f.f.Write(p) }
func (f osFile) Sync() error                             { return f.f.Sync() }
func (f osFile) Close() error                            { return f.f.Close() }

func (f osFile) Truncate(size int64) error { return f.f.Truncate(size) }

func (f osFile) Size() (int64, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) OpenReadWrite(name string) (File, error) {
	// O_APPEND: every write lands at the current end, including after a
	// Truncate.
	f, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) RemoveAll(dir string) error           { return os.RemoveAll(dir) }
func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }
func (osFS) Exists(name string) bool              { _, err := os.Stat(name); return err == nil }

func (osFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
