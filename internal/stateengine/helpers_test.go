package stateengine_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// impl is one way of getting a store for the contract suite.
type impl struct {
	name     string
	inMemory bool
	cached   bool
	readC    bool
}

var impls = []impl{
	{name: "pebble"},
	{name: "memory", inMemory: true},
	{name: "pebble-cached", cached: true},
	{name: "memory-cached", inMemory: true, cached: true},
	{name: "pebble-readcache", readC: true},
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testEngine opens an engine on fs (a fresh in-memory one if nil).
func testEngine(t testing.TB, fs vfs.FS) *stateengine.Engine {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	e, err := stateengine.Open(stateengine.Options{Dir: "/state", FS: fs, MemoryBudget: stateengine.MinMemoryBudget, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func (im impl) spec(name string, kind state.Kind) state.Spec {
	return state.Spec{Name: name, Kind: kind, InMemory: im.inMemory, ReadCache: im.readC && kind == state.KindKeyValue}
}

func (im impl) kv(t testing.TB, e *stateengine.Engine, cl *statetest.Changelog) state.KeyValueStore {
	t.Helper()
	s, err := e.OpenKeyValue(context.Background(), im.spec("kv", state.KindKeyValue), 0, cl)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := stateengine.Restore(context.Background(), s, cl); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if im.cached {
		if s, err = e.NewCache().KeyValue(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (im impl) window(t testing.TB, e *stateengine.Engine, cl *statetest.Changelog, retentionMs int64) state.WindowStore {
	t.Helper()
	sp := im.spec("win", state.KindWindow)
	sp.Retention = time.Duration(retentionMs) * time.Millisecond
	s, err := e.OpenWindow(context.Background(), sp, 0, cl)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := stateengine.Restore(context.Background(), s, cl); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if im.cached {
		if s, err = e.NewCache().Window(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (im impl) session(t testing.TB, e *stateengine.Engine, cl *statetest.Changelog, retentionMs int64) state.SessionStore {
	t.Helper()
	sp := im.spec("sess", state.KindSession)
	sp.Retention = time.Duration(retentionMs) * time.Millisecond
	s, err := e.OpenSession(context.Background(), sp, 0, cl)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := stateengine.Restore(context.Background(), s, cl); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if im.cached {
		if s, err = e.NewCache().Session(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type kvPair struct{ K, V string }

func drainKV(t testing.TB) func(state.Iterator, error) []kvPair {
	return func(it state.Iterator, err error) []kvPair {
		t.Helper()
		if err != nil {
			t.Fatalf("iterator: %v", err)
		}
		var out []kvPair
		for it.Next() {
			out = append(out, kvPair{string(it.Key()), string(it.Value())})
		}
		if err := it.Close(); err != nil {
			t.Fatalf("iterator: %v", err)
		}
		return out
	}
}

type winEntry struct {
	K     string
	Start int64
	V     string
}

func drainWin(t testing.TB) func(state.WindowIterator, error) []winEntry {
	return func(it state.WindowIterator, err error) []winEntry {
		t.Helper()
		if err != nil {
			t.Fatalf("iterator: %v", err)
		}
		var out []winEntry
		for it.Next() {
			out = append(out, winEntry{string(it.Key()), it.WindowStart(), string(it.Value())})
		}
		if err := it.Close(); err != nil {
			t.Fatalf("iterator: %v", err)
		}
		return out
	}
}

type sessEntry struct {
	K          string
	Start, End int64
	V          string
}

func drainSess(t testing.TB) func(state.SessionIterator, error) []sessEntry {
	return func(it state.SessionIterator, err error) []sessEntry {
		t.Helper()
		if err != nil {
			t.Fatalf("iterator: %v", err)
		}
		var out []sessEntry
		for it.Next() {
			out = append(out, sessEntry{string(it.Key()), it.Start(), it.End(), string(it.Value())})
		}
		if err := it.Close(); err != nil {
			t.Fatalf("iterator: %v", err)
		}
		return out
	}
}

// testSeed returns a random seed, or $STATE_TEST_SEED to replay a failure,
// and logs it.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	return stateengine.TestSeedForTest(t)
}
