// Package atomicfile replaces small files durably: readers see the old
// contents or the new, never a torn mix, and the new contents survive a
// machine crash once Write returns.
//
// It writes through a filesystem (Pebble's vfs.FS), so the same code runs on
// the operating system's filesystem and, in tests, on a memory filesystem
// that forgets what was not synced (vfs.NewCrashableMem) or fails chosen
// operations (errorfs).
package atomicfile

import (
	"io"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Write replaces path with data on the operating system's filesystem: it is
// WriteFS(vfs.Default, path, data).
func Write(path string, data []byte) error { return WriteFS(vfs.Default, path, data) }

// WriteFS replaces path with data on fs: it writes a temporary file beside
// it, syncs it, renames it over path and syncs the directory. On failure the
// temporary file is removed and path is left as it was.
func WriteFS(fs vfs.FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = SyncDirFS(fs, fs.PathDir(path))
	}
	if err != nil {
		_ = fs.Remove(tmp)
	}
	return err
}

// SyncDir syncs a directory of the operating system's filesystem: it is
// SyncDirFS(vfs.Default, dir).
func SyncDir(dir string) error { return SyncDirFS(vfs.Default, dir) }

// SyncDirFS syncs the directory dir of fs, so that the entries created,
// renamed or removed in it survive a machine crash.
func SyncDirFS(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadFile returns the contents of name on fs.
func ReadFile(fs vfs.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
