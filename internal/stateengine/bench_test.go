package stateengine_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// Benchmarks compare the Pebble and in-memory stores side by side in one
// run; figures and commands are in bench/README.md (State stores).

var benchKinds = []struct {
	name     string
	inMemory bool
}{{"pebble", false}, {"memory", true}}

// benchEngine opens an engine on the real filesystem (a temp dir), with
// a 256 MiB budget.
func benchEngine(b *testing.B) *stateengine.Engine {
	b.Helper()
	e, err := stateengine.Open(stateengine.Options{Dir: b.TempDir(), MemoryBudget: 256 << 20, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	return e
}

// nullChangelog acknowledges appends without keeping them.
type nullChangelog struct{ n state.Offset }

func (c *nullChangelog) Append(key, value []byte) error { c.n++; return nil }
func (c *nullChangelog) Flush(context.Context) (state.Offset, error) {
	return c.n - 1, nil
}

func benchKV(b *testing.B, e *stateengine.Engine, inMemory bool) state.KeyValueStore {
	b.Helper()
	s, err := e.OpenKeyValue(context.Background(), state.Spec{Name: "bench", InMemory: inMemory}, 0, &nullChangelog{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchKey(buf []byte, i uint64) []byte {
	return binary.BigEndian.AppendUint64(append(buf[:0], "key-"...), i)
}

const benchKeys = 100_000

func BenchmarkKVPut(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			ctx := context.Background()
			s := benchKV(b, benchEngine(b), k.inMemory)
			r := rand.New(rand.NewPCG(1, 1))
			val := make([]byte, 100)
			var kb []byte
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				kb = benchKey(kb, r.Uint64N(benchKeys))
				if err := s.Put(kb, val); err != nil {
					b.Fatal(err)
				}
				if i%10_000 == 9_999 {
					if err := s.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func preload(b *testing.B, s state.KeyValueStore) {
	b.Helper()
	val := make([]byte, 100)
	var kb []byte
	for i := range uint64(benchKeys) {
		kb = benchKey(kb, i)
		if err := s.Put(kb, val); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkKVGet(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			s := benchKV(b, benchEngine(b), k.inMemory)
			preload(b, s)
			r := rand.New(rand.NewPCG(1, 2))
			var kb []byte
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				kb = benchKey(kb, r.Uint64N(benchKeys))
				v, err := s.Get(kb)
				if err != nil || v == nil {
					b.Fatalf("get: %v %v", v, err)
				}
			}
		})
	}
}

// BenchmarkKVRange scans 100 consecutive keys per op.
func BenchmarkKVRange(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			s := benchKV(b, benchEngine(b), k.inMemory)
			preload(b, s)
			benchRanges(b, s)
		})
	}
}

// benchRanges times b.N scans of 100 consecutive keys of s at random.
func benchRanges(b *testing.B, s state.KeyValueStore) {
	r := rand.New(rand.NewPCG(1, 3))
	var lo, hi []byte
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		x := r.Uint64N(benchKeys - 100)
		lo, hi = benchKey(lo, x), benchKey(hi, x+100)
		it, err := s.Range(lo, hi, false)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for it.Next() {
			n++
		}
		if err := it.Close(); err != nil || n != 100 {
			b.Fatalf("range: %d %v", n, err)
		}
	}
}

// BenchmarkCachedKVRange scans 100 consecutive keys per op through the
// write-back cache: the store below holds every key, the cache one in ten
// (dirty), so each scan merges the two.
func BenchmarkCachedKVRange(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			e := benchEngine(b)
			raw := benchKV(b, e, k.inMemory)
			preload(b, raw)
			s, err := e.NewCache().KeyValue(raw, nil)
			if err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 100)
			var kb []byte
			for i := uint64(0); i < benchKeys; i += 10 {
				if err := s.Put(benchKey(kb, i), val); err != nil {
					b.Fatal(err)
				}
			}
			benchRanges(b, s)
		})
	}
}

