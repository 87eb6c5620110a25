package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// storageEnv is the state of one datadriven storage scenario.
type storageEnv struct {
	fs  vfs.FS
	cfg StorageConfig
	s   *Storage // nil when closed or refused
}

func newStorageEnv(fs vfs.FS) *storageEnv {
	vs, err := ParseVoters("1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293")
	if err != nil {
		panic(err)
	}
	return &storageEnv{fs: fs, cfg: StorageConfig{FS: fs, Dir: "/raft", ClusterID: "c1", NodeID: 1, Voters: vs}}
}

func (e *storageEnv) close(t testing.TB) {
	t.Helper()
	if e.s != nil {
		if err := e.s.Close(); err != nil {
			t.Fatal(err)
		}
		e.s = nil
	}
}

// ensureOpen reopens the storage after a raw-* command closed it.
func (e *storageEnv) ensureOpen(t testing.TB) {
	t.Helper()
	if e.s == nil {
		s, err := OpenStorage(e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.s = s
	}
}

// parseEntries reads "index/term[/data]" words.
func parseEntries(t testing.TB, s string) []*pb.Entry {
	t.Helper()
	var ents []*pb.Entry
	for _, w := range strings.Fields(s) {
		parts := strings.Split(w, "/")
		if len(parts) < 2 {
			t.Fatalf("entry %q: want index/term[/data]", w)
		}
		idx, err1 := strconv.ParseUint(parts[0], 10, 64)
		term, err2 := strconv.ParseUint(parts[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("entry %q: bad numbers", w)
		}
		e := &pb.Entry{Index: new(idx), Term: new(term), Type: pb.EntryNormal.Enum()}
		if len(parts) > 2 {
			e.Data = []byte(parts[2])
		}
		ents = append(ents, e)
	}
	return ents
}

func fmtEntries(ents []*pb.Entry) string {
	var b strings.Builder
	for i, e := range ents {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d/%d", e.GetIndex(), e.GetTerm())
		if len(e.GetData()) > 0 {
			fmt.Fprintf(&b, "/%s", e.GetData())
		}
	}
	return b.String()
}

// dump prints what raft reads from s.
func dumpStorage(s *Storage) string {
	var b strings.Builder
	hs, cs, err := s.InitialState()
	if err != nil {
		return "error: " + err.Error()
	}
	snap, _ := s.Snapshot()
	fmt.Fprintf(&b, "snapshot: index=%d term=%d voters=%v data=%q\n", snap.GetMetadata().GetIndex(),
		snap.GetMetadata().GetTerm(), cs.GetVoters(), snap.GetData())
	fmt.Fprintf(&b, "hard state: term=%d vote=%d commit=%d\n", hs.GetTerm(), hs.GetVote(), hs.GetCommit())
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	ents, err := s.Entries(first, last+1, 1<<30)
	if err != nil && last >= first {
		return "error: " + err.Error()
	}
	fmt.Fprintf(&b, "log: [%d, %d] %s\n", first, last, fmtEntries(ents))
	return b.String()
}

// rawDB opens the storage's Pebble database directly, for tampering.
func (e *storageEnv) rawDB(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(e.cfg.Dir, &pebble.Options{FS: e.fs, Logger: pebbleLogger{testLogger(t)}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func rawKey(t testing.TB, td *datadriven.TestData) []byte {
	t.Helper()
	var name string
	td.ScanArgs(t, "key", &name)
	switch name {
	case "entry":
		var idx uint64
		td.ScanArgs(t, "index", &idx)
		return entryKey(idx)
	case "hardstate":
		return []byte{keyHardState}
	case "snapshot":
		return []byte{keySnapshot}
	case "identity":
		return []byte{keyIdentity}
	}
	t.Fatalf("unknown key %q", name)
	return nil
}

func TestStorageDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/storage", func(t *testing.T, path string) {
		env := newStorageEnv(vfs.NewMem())
		defer env.close(t)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return runStorageCmd(t, env, td)
		})
	})
}

