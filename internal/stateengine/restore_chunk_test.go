package stateengine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// Restores into Pebble write each chunk of the changelog as one ingested
// SSTable (data and checkpoint together). These tests shrink the chunk so
// small changelogs span many SSTables.

const tinyChunk = 2 << 10

// randomKey draws keys that stress the chunk sort: short keys, keys that
// are prefixes of others, keys with zero bytes, and long keys sharing more
// than 8 bytes of prefix.
func randomKey(r *rand.Rand) []byte {
	switch r.IntN(5) {
	case 0:
		return fmt.Appendf(nil, "k%03d", r.IntN(200))
	case 1:
		return []byte([]string{"a", "ab", "ab\x00", "ab\x00\x00", "abc", "\x00", "\x00\x01", "\xff"}[r.IntN(8)])
	case 2:
		return fmt.Appendf(nil, "customer-000000000000-%d", r.IntN(100))
	case 3:
		return fmt.Appendf(nil, "customer-000000000000-%d\x00x", r.IntN(20))
	default:
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(3)) // few distinct bytes: many ties
		}
		return b
	}
}

func appendRandom(r *rand.Rand, cl *statetest.Changelog, n int) {
	for range n {
		k := randomKey(r)
		if r.IntN(6) == 0 {
			cl.AppendRaw(k, nil)
			continue
		}
		cl.AppendRaw(k, fmt.Appendf(nil, "v%d", r.Uint32()))
	}
}

func TestRestoreInChunksMatchesReplay(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(testSeed(t), 1))
	fs := vfs.NewMem()
	cl := statetest.NewChangelog("app-kv-changelog", 0)
	cl.BatchSize = 16
	appendRandom(r, cl, 3000)

	e := openEngineLog(t, fs, nil)
	stateengine.SetRestoreChunkForTest(e, tinyChunk)
	s := openKV(t, e, cl, false)
	res, err := stateengine.Restore(ctx, s, cl)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := cl.EndOffset(ctx)
	if res.Records != 3000 || res.To != end {
		t.Fatalf("restore %+v", res)
	}
	if d := cmp.Diff(replay(cl.Records(), end), contents(t, s)); d != "" {
		t.Fatalf("after restore (-changelog +store):\n%s", d)
	}
	// Normal writes, then a tail restore over them, then a reopen.
	put(t, s, "k001", "live")
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	appendRandom(r, cl, 1000)
	s = openKV(t, e, cl, false)
	if res, err = stateengine.Restore(ctx, s, cl); err != nil || res.Records != 1000 {
		t.Fatalf("tail restore: %+v %v", res, err)
	}
	end, _ = cl.EndOffset(ctx)
	want := replay(cl.Records(), end)
	if d := cmp.Diff(want, contents(t, s)); d != "" {
		t.Fatalf("after tail restore (-changelog +store):\n%s", d)
	}
	_ = s.Close()
	_ = e.Close()
	e = openEngineLog(t, fs, nil)
	defer e.Close()
	s = openKV(t, e, cl, false)
	defer s.Close()
	if cp, err := stateengine.Checkpoint(s); err != nil || cp != end {
		t.Fatalf("checkpoint after reopen %d %v, want %d", cp, err, end)
	}
	if d := cmp.Diff(want, contents(t, s)); d != "" {
		t.Fatalf("after reopen (-changelog +store):\n%s", d)
	}
	if n, err := s.ApproximateCount(); err != nil || n <= 0 {
		t.Fatalf("count %d %v", n, err)
	}
}

