package storage

import (
	"fmt"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// errNoSpace is what the tests inject to simulate a full disk.
var errNoSpace = fmt.Errorf("storage test: injected: %w", syscall.ENOSPC)

// isWrite reports whether op writes file data (Write or WriteAt).
func isWrite(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt
}

// faults is an errorfs.Injector whose rule a test replaces as it goes; a
// nil rule injects nothing.
type faults struct {
	mu   sync.Mutex
	rule func(errorfs.Op) error
}

// set replaces the rule.
func (f *faults) set(rule func(errorfs.Op) error) {
	f.mu.Lock()
	f.rule = rule
	f.mu.Unlock()
}

// MaybeError implements errorfs.Injector.
func (f *faults) MaybeError(op errorfs.Op) error {
	f.mu.Lock()
	rule := f.rule
	f.mu.Unlock()
	if rule == nil {
		return nil
	}
	return rule(op)
}

// String implements errorfs.Injector.
func (f *faults) String() string { return "storage test faults" }

// withFaults wraps fs in errorfs, consulting a faults injector (initially
// with rule) before every operation.
func withFaults(fs vfs.FS, rule func(errorfs.Op) error) (vfs.FS, *faults) {
	f := &faults{rule: rule}
	return errorfs.Wrap(fs, f), f
}

// tornWriteFS fails file creations and writes as its injector says, and a
// failing write first stores half of its bytes, as on a device that fills
// up in the middle of a write. NB: errorfs fails an operation before
// anything happens, so it cannot express a torn write; other operations
// pass through.
type tornWriteFS struct {
	vfs.FS
	inj errorfs.Injector
}

func (fs *tornWriteFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.inj.MaybeError(errorfs.Op{Kind: errorfs.OpCreate, Path: name}); err != nil {
		return nil, err
	}
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return &tornWriteFile{File: f, inj: fs.inj, path: name}, nil
}

func (fs *tornWriteFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	if err != nil {
		return nil, err
	}
	return &tornWriteFile{File: f, inj: fs.inj, path: name}, nil
}

type tornWriteFile struct {
	vfs.File
	inj  errorfs.Injector
	path string
}

func (f *tornWriteFile) Write(p []byte) (int, error) {
	if err := f.inj.MaybeError(errorfs.Op{Kind: errorfs.OpFileWrite, Path: f.path}); err != nil {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, err
	}
	return f.File.Write(p)
}

func (f *tornWriteFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.inj.MaybeError(errorfs.Op{Kind: errorfs.OpFileWriteAt, Path: f.path, Offset: off}); err != nil {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, err
	}
	return f.File.WriteAt(p, off)
}

// writeFileDurable replaces the content of name on fs with data (creating
// it if needed) and makes both the content and the name durable. Tests use
// it to plant and damage files.
func writeFileDurable(fs vfs.FS, name string, data []byte) error {
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	// NB: WriteAt, not Write: the memory filesystem's Write may scribble
	// on its argument (under the race detector), and callers keep data.
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(fs, fs.PathDir(name))
	}
	return err
}