func runStorageCmd(t *testing.T, env *storageEnv, td *datadriven.TestData) string {
	switch td.Cmd {
	case "open":
		env.close(t)
		cfg := env.cfg
		td.MaybeScanArgs(t, "cluster", &cfg.ClusterID)
		td.MaybeScanArgs(t, "node", &cfg.NodeID)
		var voters string
		if td.MaybeScanArgs(t, "voters", &voters) {
			vs, err := ParseVoters(voters)
			if err != nil {
				return err.Error()
			}
			cfg.Voters = vs
		}
		s, err := OpenStorage(cfg)
		if err != nil {
			return fmt.Sprintf("error: %v\ncorruption=%t wrong-cluster=%t wrong-node=%t voters-changed=%t", err,
				IsCorruption(err), errors.Is(err, ErrWrongCluster), errors.Is(err, ErrWrongNode), errors.Is(err, ErrVotersChanged))
		}
		env.s = s
		return dumpStorage(s)
	case "close":
		env.close(t)
		return "ok"
	case "save":
		env.ensureOpen(t)
		// save [term= vote= commit=] [snap-index= snap-term= data=] \n entries
		var hs *pb.HardState
		if td.HasArg("commit") || td.HasArg("term") {
			var term, vote, commit uint64
			td.MaybeScanArgs(t, "term", &term)
			td.MaybeScanArgs(t, "vote", &vote)
			td.MaybeScanArgs(t, "commit", &commit)
			hs = &pb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
		}
		var snap *pb.Snapshot
		if td.HasArg("snap-index") {
			var idx, term uint64
			var data string
			td.ScanArgs(t, "snap-index", &idx)
			td.ScanArgs(t, "snap-term", &term)
			td.MaybeScanArgs(t, "data", &data)
			_, cs, _ := env.s.InitialState()
			snap = &pb.Snapshot{Data: []byte(data), Metadata: &pb.SnapshotMetadata{Index: new(idx), Term: new(term), ConfState: cs}}
		}
		if err := env.s.Save(hs, parseEntries(t, td.Input), snap); err != nil {
			return "error: " + err.Error()
		}
		return dumpStorage(env.s)
	case "snapshot":
		var idx, compact uint64
		var data string
		td.ScanArgs(t, "index", &idx)
		td.MaybeScanArgs(t, "compact", &compact)
		td.MaybeScanArgs(t, "data", &data)
		env.ensureOpen(t)
		_, cs, _ := env.s.InitialState()
		if err := env.s.SaveSnapshot(idx, cs, []byte(data), compact); err != nil {
			return "error: " + err.Error()
		}
		return dumpStorage(env.s)
	case "raw-stored":
		// Lists the entry keys in the database (compaction deletes them).
		env.close(t)
		db := env.rawDB(t)
		defer db.Close()
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{keyEntry}, UpperBound: []byte{keyEntry + 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var idxs []string
		for it.First(); it.Valid(); it.Next() {
			idxs = append(idxs, strconv.FormatUint(binary.BigEndian.Uint64(it.Key()[1:]), 10))
		}
		return "entries: " + strings.Join(idxs, " ")
	case "flip-byte":
		// Flips the last byte of a stored value (its checksum no longer
		// matches).
		env.close(t)
		db := env.rawDB(t)
		defer db.Close()
		k := rawKey(t, td)
		v, closer, err := db.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		v2 := append([]byte(nil), v...)
		closer.Close()
		v2[len(v2)-1] ^= 0x40
		if err := db.Set(k, v2, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		return "ok"
	case "raw-delete":
		env.close(t)
		db := env.rawDB(t)
		defer db.Close()
		if err := db.Delete(rawKey(t, td), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		return "ok"
	case "raw-put-entry":
		// Stores a well-checksummed entry under key index= holding the
		// entry of the input (to break the log's invariants, not its
		// checksums).
		env.close(t)
		db := env.rawDB(t)
		defer db.Close()
		var idx uint64
		td.ScanArgs(t, "index", &idx)
		e := parseEntries(t, td.Input)[0]
		p, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Set(entryKey(idx), appendRecord(nil, entryKey(idx), p), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		return "ok"
	}
	t.Fatalf("unknown command %q", td.Cmd)
	return ""
}

// TestStorageRaftContract checks Storage against raft's reading rules on a
// log with a snapshot and compaction: Term of the entry before FirstIndex,
// ErrCompacted below it, ErrUnavailable beyond LastIndex.
func TestStorageRaftContract(t *testing.T) {
	env := newStorageEnv(vfs.NewMem())
	s, err := OpenStorage(env.cfg)
	if err != nil {
		t.Fatal(err)
	}
	env.s = s
	defer env.close(t)
	if err := s.Save(&pb.HardState{Term: new(uint64(2)), Commit: new(uint64(8))}, parseEntries(t, "1/1 2/1 3/1 4/2 5/2 6/2 7/2 8/2 9/2 10/2"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(8, &pb.ConfState{Voters: []uint64{1, 2, 3}}, []byte("s8"), 5); err != nil {
		t.Fatal(err)
	}
	if fi, _ := s.FirstIndex(); fi != 6 {
		t.Fatalf("FirstIndex = %d, want 6", fi)
	}
	if tm, err := s.Term(5); err != nil || tm != 2 {
		t.Fatalf("Term(5) = %d, %v; want 2 (the entry before FirstIndex keeps its term)", tm, err)
	}
	if _, err := s.Term(4); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Term(4) error = %v, want ErrCompacted", err)
	}
	if _, err := s.Entries(5, 7, 1<<20); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries(5, 7) error = %v, want ErrCompacted", err)
	}
	if _, err := s.Term(11); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Term(11) error = %v, want ErrUnavailable", err)
	}
	// After a reopen the log starts at the snapshot.
	env.close(t)
	if env.s, err = OpenStorage(env.cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := dumpStorage(env.s), "snapshot: index=8 term=2 voters=[1 2 3] data=\"s8\"\nhard state: term=2 vote=0 commit=8\nlog: [9, 10] 9/2 10/2\n"; got != want {
		t.Fatalf("after reopen:\n%s\nwant:\n%s", got, want)
	}
}
