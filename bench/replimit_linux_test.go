//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckMappedCRC checks a batch's CRC over the file's pages, at an
// offset that is not page-aligned: a good batch passes, one flipped bit
// fails.
func TestCheckMappedCRC(t *testing.T) {
	cfg := replimitConfig{Size: 100, BatchBytes: 1000}
	body := replimitFrame(cfg)[4:]
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const off = 5000
	bad := bytes.Clone(body)
	bad[len(bad)/2] ^= 1
	for _, c := range []struct {
		batch []byte
		ok    bool
	}{{body, true}, {bad, false}} {
		if _, err := f.WriteAt(c.batch, off); err != nil {
			t.Fatal(err)
		}
		err := checkMappedCRC(int(f.Fd()), off, len(c.batch))
		if (err == nil) != c.ok {
			t.Errorf("batch ok=%v: checkMappedCRC returned %v", c.ok, err)
		}
	}
}
