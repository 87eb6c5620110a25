package stateengine_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
)

// The memory test runs in a child process, so that the peak resident set
// it measures (VmHWM) is its own and not that of earlier tests.

const (
	memBudget = 64 << 20
	// memOverhead is what the process may grow by beyond the budget: the
	// Go runtime, Pebble's own Go structures (table readers, iterators,
	// the WAL writer), the C allocator's overhead past the budget's slack,
	// and the collector's headroom over live heap that is not the
	// engine's. The budget itself counts the collector's headroom over the
	// write caches, batches and read cache (see budgetSplit). bench state
	// states the same overhead for its 256 MiB budget
	// (bench/statescale.go, statedOverheadMiB).
	memOverhead = 64 << 20
	memStores   = 48
)

func vmKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), field+":") {
			v, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
			return v
		}
	}
	return -1
}

func TestMemoryStaysWithinBudget(t *testing.T) {
	if os.Getenv("STATE_MEMORY_CHILD") == "1" {
		memoryChild(t)
		return
	}
	if vmKB("VmHWM") < 0 {
		t.Skip("no /proc/self/status on this system")
	}
	if raceEnabled {
		// NB: the race detector's shadow memory multiplies the heap; the
		// budget cannot be judged under it. `go test ./state` (no -race)
		// runs it, and so does `make unit`'s sibling target memcheck.
		t.Skip("memory is not measurable under the race detector")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryStaysWithinBudget$", "-test.v")
	cmd.Env = append(os.Environ(), "STATE_MEMORY_CHILD=1", "GOMAXPROCS=2")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
}

func memoryChild(t *testing.T) {
	ctx := context.Background()
	base := vmKB("VmRSS") << 10
	dir := t.TempDir()
	// NB: NoSync only spares this shared machine thousands of fsyncs; it
	// does not change what is held in memory.
	e, err := stateengine.Open(stateengine.Options{Dir: dir, MemoryBudget: memBudget, NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	type st struct {
		s  state.KeyValueStore
		cl *discardChangelog
	}
	var stores []st
	for i := range memStores {
		cl := &discardChangelog{}
		raw, err := e.OpenKeyValue(ctx, state.Spec{Name: "agg", ReadCache: i%4 == 0}, int32(i), cl)
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.NewCache().KeyValue(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, st{s, cl})
	}
	r := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 512)
	const total = 96 << 20 // bytes of values written across the stores
	var written int64
	key := make([]byte, 0, 16)
	for round := 0; written < total; round++ {
		for i, x := range stores {
			for range 2000 {
				key = binary.BigEndian.AppendUint64(key[:0], r.Uint64N(200_000))
				binary.BigEndian.PutUint64(val, r.Uint64())
				if err := x.s.Put(key, val); err != nil {
					t.Fatal(err)
				}
				if r.IntN(4) == 0 {
					if _, err := x.s.Get(key); err != nil {
						t.Fatal(err)
					}
				}
				written += int64(len(val))
			}
			if (round+i)%3 == 0 {
				if err := x.s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if p := os.Getenv("STATE_MEMORY_PROFILE"); p != "" {
		f, _ := os.Create(p)
		_ = pprof.WriteHeapProfile(f)
		_ = f.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("go heap: inuse %d MiB, sys %d MiB, total sys %d MiB; gc %d", ms.HeapInuse>>20, ms.HeapSys>>20, ms.Sys>>20, ms.NumGC)
	m := e.Metrics()
	peak := vmKB("VmHWM") << 10
	grew := peak - base
	t.Logf("wrote %d MiB into %d stores; RSS before %d MiB, peak %d MiB (+%d MiB); budget %d MiB + overhead %d MiB; block cache %d MiB, memtables %d MiB, write caches %d MiB, batches %d MiB",
		written>>20, memStores, base>>20, peak>>20, grew>>20, memBudget>>20, memOverhead>>20,
		m.BlockCacheBytes>>20, m.MemtableBytes>>20, m.WriteCacheBytes>>20, m.BatchBytes>>20)
	if grew > memBudget+memOverhead {
		t.Fatalf("process grew by %d MiB, over the budget %d MiB + overhead %d MiB", grew>>20, memBudget>>20, memOverhead>>20)
	}
	fmt.Printf("MEMORY peak_growth_bytes=%d budget=%d\n", grew, memBudget)
}

// discardChangelog acknowledges appends without keeping them: the memory
// test measures the stores, not a test changelog.
type discardChangelog struct{ next state.Offset }

func (d *discardChangelog) Append(key, value []byte) error { d.next++; return nil }
func (d *discardChangelog) Flush(ctx context.Context) (state.Offset, error) {
	return d.next - 1, nil
}
