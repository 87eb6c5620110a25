package quorum

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/raft/v3/raftpb"
)

// TestStorageCorruptTableRefused: a flipped bit in one of the raft
// database's tables (Pebble's own block checksum, below the records'
// checksums) is refused at open with the CorruptionError that names the
// directory and says what to do; the node does not panic, and nothing of
// the table is applied. Every seventh byte of the table is tried in turn
// (all of them take half a minute under the race detector).
func TestStorageCorruptTableRefused(t *testing.T) {
	mem := vfs.NewCrashableMem()
	e := newStorageEnv(mem)
	e.cfg.Logger = slog.New(slog.DiscardHandler) // a thousand corruption reports
	e.ensureOpen(t)
	var ents []*pb.Entry
	for i := uint64(1); i <= 20; i++ {
		ents = append(ents, &pb.Entry{Index: new(i), Term: new(uint64(1)), Type: pb.EntryNormal.Enum(), Data: fmt.Appendf(nil, "entry %d", i)})
	}
	if err := e.s.Save(&pb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(uint64(20))}, ents, nil); err != nil {
		t.Fatal(err)
	}
	e.close(t)
	// NB: a reopen replays the WAL into a table (Pebble flushes what it
	// recovers), so the records now sit in an .sst file.
	e.ensureOpen(t)
	e.close(t)
	names, err := mem.List("/raft")
	if err != nil {
		t.Fatal(err)
	}
	var table string
	for _, n := range names {
		if strings.HasSuffix(n, ".sst") {
			table = "/raft/" + n
		}
	}
	if table == "" {
		t.Fatalf("no table in /raft: %v", names)
	}
	orig := readAll(t, mem, table)
	refused, opened := 0, 0
	for i := 0; i < len(orig); i += 7 {
		fs := mem.CrashClone(vfs.CrashCloneCfg{}) // everything synced: all of it
		bad := append([]byte(nil), orig...)
		bad[i] ^= 0x10
		writeAll(t, fs, table, bad)
		cfg := e.cfg
		cfg.FS = fs
		s, err := openNoPanic(cfg)
		if err == nil {
			// A flip in bytes no read covers (padding, an unused
			// property) is harmless only if everything reads back whole.
			if got, _ := s.Entries(1, 21, 1<<30); len(got) != 20 {
				t.Fatalf("byte %d flipped: opened with %d entries", i, len(got))
			}
			_ = s.Close()
			opened++
			continue
		}
		if !IsCorruption(err) || !strings.Contains(err.Error(), "corrupt raft storage in /raft") ||
			!strings.Contains(err.Error(), "move this directory away") {
			t.Fatalf("byte %d of %s flipped: %v (corruption %t)", i, table, err, IsCorruption(err))
		}
		refused++
	}
	t.Logf("%s: %d bytes; a flip refused at %d, harmless at %d", table, len(orig), refused, opened)
	if refused == 0 {
		t.Fatal("no flipped byte was refused")
	}
}

// openNoPanic opens storage, turning a panic into a test failure's error.
func openNoPanic(cfg StorageConfig) (s *Storage, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("OpenStorage panicked: %v", r)
		}
	}()
	return OpenStorage(cfg)
}

func readAll(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeAll(t *testing.T, fs vfs.FS, name string, b []byte) {
	t.Helper()
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
