package storage

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestTruncateFile: the operating system's files are cut in place, also
// under errorfs (through the descriptor); a memory file cannot be, and
// says so without changing.
func TestTruncateFile(t *testing.T) {
	noFaults := errorfs.InjectorFunc(func(errorfs.Op) error { return nil })
	for _, tc := range []struct {
		name    string
		fs      vfs.FS
		dir     string
		wantErr error
		want    int64
	}{
		{"os", vfs.Default, t.TempDir(), nil, 40},
		{"errorfs-over-os", errorfs.Wrap(vfs.Default, noFaults), t.TempDir(), nil, 40},
		{"memory", vfs.NewMem(), "/", errCannotTruncate, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := tc.fs.Create(filepath.Join(tc.dir, "f"), vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 100), 0); err != nil {
				t.Fatal(err)
			}
			if err := truncateFile(f, 40); !errors.Is(err, tc.wantErr) {
				t.Fatalf("truncateFile: %v, want %v", err, tc.wantErr)
			}
			if got, err := sizeOf(f); err != nil || got != tc.want {
				t.Fatalf("size after truncateFile: %d (%v), want %d", got, err, tc.want)
			}
		})
	}
}

// TestDirectoriesSurviveCrash: the directories Open creates survive a
// power loss, and so does the removal of the log's directory by Remove.
func TestDirectoriesSurviveCrash(t *testing.T) {
	mem := vfs.NewCrashableMem()
	opts := Options{FS: mem, Logger: quietLogger()}
	l, err := Open("/data/topic/0", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, simpleBatch(t, 2, 1))
	opts.FS = mem.CrashClone(vfs.CrashCloneCfg{})
	l2, err := Open("/data/topic/0", opts)
	if err != nil {
		t.Fatal(err)
	}
	if leo := l2.LogEndOffset(); leo != 2 {
		t.Fatalf("after a crash the log ends at %d, want 2", leo)
	}
	if err := l2.Remove(); err != nil {
		t.Fatal(err)
	}
	crashed := opts.FS.(*vfs.MemFS).CrashClone(vfs.CrashCloneCfg{})
	if _, err := crashed.Stat("/data/topic/0"); !isNotExist(err) {
		t.Fatalf("removed log directory after a crash: %v, want it gone", err)
	}
	l.Close()
}
