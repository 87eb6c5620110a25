package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"

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

// crashKeepingTails returns what a power loss at this moment may leave of
// fs: what was synced (fs.CrashClone), and of each file that only grew
// since its last sync a random prefix of the unsynced tail (a disk may
// have written part of it), in which, one time in four, a bit is flipped.
// fs itself is left as it is. Every choice comes from rng, in the order of
// the sorted file names.
func crashKeepingTails(t testing.TB, fs *vfs.MemFS, rng *rand.Rand) *vfs.MemFS {
	t.Helper()
	// NB: fs may change between the two clones (goroutines that have not
	// noticed the crash): out is a crash at its own moment, and a tail
	// taken from the earlier now was still unsynced then.
	now := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(0, 0))})
	out := fs.CrashClone(vfs.CrashCloneCfg{})
	var walk func(dir string)
	walk = func(dir string) {
		names, err := listDir(out, dir)
		if err != nil {
			t.Fatalf("crash: list %s: %v", dir, err)
		}
		for _, n := range names {
			p := out.PathJoin(dir, n)
			fi, err := out.Stat(p)
			if err != nil {
				t.Fatalf("crash: stat %s: %v", p, err)
			}
			if fi.IsDir() {
				walk(p)
				continue
			}
			synced, err := readFile(out, p)
			if err != nil {
				t.Fatalf("crash: read %s: %v", p, err)
			}
			cur, err := readFile(now, p)
			if err != nil || len(cur) <= len(synced) || !bytes.HasPrefix(cur, synced) {
				continue
			}
			tail := cur[len(synced):]
			kept := append([]byte(nil), tail[:rng.IntN(len(tail)+1)]...)
			if len(kept) > 0 && rng.IntN(4) == 0 {
				kept[rng.IntN(len(kept))] ^= 1 << rng.IntN(8)
			}
			if err := writeFileDurable(out, p, append(synced, kept...)); err != nil {
				t.Fatalf("crash: write %s: %v", p, err)
			}
		}
	}
	walk("/")
	return out
}

// TestRollStopsOnUnremovableCheckpoint: a roll whose recovery-point
// checkpoint can be neither rewritten nor removed fails, leaving the log
// as it was (no next segment), so the old checkpoint describes the log it
// was written for; once the file system answers again, the next append
// rolls and rewrites it.
func TestRollStopsOnUnremovableCheckpoint(t *testing.T) {
	b0 := simpleBatch(t, 1, 1000)
	fs, f := withFaults(vfs.NewMem(), nil)
	l := openTest(t, fs, Options{Config: Config{SegmentBytes: int64(len(b0))}})
	for i := range 3 {
		mustAppend(t, l, simpleBatch(t, 1, 1000+int64(i)))
	}
	before, err := readFile(fs, l.path(recoveryPointFile))
	if err != nil {
		t.Fatal(err)
	}
	segs := len(l.segs)
	f.set(func(op errorfs.Op) error {
		if strings.Contains(op.Path, recoveryPointFile) {
			return errorfs.ErrInjected
		}
		return nil
	})
	if _, err := l.Append(context.Background(), simpleBatch(t, 1, 2000), 0); err == nil || !errors.Is(err, ErrStorage) {
		t.Fatalf("append whose roll could not replace the checkpoint: %v, want ErrStorage", err)
	}
	if n := len(l.segs); n != segs {
		t.Fatalf("%d segments after the failed roll, want %d", n, segs)
	}
	f.set(nil)
	if after, err := readFile(fs, l.path(recoveryPointFile)); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("checkpoint after the failed roll: %q (%v), want it unchanged %q", after, err, before)
	}
	mustAppend(t, l, simpleBatch(t, 1, 2001))
	data, err := readFile(fs, l.path(recoveryPointFile))
	if err != nil {
		t.Fatal(err)
	}
	point, _, err := decodeRecoveryPoint(data)
	if err != nil || point != Offset(segs) {
		t.Fatalf("checkpoint after the roll: point %d (%v), want %d", point, err, segs)
	}
}
