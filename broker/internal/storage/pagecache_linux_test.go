//go:build linux && (amd64 || arm64)

package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// residentPages counts the pages of the file at path that are in the page
// cache (mincore over a mapping of it).
func residentPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() == 0 {
		return 0
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestDropSyncedCache: a follower's fsynced bytes leave the page cache (all
// but the partial last page), and read back the same from disk; under a
// policy that does not fsync every append nothing is dropped.
func TestDropSyncedCache(t *testing.T) {
	var sfs syscall.Statfs_t
	dir := t.TempDir()
	if err := syscall.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Type == 0x01021994 { // tmpfs: its pages are the file
		t.Skip("the temporary directory is on tmpfs, which keeps every page")
	}
	leader := openTest(t, vfs.NewMem(), Options{})
	value := bytes.Repeat([]byte("v"), 8000)
	for i := range 64 {
		mustAppend(t, leader, buildBatch(t, batchSpec{recs: []kv{{key: []byte{byte(i)}, value: value, ts: 1}}}))
	}
	for _, policy := range []SyncPolicy{SyncGroupCommit, SyncInterval} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := filepath.Join(dir, policy.String())
			l, err := Open(dir, Options{FS: vfs.Default, Sync: policy, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			for l.LogEndOffset() < leader.LogEndOffset() {
				b, err := leader.ReadReplica(l.LogEndOffset(), 100<<10)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.AppendReplica(b); err != nil {
					t.Fatal(err)
				}
				if err := l.WaitDurable(ctx, l.LogEndOffset()); err != nil {
					t.Fatal(err)
				}
				l.DropSyncedCache()
			}
			seg := filepath.Join(dir, segmentName(0, logSuffix))
			got := residentPages(t, seg)
			st, err := os.Stat(seg)
			if err != nil {
				t.Fatal(err)
			}
			pages := int((st.Size() + cachePage - 1) / cachePage)
			switch {
			case policy == SyncGroupCommit && got > 1:
				t.Fatalf("%d of the segment's %d pages still cached after DropSyncedCache, want at most the last", got, pages)
			case policy != SyncGroupCommit && got < pages-1:
				t.Fatalf("only %d of the segment's %d pages cached under %v: DropSyncedCache dropped what it must keep", got, pages, policy)
			}
			if a, b := replicaBytes(t, l), replicaBytes(t, leader); !bytes.Equal(a, b) {
				t.Fatalf("the follower reads back %d bytes differing from the leader's %d", len(a), len(b))
			}
		})
	}
}
