package quorum

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	pb "go.etcd.io/raft/v3/raftpb"
)

// crashRecorder takes a crash image of a crashable MemFS before every
// write-type filesystem operation while armed: each image is what a power
// loss at that step would leave.
type crashRecorder struct {
	mem   *vfs.MemFS
	armed atomic.Bool
	mu    sync.Mutex
	rng   *rand.Rand  // guarded by mu
	step  string      // guarded by mu: the operation running
	crash []crashShot // guarded by mu
}

type crashShot struct {
	step string // the storage operation
	op   string // the filesystem operation about to run
	fs   *vfs.MemFS
	pct  int
}

func (r *crashRecorder) MaybeError(op errorfs.Op) error {
	if !r.armed.Load() || op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Half the images keep only synced data; the others keep a random
	// share of what was not synced, as a real disk may.
	pct := 0
	if r.rng.IntN(2) == 1 {
		pct = 1 + r.rng.IntN(99)
	}
	fs := r.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(r.rng.Uint64(), 1))})
	r.crash = append(r.crash, crashShot{step: r.step, op: fmt.Sprintf("%v %s", op.Kind, op.Path), fs: fs, pct: pct})
	return nil
}

func (r *crashRecorder) String() string { return "crashRecorder" }

// reopenDump opens the storage in a crash image and returns what raft
// would read from it.
func reopenDump(t *testing.T, fs vfs.FS, cfg StorageConfig) (string, error) {
	t.Helper()
	cfg.FS = fs
	s, err := OpenStorage(cfg)
	if err != nil {
		return "", err
	}
	defer s.Close()
	return dumpStorage(s), nil
}

