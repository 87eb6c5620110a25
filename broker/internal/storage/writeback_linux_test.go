//go:build linux

package storage

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestStartWriteback: the hint is the real system call (a bad descriptor
// is refused) and succeeds on a segment-like file's fresh bytes.
func TestStartWriteback(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if _, err := f.WriteAt(make([]byte, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	if err := startWriteback(f.Fd(), 0, 1<<20); err != nil {
		t.Fatalf("startWriteback on a written file: %v", err)
	}
	if err := startWriteback(f.Fd(), 1<<20-100, 300); err != nil {
		t.Fatalf("startWriteback of a range past the end: %v", err)
	}
	if err := startWriteback(^uintptr(0)>>1, 0, 1); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("startWriteback on a bad descriptor: %v, want EBADF", err)
	}
}
