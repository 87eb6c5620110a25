package stateengine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state/statetest"
)

// corruptSSTables flips bytes in the middle of every SSTable of the
// database: inside a data block of store data, away from the first block
// (the catalog) and the index and footer at the end (read at open).
func corruptSSTables(t *testing.T, fs vfs.FS, dir string) int {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		if !strings.HasSuffix(name, ".sst") {
			continue
		}
		path := fs.PathJoin(dir, name)
		f, err := fs.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) / 2; i < len(b)/2+64; i++ {
			b[i] ^= 0x5a
		}
		w, err := fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		n++
	}
	return n
}

// TestCorruptionFoundByReadWipesAtReopen: corruption that Pebble finds
// only when a read touches the damaged block is returned as an error that
// IsCorruption recognizes, is logged, and marks the database: the next
// Open wipes it and the store is rebuilt from its changelog.
func TestCorruptionFoundByReadWipesAtReopen(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	cl := statetest.NewChangelog("app-kv-changelog", 0)
	e := openEngineLog(t, fs, nil)
	s := openKV(t, e, cl, false)
	for i := range 2000 {
		put(t, s, fmt.Sprintf("k%05d", i), strings.Repeat("v", 100))
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stateengine.FlushMemtablesForTest(e); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_ = e.Close()
	if n := corruptSSTables(t, fs, "/state/pebble"); n == 0 {
		t.Fatal("no SSTable to corrupt")
	}

	var lb logBuffer
	e2, err := stateengine.Open(stateengine.Options{Dir: "/state", FS: fs, MemoryBudget: stateengine.MinMemoryBudget, Logger: slog.New(slog.NewTextHandler(&lb, nil))})
	if err != nil {
		t.Fatalf("open with a damaged data block: %v", err)
	}
	s2 := openKV(t, e2, cl, false)
	_, err = s2.Get([]byte("k00000"))
	if err == nil {
		it, ierr := s2.All(false)
		if ierr != nil {
			t.Fatal(ierr)
		}
		for it.Next() {
		}
		err = it.Close()
	}
	if err == nil || !stateengine.IsCorruption(err) {
		t.Fatalf("read of a corrupt block: %v, want a corruption error", err)
	}
	if !e2.Corrupted() || !strings.Contains(lb.String(), "found corruption while reading") {
		t.Fatalf("corruption not recorded (Corrupted %v); log:\n%s", e2.Corrupted(), lb.String())
	}
	_ = s2.Close()
	_ = e2.Close()

	var lb3 logBuffer
	e3, err := stateengine.Open(stateengine.Options{Dir: "/state", FS: fs, MemoryBudget: stateengine.MinMemoryBudget, Logger: slog.New(slog.NewTextHandler(&lb3, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	if !strings.Contains(lb3.String(), "marked corrupt by an earlier run") {
		t.Fatalf("reopen did not say why it wipes; log:\n%s", lb3.String())
	}
	s3 := openKV(t, e3, cl, false)
	defer s3.Close()
	res, err := stateengine.Restore(ctx, s3, cl)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := cl.EndOffset(ctx)
	if res.From != 0 || res.To != end {
		t.Fatalf("restore %+v: want a rebuild from offset 0", res)
	}
	if d := cmp.Diff(replay(cl.Records(), end), contents(t, s3)); d != "" {
		t.Fatalf("after rebuild (-changelog +store):\n%s", d)
	}
	if e3.Corrupted() {
		t.Fatal("rebuilt engine still marked corrupt")
	}
	// The marker is gone: a further reopen keeps the rebuilt data.
	_ = s3.Close()
	_ = e3.Close()
	e4 := openEngineLog(t, fs, nil)
	defer e4.Close()
	s4 := openKV(t, e4, cl, false)
	defer s4.Close()
	if cp, err := stateengine.Checkpoint(s4); err != nil || cp != end {
		t.Fatalf("checkpoint after second reopen %d %v, want %d", cp, err, end)
	}
}
