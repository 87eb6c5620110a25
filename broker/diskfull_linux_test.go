package broker

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// mountTmpfs mounts a tmpfs of size bytes under a fresh temporary directory
// and unmounts it at cleanup. It skips the test, loudly, when not root or
// when the mount is refused (no CAP_SYS_ADMIN in a container).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: mounting a tmpfs needs root; TestFullDiskInjected covers the same scenario on the fault-injecting filesystem")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("SKIPPING: mount -t tmpfs -o size=%s %s: %v; TestFullDiskInjected covers the same scenario on the fault-injecting filesystem", size, mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	return mnt
}

// TestFullDiskTmpfs runs the full-disk scenario on a real 4 MiB tmpfs:
// topic "big" is produced to until the broker answers KAFKA_STORAGE_ERROR,
// the last free pages go to a filler file, and deleting "big" gives its
// space back.
func TestFullDiskTmpfs(t *testing.T) {
	mnt := mountTmpfs(t, "4m")
	dir := filepath.Join(mnt, "data")
	var freeAfterFill uint64
	fullDiskScenario(t, fullDisk{
		dir:  dir,
		real: true,
		fill: func(t *testing.T, produce func(int) int16) int {
			const batch = 32 << 10
			fails := 0
			for i := 0; ; i++ {
				if i > 4*(4<<20)/batch {
					t.Fatalf("%d produces of %d bytes and the 4 MiB tmpfs is not full", i, batch)
				}
				code := produce(batch)
				if code == kerr.KafkaStorageError.Code {
					fails++
					break
				}
				if code != 0 {
					t.Fatalf("produce %d to big: %v", i, kerr.ErrorForCode(code))
				}
			}
			// Whatever is left (less than a batch) goes to a filler
			// file, so that not one page is free.
			fillPages(t, filepath.Join(mnt, "filler"))
			free, err := freeBytes(dir)
			if err != nil {
				t.Fatal(err)
			}
			freeAfterFill = free
			t.Logf("tmpfs full: %d bytes free after %d refused produce(s)", free, fails)
			return fails
		},
		topUp: func(t *testing.T) { fillPages(t, filepath.Join(mnt, "filler2")) },
		deleted: func(t *testing.T) {
			free, err := freeBytes(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("free after deleting big: %d bytes (was %d)", free, freeAfterFill)
			if free < freeAfterFill+(2<<20) {
				t.Errorf("deleting big freed %d bytes, want at least 2 MiB", free-freeAfterFill)
			}
		},
	})
}

// fillPages writes path a page at a time until the filesystem is full.
func fillPages(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if errors.Is(err, syscall.ENOSPC) {
		return // not even an inode
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for n := 0; ; n++ {
		if n > 1024 {
			t.Fatalf("%s: 4 MiB written and the filesystem is not full", path)
		}
		if _, err := f.Write(page); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
