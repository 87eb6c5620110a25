package stateengine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// replay is the model of a key-value store: the changelog applied up to an
// offset.
func replay(recs []state.ChangelogRecord, upTo state.Offset) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		if r.Offset >= upTo {
			break
		}
		if r.Value == nil {
			delete(m, string(r.Key))
		} else {
			m[string(r.Key)] = string(r.Value)
		}
	}
	return m
}

func contents(t *testing.T, s state.KeyValueStore) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range drainKV(t)(s.All(false)) {
		m[p.K] = p.V
	}
	return m
}

// TestCrashMidFlush stops the world in the middle of a store's flush (its
// changelog written and acknowledged, the store's batch not yet committed)
// on a filesystem that keeps a random part of what was not synced. After
// reopening, the store's data must be exactly the changelog replayed up to
// the store's checkpoint, and a restore must bring it to the changelog end.
func TestCrashMidFlush(t *testing.T) {
	seed := testSeed(t)
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	for round := range rounds {
		r := rand.New(rand.NewPCG(seed, uint64(round)))
		t.Run(fmt.Sprint(round), func(t *testing.T) { crashOnce(t, r) })
	}
}

func crashOnce(t *testing.T, r *rand.Rand) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	cl := statetest.NewChangelog("app-kv-changelog", 0)
	e := openEngineLog(t, fs, nil)
	s := openKV(t, e, cl, false)
	if _, err := stateengine.Restore(ctx, s, cl); err != nil {
		t.Fatal(err)
	}
	flushes := 3 + r.IntN(10)
	crashAt := r.IntN(flushes)
	var crashed *vfs.MemFS
	for f := 0; f < flushes; f++ {
		for range 1 + r.IntN(200) {
			k := fmt.Sprintf("k%03d", r.IntN(150))
			if r.IntN(5) == 0 {
				if err := s.Delete([]byte(k)); err != nil {
					t.Fatal(err)
				}
			} else {
				put(t, s, k, fmt.Sprintf("v%d", r.Uint32()))
			}
		}
		if f == crashAt {
			pct := r.IntN(101)
			cl.SetFlushHook(func() {
				crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(r.Uint64(), 1))})
			})
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cl.SetFlushHook(nil)
		if crashed != nil {
			break
		}
	}
	_ = s.Close()
	_ = e.Close()

	e2 := openEngineLog(t, crashed, nil)
	defer e2.Close()
	s2 := openKV(t, e2, cl, false)
	cp, err := stateengine.Checkpoint(s2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint after crash: %d of %d", cp, func() state.Offset { o, _ := cl.EndOffset(ctx); return o }())
	recs := cl.Records()
	if d := cmp.Diff(replay(recs, cp), contents(t, s2)); d != "" {
		t.Fatalf("data does not agree with checkpoint %d (-changelog up to checkpoint +store):\n%s", cp, d)
	}
	end, _ := cl.EndOffset(ctx)
	res, err := stateengine.Restore(ctx, s2, cl)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != cp || res.To != end {
		t.Fatalf("restore replayed [%d, %d), want [%d, %d)", res.From, res.To, cp, end)
	}
	if d := cmp.Diff(replay(recs, end), contents(t, s2)); d != "" {
		t.Fatalf("after restore (-changelog +store):\n%s", d)
	}
}
