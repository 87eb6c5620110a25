package storage

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// badFdFS is an in-memory filesystem whose writable files report a
// descriptor that is not open, so that the group commit's writeback hint
// (startWriteback) is reached, and fails, on every append.
type badFdFS struct{ vfs.FS }

type badFdFile struct{ vfs.File }

// badFd is no open descriptor of this process.
const badFd = uintptr(1 << 30)

func (f badFdFile) Fd() uintptr { return badFd }

func (fs badFdFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return badFdFile{f}, nil
}

func (fs badFdFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	if err != nil {
		return nil, err
	}
	return badFdFile{f}, nil
}

// TestWritebackHintFailureIsHarmless: under group commit a failed
// writeback hint fails nothing (the append succeeds, its records become
// durable through SyncData), and does not stand in for SyncData: with
// the fsync failing, the wait for durability fails and the high
// watermark stays put. The errorfs tests run on memory filesystems, whose
// files have no descriptor, so they never reach the hint.
func TestWritebackHintFailureIsHarmless(t *testing.T) {
	fs, ff := withFaults(badFdFS{vfs.NewMem()}, nil)
	l := openTest(t, fs, Options{Sync: SyncGroupCommit})
	res, err := l.AppendNoWait(simpleBatch(t, 3, 1000), 0)
	if err != nil {
		t.Fatalf("AppendNoWait with a failing writeback hint: %v", err)
	}
	if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
		t.Fatalf("WaitDurable: %v", err)
	}
	if hw := l.HighWatermark(); hw != 3 {
		t.Fatalf("hw %d, want 3", hw)
	}
	appendOverFailedSync(t, l, ff, 3)
}