// committedOK checks that a reopened storage holds every committed entry of
// want (index -> data), in its log or under its snapshot (whose data names
// the last index it covers, "upto=N").
func committedOK(t *testing.T, fs vfs.FS, cfg StorageConfig, want map[uint64]string) error {
	t.Helper()
	cfg.FS = fs
	s, err := OpenStorage(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	snap, _ := s.Snapshot()
	var covered uint64
	if d := string(snap.GetData()); strings.HasPrefix(d, "upto=") {
		fmt.Sscanf(d, "upto=%d", &covered)
	}
	hs, _, _ := s.InitialState()
	for idx, data := range want {
		if idx > hs.GetCommit() {
			return fmt.Errorf("committed entry %d is above the stored commit index %d", idx, hs.GetCommit())
		}
		if idx <= snap.GetMetadata().GetIndex() {
			if idx > covered {
				return fmt.Errorf("committed entry %d is under the snapshot at %d, which covers only %d", idx, snap.GetMetadata().GetIndex(), covered)
			}
			continue
		}
		ents, err := s.Entries(idx, idx+1, 1<<20)
		if err != nil || len(ents) != 1 || string(ents[0].GetData()) != data {
			return fmt.Errorf("committed entry %d (%q) lost: %v %v", idx, data, ents, err)
		}
	}
	return nil
}

func TestStorageCrashAtEveryStep(t *testing.T) {
	seed := testSeed(t)
	ents := func(from, to, term uint64, tag string) []*pb.Entry {
		var es []*pb.Entry
		for i := from; i <= to; i++ {
			es = append(es, &pb.Entry{Index: new(i), Term: new(term), Type: pb.EntryNormal.Enum(), Data: fmt.Appendf(nil, "%s%d", tag, i)})
		}
		return es
	}
	hs := func(term, commit uint64) *pb.HardState {
		return &pb.HardState{Term: new(term), Vote: new(uint64(1)), Commit: new(commit)}
	}
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}}
	type step struct {
		name string
		do   func(s *Storage) error
		// commit is what the step commits: index -> data.
		commit map[uint64]string
	}
	committed := func(from, to uint64, tag string) map[uint64]string {
		m := map[uint64]string{}
		for i := from; i <= to; i++ {
			m[i] = fmt.Sprintf("%s%d", tag, i)
		}
		return m
	}
	scenarios := []struct {
		name  string
		steps []step
	}{
		{"snapshot and compaction", []step{
			{"append 1-30, commit 25", func(s *Storage) error { return s.Save(hs(1, 25), ents(1, 30, 1, "a"), nil) }, committed(1, 25, "a")},
			{"snapshot at 20, compact to 15", func(s *Storage) error { return s.SaveSnapshot(20, cs, []byte("upto=20"), 15) }, nil},
			{"append 31-40, commit 40", func(s *Storage) error { return s.Save(hs(1, 40), ents(31, 40, 1, "a"), nil) }, committed(26, 40, "a")},
			{"snapshot at 40, compact to 40", func(s *Storage) error { return s.SaveSnapshot(40, cs, []byte("upto=40"), 40) }, nil},
		}},
		{"log truncation", []step{
			{"append 1-20, commit 12", func(s *Storage) error { return s.Save(hs(1, 12), ents(1, 20, 1, "a"), nil) }, committed(1, 12, "a")},
			// A new leader's log conflicts from 14 on: the suffix 14-20
			// goes, 14-16 of term 2 replace it.
			{"truncate at 14, append 14-16 of term 2", func(s *Storage) error { return s.Save(hs(2, 15), ents(14, 16, 2, "b"), nil) }, committed(14, 15, "b")},
			{"snapshot at 15, compact to 10", func(s *Storage) error { return s.SaveSnapshot(15, cs, []byte("upto=15"), 10) }, nil},
			{"snapshot from the leader at 30", func(s *Storage) error {
				return s.Save(hs(3, 30), nil, &pb.Snapshot{Data: []byte("upto=30"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(30)), Term: new(uint64(3)), ConfState: cs}})
			}, nil},
			{"append 31-33, commit 33", func(s *Storage) error { return s.Save(hs(3, 33), ents(31, 33, 3, "c"), nil) }, committed(31, 33, "c")},
		}},
	}
	for si, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec := &crashRecorder{mem: vfs.NewCrashableMem(), rng: rand.New(rand.NewPCG(seed, uint64(si)))}
			env := newStorageEnv(errorfs.Wrap(rec.mem, rec))
			s, err := OpenStorage(env.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			// states[i] is the reopened storage after i steps (a crash
			// image of synced data only).
			image := func() *vfs.MemFS { return rec.mem.CrashClone(vfs.CrashCloneCfg{}) }
			first, err := reopenDump(t, image(), env.cfg)
			if err != nil {
				t.Fatal(err)
			}
			states := []string{first}
			want := map[uint64]string{}
			wants := []map[uint64]string{{}}
			for _, st := range sc.steps {
				rec.mu.Lock()
				rec.step = st.name
				rec.mu.Unlock()
				rec.armed.Store(true)
				err := st.do(s)
				rec.armed.Store(false)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				d, err := reopenDump(t, image(), env.cfg)
				if err != nil {
					t.Fatalf("after %s: %v", st.name, err)
				}
				states = append(states, d)
				for k, v := range st.commit {
					want[k] = v
				}
				w := map[uint64]string{}
				for k, v := range want {
					w[k] = v
				}
				wants = append(wants, w)
				// A step that returned is durable: a power loss right
				// after it keeps everything committed so far.
				if err := committedOK(t, image(), env.cfg, w); err != nil {
					t.Fatalf("power loss after %q returned: %v", st.name, err)
				}
			}
			if len(rec.crash) < len(sc.steps) {
				t.Fatalf("only %d crash images for %d steps", len(rec.crash), len(sc.steps))
			}
			// Every crash image opens cleanly, is the state before its
			// step or after it (a step is atomic), and loses nothing
			// committed before the step.
			stepOf := map[string]int{}
			for i, st := range sc.steps {
				stepOf[st.name] = i
			}
			for _, c := range rec.crash {
				i := stepOf[c.step]
				got, err := reopenDump(t, c.fs, env.cfg)
				if err != nil {
					t.Errorf("crash during %q before %s (unsynced kept %d%%): open: %v", c.step, c.op, c.pct, err)
					continue
				}
				if got != states[i] && got != states[i+1] {
					t.Errorf("crash during %q before %s (unsynced kept %d%%): state is neither the one before nor after the step:\n%s\nbefore:\n%s\nafter:\n%s",
						c.step, c.op, c.pct, got, states[i], states[i+1])
				}
				if err := committedOK(t, c.fs, env.cfg, wants[i]); err != nil {
					t.Errorf("crash during %q before %s: %v", c.step, c.op, err)
				}
			}
			t.Logf("%d crash images checked", len(rec.crash))
		})
	}
}
