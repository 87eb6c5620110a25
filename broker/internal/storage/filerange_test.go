//go:build unix

package storage

import (
	"bytes"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestReadRange: a file range holds exactly the bytes Read returns from
// the same offset, cut at a batch boundary, never past maxBytes (beyond
// the first batch) nor the high watermark; a range is refused on a
// filesystem other than the operating system's, and at the end.
func TestReadRange(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "p"), Options{FS: vfs.Default, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 300 {
		mustAppend(t, l, simpleBatch(t, 1+i%40, int64(i)))
	}
	end := l.HighWatermark()
	for _, c := range []struct {
		from     Offset
		maxBytes int
	}{{0, 1 << 20}, {0, 20000}, {17, 50000}, {end / 2, 1 << 20}, {end - 30, 100}, {5, 1}} {
		r, ok, err := l.ReadRange(c.from, c.maxBytes, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Logf("from %d, max %d: no range", c.from, c.maxBytes)
			continue
		}
		got := make([]byte, r.Len)
		if _, err := syscall.Pread(r.FD, got, r.Off); err != nil {
			t.Fatal(err)
		}
		_ = r.Close()
		whole, err := l.Read(c.from, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(whole, got) {
			t.Fatalf("from %d, max %d: the range's %d bytes are not the start of Read's", c.from, c.maxBytes, len(got))
		}
		hs := batchesOf(t, got) // whole batches only
		if first := hs[0].Size(); len(got) > max(c.maxBytes, first) {
			t.Fatalf("from %d, max %d: %d bytes", c.from, c.maxBytes, len(got))
		}
		if Offset(hs[0].BaseOffset) > c.from || Offset(hs[0].LastOffset()) < c.from {
			t.Fatalf("from %d: the range starts with batch %d-%d", c.from, hs[0].BaseOffset, hs[0].LastOffset())
		}
	}
	if r, ok, _ := l.ReadRange(0, 1<<20, 1); !ok || r.Len < 10000 {
		t.Fatalf("no large range from 0 (ok %v, %d bytes)", ok, r.Len)
	} else {
		_ = r.Close()
	}
	if _, ok, _ := l.ReadRange(end, 1<<20, 1); ok {
		t.Fatal("a range at the high watermark")
	}
	m := openTest(t, vfs.NewMem(), Options{})
	mustAppend(t, m, simpleBatch(t, 10, 1))
	if _, ok, _ := m.ReadRange(0, 1<<20, 1); ok {
		t.Fatal("a range on a memory filesystem")
	}
}
