package atomicfile

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	for _, want := range []string{"first", "second, longer than the first", "3"} {
		if err := Write(path, []byte(want)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("read %q after writing %q", got, want)
		}
		if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
			t.Fatalf("temporary file left behind: %v", err)
		}
	}
}

func TestWriteFailureLeavesOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := Write(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// A directory where the temporary file would go makes the write fail
	// (not empty: Create removes what is in its way, an empty directory
	// included).
	if err := os.Mkdir(path+".tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path+".tmp", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new")); err == nil {
		t.Fatal("write over a blocked temporary path succeeded")
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "old" {
		t.Fatalf("after a failed write read %q, want %q", got, "old")
	}
}

// TestWriteFSCrash writes a file on a memory filesystem that forgets what
// was not synced, failing each of Write's operations in turn: after a
// failure, and after a crash at that point, path holds the old contents; a
// crash after a successful Write keeps the new ones. The seed of the
// unsynced-data choices is logged.
func TestWriteFSCrash(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	const dir, path = "/d", "/d/f"
	setup := func(t *testing.T) *vfs.MemFS {
		mem := vfs.NewCrashableMem()
		if err := mem.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := SyncDirFS(mem, "/"); err != nil {
			t.Fatal(err)
		}
		if err := WriteFS(mem, path, []byte("old")); err != nil {
			t.Fatal(err)
		}
		return mem
	}
	read := func(t *testing.T, fs vfs.FS) string {
		t.Helper()
		b, err := ReadFile(fs, path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		return string(b)
	}
	crash := func(mem *vfs.MemFS) *vfs.MemFS {
		return mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
	}

	// Count the operations of one successful write.
	var ops atomic.Int32
	count := errorfs.InjectorFunc(func(errorfs.Op) error { ops.Add(1); return nil })
	mem := setup(t)
	if err := WriteFS(errorfs.Wrap(mem, count), path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, crash(mem)); got != "new" {
		t.Fatalf("after a crash following a successful write: %q, want %q", got, "new")
	}
	n := ops.Load()
	if n < 4 {
		t.Fatalf("a write took %d filesystem operations; want at least create, write, sync, rename", n)
	}
	for i := range n {
		mem := setup(t)
		err := WriteFS(errorfs.Wrap(mem, errorfs.OnIndex(i)), path, []byte("new"))
		if err == nil {
			// The failed operation was the removal of the temporary file
			// or a read: the write itself went through.
			continue
		}
		if !errors.Is(err, errorfs.ErrInjected) {
			t.Fatalf("operation %d failed: %v, want the injected error", i, err)
		}
		if got := read(t, mem); got != "old" && got != "new" {
			t.Fatalf("after failing operation %d: %q", i, got)
		}
		if got := read(t, crash(mem)); got != "old" && got != "new" {
			t.Fatalf("after failing operation %d and a crash: %q, want the old or the new contents whole", i, got)
		}
	}
}