// BenchmarkWindowPutFetch puts one window and fetches the key's windows of
// the last 10 minutes (1-minute windows), as a windowed join does.
func BenchmarkWindowPutFetch(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			ctx := context.Background()
			e := benchEngine(b)
			s, err := e.OpenWindow(ctx, state.Spec{Name: "w", InMemory: k.inMemory, Retention: 60 * 60_000_000}, 0, &nullChangelog{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r := rand.New(rand.NewPCG(1, 4))
			val := make([]byte, 100)
			var kb []byte
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				ts := int64(i) * 10 // 10 ms per record
				start := ts - ts%60_000
				kb = benchKey(kb, r.Uint64N(1000))
				if err := s.Put(kb, start, val); err != nil {
					b.Fatal(err)
				}
				it, err := s.Fetch(kb, start-10*60_000, start, false)
				if err != nil {
					b.Fatal(err)
				}
				for it.Next() {
				}
				if err := it.Close(); err != nil {
					b.Fatal(err)
				}
				if i%10_000 == 9_999 {
					if err := s.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkCachedAggregateUpdate is a count aggregation's inner loop: read
// the key's count through the write-back cache, write it back incremented.
// The same key is updated over and over; a flush every flushEvery updates
// sends it to the store and the changelog once. "cached" flushes every
// 1,000,000 updates: the runtime commits every second by default, so at
// the 5M updates/s target a commit interval holds more. "cached-flush-10k"
// keeps the earlier, 100 times more frequent flush, where the synced
// commit (one fsync) dominates. Peers in the same run: the same loop on
// the uncached Pebble store, and on a plain Go map.
func BenchmarkCachedAggregateUpdate(b *testing.B) {
	for _, bc := range []struct {
		name       string
		cached     bool
		flushEvery int
	}{{"cached", true, 1_000_000}, {"cached-flush-10k", true, 10_000}, {"uncached-pebble", false, 10_000}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			e := benchEngine(b)
			var s state.KeyValueStore = benchKV(b, e, false)
			if bc.cached {
				var err error
				if s, err = e.NewCache().KeyValue(s, func(k, nv, ov []byte) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			key := []byte("customer-42")
			var buf [8]byte
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				v, err := s.Get(key)
				if err != nil {
					b.Fatal(err)
				}
				var n uint64
				if v != nil {
					n = binary.BigEndian.Uint64(v)
				}
				binary.BigEndian.PutUint64(buf[:], n+1)
				if err := s.Put(key, buf[:]); err != nil {
					b.Fatal(err)
				}
				if i%bc.flushEvery == bc.flushEvery-1 {
					if err := s.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if v, err := s.Get(key); err != nil || binary.BigEndian.Uint64(v) != uint64(b.N) {
				b.Fatalf("count %x %v, want %d", v, err, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
	b.Run("go-map", func(b *testing.B) {
		m := map[string]uint64{}
		key := []byte("customer-42")
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			n := m[string(key)]
			m[string(key)] = n + 1
		}
		b.StopTimer()
		if m[string(key)] != uint64(b.N) {
			b.Fatal("lost updates")
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	})
}

// BenchmarkRestore replays a changelog of 100-byte values (200,000
// records, 50,000 distinct keys) into a fresh store per iteration.
func BenchmarkRestore(b *testing.B) {
	const records, keys = 200_000, 50_000
	cl := statetest.NewChangelog("app-bench-changelog", 0)
	cl.BatchSize = 2048
	r := rand.New(rand.NewPCG(1, 5))
	for range records {
		k := fmt.Appendf(nil, "key-%08d", r.IntN(keys))
		v := make([]byte, 100)
		binary.BigEndian.PutUint64(v, r.Uint64())
		cl.AppendRaw(k, v)
	}
	// The first peer: the same bytes (keys and values) written to a plain
	// file, 1 MiB at a time, synced at the end.
	b.Run("file-write-peer", func(b *testing.B) {
		recs := cl.Records()
		dir := b.TempDir()
		b.ReportAllocs()
		cpu := startCPU()
		b.ResetTimer()
		buf := make([]byte, 0, 1<<20)
		for i := range b.N {
			f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				if len(buf)+len(r.Key)+len(r.Value) > cap(buf) {
					if _, err := f.Write(buf); err != nil {
						b.Fatal(err)
					}
					buf = buf[:0]
				}
				buf = append(append(buf, r.Key...), r.Value...)
			}
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
			buf = buf[:0]
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			_ = f.Close()
		}
		b.StopTimer()
		reportRecords(b, records, cpu)
	})
	// The second peer: the same records written straight into one Pebble database
	// (same memtable size) in 8 MiB batches, each iteration under its own
	// prefix as Weir's stores are, with no Weir code in between.
	b.Run("raw-pebble-peer", func(b *testing.B) {
		recs := cl.Records()
		b.ReportAllocs()
		cpu := startCPU()
		b.ResetTimer()
		db, err := pebble.Open(b.TempDir(), &pebble.Options{MemTableSize: 256 << 20 / 10, Logger: quietPebble{}})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		for i := range b.N {
			batch := db.NewBatchWithSize(9 << 20)
			key := []byte{}
			for _, r := range recs {
				key = append(append(key[:0], 1, 0, 0, byte(i>>8), byte(i)), r.Key...)
				if err := batch.Set(key, r.Value, nil); err != nil {
					b.Fatal(err)
				}
				if batch.Len() >= 8<<20 {
					if err := batch.Commit(pebble.NoSync); err != nil {
						b.Fatal(err)
					}
					batch = db.NewBatchWithSize(9 << 20)
				}
			}
			if err := batch.Commit(pebble.Sync); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportRecords(b, records, cpu)
	})
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			ctx := context.Background()
			e, err := stateengine.Open(stateengine.Options{Dir: b.TempDir(), FS: vfs.Default, MemoryBudget: 256 << 20, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			b.ReportAllocs()
			cpu := startCPU()
			b.ResetTimer()
			for i := range b.N {
				s, err := e.OpenKeyValue(ctx, state.Spec{Name: "r", InMemory: k.inMemory}, int32(i), cl)
				if err != nil {
					b.Fatal(err)
				}
				res, err := stateengine.Restore(ctx, s, cl)
				if err != nil || res.Records != records {
					b.Fatalf("restore: %+v %v", res, err)
				}
				_ = s.Close()
			}
			b.StopTimer()
			reportRecords(b, records, cpu)
		})
	}
}

// startCPU returns the process's CPU time so far (user + system, every
// goroutine, Pebble's background work included).
func startCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRecords reports records/s (wall clock) and records per CPU-second,
// which the other loads on a shared machine disturb less.
func reportRecords(b *testing.B, perOp int, cpuStart time.Duration) {
	b.Helper()
	n := float64(b.N * perOp)
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
	if cpu := startCPU() - cpuStart; cpu > 0 {
		b.ReportMetric(n/cpu.Seconds(), "records/cpu-s")
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...interface{})  {}
func (quietPebble) Errorf(string, ...interface{}) {}
func (quietPebble) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

// BenchmarkApproximateCount counts a Pebble store of 100,000 keys (flushed
// to SSTables): ApproximateCount against a full scan in the same run.
func BenchmarkApproximateCount(b *testing.B) {
	e := benchEngine(b)
	s := benchKV(b, e, false)
	preload(b, s)
	if err := stateengine.FlushMemtablesForTest(e); err != nil {
		b.Fatal(err)
	}
	b.Run("approximate", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if n, err := s.ApproximateCount(); err != nil || n < benchKeys/2 {
				b.Fatalf("count %d %v", n, err)
			}
		}
	})
	b.Run("full-scan-peer", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			it, err := s.All(false)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for it.Next() {
				n++
			}
			if err := it.Close(); err != nil || n != benchKeys {
				b.Fatalf("scan %d %v", n, err)
			}
		}
	})
}

// BenchmarkCachedWindowCount is the state side of a windowed count over
// 10,000 keys (the driver's benchmark): per update a Get and a Put of the
// key's one-minute window through the task cache, 1,000 updates of event
// time per second, a flush with a listener every 1,000 updates. Peers in
// the same run: Pebble and in-memory stores behind the cache, the
// in-memory store alone (no cache, no changelog: the driver's MapStores)
// and a plain Go map of counts.
func BenchmarkCachedWindowCount(b *testing.B) {
	const keys, flushEvery = 10_000, 1_000
	kbs := make([][]byte, keys)
	for i := range kbs {
		kbs[i] = fmt.Appendf(nil, "customer-%d", i)
	}
	for _, inMemory := range []bool{false, true} {
		b.Run(map[bool]string{false: "pebble", true: "memory"}[inMemory], func(b *testing.B) {
			ctx := context.Background()
			e := benchEngine(b)
			raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", InMemory: inMemory, Retention: 70 * time.Second, WindowSize: time.Minute}, 0, &nullChangelog{})
			if err != nil {
				b.Fatal(err)
			}
			forwarded := 0
			s, err := e.NewCache().Window(raw, func(k []byte, start int64, nv, ov []byte) error {
				forwarded++
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			var buf [8]byte
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				key, start := kbs[i%keys], int64(i)/60_000*60_000
				v, err := s.Get(key, start)
				if err != nil {
					b.Fatal(err)
				}
				var n uint64
				if v != nil {
					n = binary.BigEndian.Uint64(v)
				}
				binary.BigEndian.PutUint64(buf[:], n+1)
				if err := s.Put(key, start, buf[:]); err != nil {
					b.Fatal(err)
				}
				if i%flushEvery == flushEvery-1 {
					if err := s.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if forwarded == 0 && b.N >= flushEvery {
				b.Fatal("nothing forwarded")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
	// The in-memory store uncached and unlogged (the driver's MapStores):
	// what the in-memory store behind the cache is measured against.
	b.Run("memory-uncached", func(b *testing.B) {
		e := benchEngine(b)
		s, err := e.OpenWindow(context.Background(), state.Spec{Name: "w", InMemory: true, Unlogged: true, Uncached: true, Retention: 70 * time.Second, WindowSize: time.Minute}, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		var buf [8]byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			key, start := kbs[i%keys], int64(i)/60_000*60_000
			v, err := s.Get(key, start)
			if err != nil {
				b.Fatal(err)
			}
			var n uint64
			if v != nil {
				n = binary.BigEndian.Uint64(v)
			}
			binary.BigEndian.PutUint64(buf[:], n+1)
			if err := s.Put(key, start, buf[:]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	})
	b.Run("go-map", func(b *testing.B) {
		type wk struct {
			k     string
			start int64
		}
		m := map[wk]uint64{}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := wk{string(kbs[i%keys]), int64(i) / 60_000 * 60_000}
			m[k]++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	})
}

// BenchmarkCachedWindowFetchOfOneKey is the fetch of a stream-stream
// join alone: a cached window store on Pebble holding one window for
// each of 100,000 keys (all in the cache), fetched key by key over ±1 min
// of its window, the window's value read, the iterator closed.
func BenchmarkCachedWindowFetchOfOneKey(b *testing.B) {
	const keys = 100_000
	ctx := context.Background()
	e := benchEngine(b)
	raw, err := e.OpenWindow(ctx, state.Spec{Name: "w", Retention: 24 * time.Hour}, 0, &nullChangelog{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := e.NewCache().Window(raw, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	kb := make([][]byte, keys)
	val := make([]byte, 20)
	for i := range kb {
		kb[i] = fmt.Appendf(nil, "order-%09d", i)
		if err := s.Put(kb[i], int64(i), val); err != nil {
			b.Fatal(err)
		}
	}
	found := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := startCPU()
	for i := range b.N {
		k := i % keys
		it, err := s.Fetch(kb[k], int64(k)-60_000, int64(k)+60_000, false)
		if err != nil {
			b.Fatal(err)
		}
		for it.Next() {
			found += len(it.Value())
		}
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if found != b.N*len(val) {
		b.Fatalf("found %d value bytes, want %d", found, b.N*len(val))
	}
	reportRecords(b, 1, cpu0)
}

// BenchmarkCachedJoinWindow is the state side of a stream-stream join
// (dsl.Join), as the pipeline benchmark's orders ⋈ payments drives it: two
// window stores behind one task cache, each key seen once per side;
// per record a Get of the record's own entry, its Put, and a Fetch of the
// other store's entries of the key within ±1 min. Records alternate sides
// (each payment finds its order), 1 ms of event time apart; a flush every
// 10,000 records writes both stores back (as a commit) with a changelog.
// Retention holds every entry for the whole run, as the pipeline's grace
// does.
func BenchmarkCachedJoinWindow(b *testing.B) {
	const flushEvery = 10_000
	for _, inMemory := range []bool{false, true} {
		b.Run(map[bool]string{false: "pebble", true: "memory"}[inMemory], func(b *testing.B) {
			ctx := context.Background()
			e := benchEngine(b)
			c := e.NewCache()
			var stores [2]state.WindowStore
			for i, name := range []string{"left", "right"} {
				raw, err := e.OpenWindow(ctx, state.Spec{Name: name, InMemory: inMemory, Retention: 24 * time.Hour}, 0, &nullChangelog{})
				if err != nil {
					b.Fatal(err)
				}
				if stores[i], err = c.Window(raw, nil); err != nil {
					b.Fatal(err)
				}
				s := stores[i]
				b.Cleanup(func() { _ = s.Close() })
			}
			val := make([]byte, 20)
			var kb []byte
			matched := 0
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := startCPU()
			for i := range b.N {
				side := i % 2
				own, other := stores[side], stores[1-side]
				ts := int64(i)
				kb = fmt.Appendf(kb[:0], "order-%09d", i/2)
				v, err := own.Get(kb, ts)
				if err != nil {
					b.Fatal(err)
				}
				if err := own.Put(kb, ts, append(v, val...)); err != nil {
					b.Fatal(err)
				}
				it, err := other.Fetch(kb, ts-60_000, ts+60_000, false)
				if err != nil {
					b.Fatal(err)
				}
				for it.Next() {
					matched += len(it.Value())
				}
				if err := it.Close(); err != nil {
					b.Fatal(err)
				}
				if i%flushEvery == flushEvery-1 {
					for _, s := range stores {
						if err := s.Flush(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.StopTimer()
			if want := b.N / 2 * len(val); matched != want {
				b.Fatalf("matched %d value bytes, want %d", matched, want)
			}
			reportRecords(b, 1, cpu0)
		})
	}
}