// TestRestoreInChunksWindowSession restores window and session changelogs
// whose stream time advances past the retention (so restores drop expired
// segments with range deletions mid-chunk) into Pebble and into memory
// (which applies each record as it comes): both must agree with the store
// that wrote the changelog.
func TestRestoreInChunksWindowSession(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(testSeed(t), 2))
	const retention = 10 * 60_000
	e := testEngine(t, nil)
	stateengine.SetRestoreChunkForTest(e, tinyChunk)

	wcl := statetest.NewChangelog("app-win-changelog", 0)
	wcl.BatchSize = 16
	scl := statetest.NewChangelog("app-sess-changelog", 0)
	scl.BatchSize = 16
	spec := func(name string, inMemory bool) state.Spec {
		return state.Spec{Name: name, InMemory: inMemory, Retention: retention * time.Millisecond}
	}
	w, err := e.OpenWindow(ctx, spec("w-src", true), 0, wcl)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := e.OpenSession(ctx, spec("s-src", true), 0, scl)
	if err != nil {
		t.Fatal(err)
	}
	now := int64(0)
	for i := range 4000 {
		now += int64(r.IntN(2_000))
		k := fmt.Appendf(nil, "k%02d", r.IntN(40))
		start := now - int64(r.IntN(3*60_000))
		start -= start % 60_000
		var v []byte
		if r.IntN(8) != 0 {
			v = fmt.Appendf(nil, "v%d", i)
		}
		if err := w.Put(k, start, v); err != nil {
			t.Fatal(err)
		}
		if err := ss.Put(k, start, start+int64(r.IntN(60_000)), v); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := ss.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantW := drainWin(t)(w.All(false))
	wantS := drainSess(t)(ss.All())
	if len(wantW) == 0 || len(wantS) == 0 {
		t.Fatal("nothing left to compare")
	}
	for _, inMemory := range []bool{false, true} {
		t.Run(fmt.Sprintf("inMemory=%v", inMemory), func(t *testing.T) {
			w2, err := e.OpenWindow(ctx, spec(fmt.Sprint("w-", inMemory), inMemory), 0, wcl)
			if err != nil {
				t.Fatal(err)
			}
			defer w2.Close()
			if _, err := stateengine.Restore(ctx, w2, wcl); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(wantW, drainWin(t)(w2.All(false))); d != "" {
				t.Errorf("window store (-writer +restored):\n%s", d)
			}
			if got, want := w2.ObservedStreamTime(), w.ObservedStreamTime(); got != want {
				t.Errorf("window stream time %d, want %d", got, want)
			}
			s2, err := e.OpenSession(ctx, spec(fmt.Sprint("s-", inMemory), inMemory), 0, scl)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if _, err := stateengine.Restore(ctx, s2, scl); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(wantS, drainSess(t)(s2.All())); d != "" {
				t.Errorf("session store (-writer +restored):\n%s", d)
			}
		})
	}
}

// crashReader takes a crash clone of the filesystem when the restore asks
// for its n-th batch, after reading the checkpoint the store has committed
// so far.
type crashReader struct {
	*statetest.Changelog
	fs      *vfs.MemFS
	store   state.Store
	at      int
	pct     int
	rng     *rand.Rand
	batches int
	crashed *vfs.MemFS
	cp      state.Offset
}

func (c *crashReader) Read(ctx context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	return c.Changelog.Read(ctx, from, to, func(b []state.ChangelogRecord) error {
		if c.batches == c.at {
			cp, err := stateengine.Checkpoint(c.store)
			if err != nil {
				return err
			}
			c.cp = cp
			c.crashed = c.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: c.pct, RNG: c.rng})
		}
		c.batches++
		return fn(b)
	})
}

// TestCrashMidRestore stops the world in the middle of a chunked restore,
// on a filesystem that keeps a random part of what was not synced. After
// reopening, the store's checkpoint is the last one the restore committed
// (each chunk's ingest is durable), its data is exactly the changelog
// replayed up to it, and a second restore finishes the job.
func TestCrashMidRestore(t *testing.T) {
	ctx := context.Background()
	seed := testSeed(t)
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	for round := range rounds {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, uint64(round)))
			fs := vfs.NewCrashableMem()
			cl := statetest.NewChangelog("app-kv-changelog", 0)
			cl.BatchSize = 32
			appendRandom(r, cl, 2000)
			e := openEngineLog(t, fs, nil)
			stateengine.SetRestoreChunkForTest(e, tinyChunk)
			s := openKV(t, e, cl, false)
			// Some committed state from before the restore, too.
			if round%2 == 1 {
				if _, err := stateengine.Restore(ctx, s, cl); err != nil {
					t.Fatal(err)
				}
				appendRandom(r, cl, 2000)
			}
			cr := &crashReader{Changelog: cl, fs: fs, store: s, at: 1 + r.IntN(50), pct: r.IntN(101), rng: rand.New(rand.NewPCG(r.Uint64(), 3))}
			if _, err := stateengine.Restore(ctx, s, cr); err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			_ = e.Close()
			if cr.crashed == nil {
				t.Fatalf("restore read %d batches, never reached batch %d", cr.batches, cr.at)
			}

			e2 := openEngineLog(t, cr.crashed, nil)
			defer e2.Close()
			s2 := openKV(t, e2, cl, false)
			defer s2.Close()
			cp, err := stateengine.Checkpoint(s2)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("crash at batch %d: checkpoint %d", cr.at, cp)
			if cp != cr.cp {
				t.Fatalf("checkpoint after crash %d, want %d (committed before the crash)", cp, cr.cp)
			}
			recs := cl.Records()
			if d := cmp.Diff(replay(recs, cp), contents(t, s2)); d != "" {
				t.Fatalf("data does not agree with checkpoint %d (-changelog up to checkpoint +store):\n%s", cp, d)
			}
			end, _ := cl.EndOffset(ctx)
			res, err := stateengine.Restore(ctx, s2, cl)
			if err != nil || res.From != cp || res.To != end {
				t.Fatalf("restore after crash %+v %v, want [%d, %d)", res, err, cp, end)
			}
			if d := cmp.Diff(replay(recs, end), contents(t, s2)); d != "" {
				t.Fatalf("after restore (-changelog +store):\n%s", d)
			}
		})
	}
}
