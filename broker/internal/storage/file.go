package storage

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/internal/atomicfile"
)

// The log reaches the filesystem only through Pebble's vfs.FS (Options.FS):
// vfs.Default in production; in tests vfs.NewCrashableMem, whose CrashClone
// keeps what was synced and may drop the rest, and errorfs for injected
// faults. Durability follows the vfs model: a file's bytes are durable once
// its Sync returns, a name (create, rename, remove) once its directory is
// synced (syncDir).

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// isNoSpace reports whether err says the device is full.
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// syncDir makes the creations, renames and removals of entries of dir
// durable.
func syncDir(fs vfs.FS, dir string) error { return atomicfile.SyncDirFS(fs, dir) }

// listDir returns the names of the entries of dir, sorted.
func listDir(fs vfs.FS, dir string) ([]string, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// sizeOf returns f's current size.
func sizeOf(f vfs.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// mkdirAllDurable creates dir and any missing parents, and syncs the parent
// of each directory it created, so that the directories survive a crash.
func mkdirAllDurable(fs vfs.FS, dir string) error {
	var created []string
	for d := dir; ; d = fs.PathDir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		} else if !isNotExist(err) {
			return err
		}
		created = append(created, d)
		if p := fs.PathDir(d); p == d {
			break
		}
	}
	if len(created) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range created {
		if err := syncDir(fs, fs.PathDir(d)); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic replaces path with data: a temporary file, fsynced,
// renamed into place, and the directory fsynced.
func writeFileAtomic(fs vfs.FS, path string, data []byte) error {
	return atomicfile.WriteFS(fs, path, data)
}

// readFile reads a whole small file.
func readFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := sizeOf(f)
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); int64(n) < size {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// errCannotTruncate says a file cannot be cut in place.
var errCannotTruncate = errors.New("storage: the filesystem cannot truncate this file")

// truncateFile cuts f to size: through its Truncate method when it has one
// (the operating system's files as vfs.Default opens them), else through
// its descriptor (an operating-system file under a wrapper such as
// errorfs). Otherwise it returns errCannotTruncate and leaves f as it is.
//
// NB: Pebble's memory filesystem cannot shrink a file. Callers therefore
// only cut bytes that are not a valid continuation of the log (the remnant
// of a failed write, the invalid tail found by a scan) and treat
// errCannotTruncate as done: the log's own size ends the segment, the next
// append overwrites the remnant (appends write at that size, not at the
// file's end), and recovery cuts again at the first invalid batch.
func truncateFile(f vfs.File, size int64) error {
	if t, ok := f.(interface{ Truncate(int64) error }); ok {
		return t.Truncate(size)
	}
	if fd := f.Fd(); fd != vfs.InvalidFd {
		return ftruncate(fd, size)
	}
	return errCannotTruncate
}
