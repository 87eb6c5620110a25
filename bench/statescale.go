package main

// The state workload: a key-value aggregation and a windowed count whose
// state is larger than the memory budget, on the state engine the runtime
// uses (internal/stateengine, Pebble behind the write-back caches), beside
// the same workload over few enough keys to fit in memory (the peer). Each
// run is a child process, so that its resident memory is its own.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
)

func init() { workloads = append(workloads, newStateCmd) }

type stateConfig struct {
	Keys      int
	PeerKeys  int
	BudgetMiB int64
	For       time.Duration
	Sample    time.Duration
	Stores    int
	Commit    int
	Kinds     []string
	DataDir   string
	// HeapProfile, if set, is a directory each child writes a Go heap
	// profile to at its end (state-<kind>-<keys>.heap).
	HeapProfile string
	// child: run one workload in this process and print its result.
	Child string
}

func newStateCmd() *cobra.Command {
	cfg := stateConfig{}
	cmd := &cobra.Command{
		Use:   "state",
		Short: "A key-value aggregation and a windowed count over more keys than the memory budget holds (peer: few keys)",
		Long: `Runs, each in a child process on a fresh state directory, with the state
engine the runtime uses (Pebble behind the write-back caches, memory budget
--budget-mib, fsync per commit as the runtime does):

  kv      a count per key: Get, add one, Put, for records whose keys are
          uniform over --keys; first every key once (load), then random keys
          for --for;
  window  a windowed count: the same over one-minute windows of stream time
          advancing 10,000 records per second (retention one hour), for
          --for.

The records are spread over --stores stores (partitions); every --commit
records each store is flushed (a commit). Every --sample the child prints
records/s and VmRSS; at the end the peak (VmHWM) against the budget, and
the engine's block cache, memtables and write caches. The peer is the same
over --peer-keys keys, which fit in memory.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Child != "" {
				return stateChild(cmd.Context(), cfg, cmd.OutOrStdout())
			}
			return runState(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Keys, "keys", 10_000_000, "distinct keys of the larger-than-memory run")
	f.IntVar(&cfg.PeerKeys, "peer-keys", 100_000, "distinct keys of the peer run (fits in memory)")
	f.Int64Var(&cfg.BudgetMiB, "budget-mib", 256, "the state engine's memory budget, MiB")
	f.DurationVar(&cfg.For, "for", 60*time.Second, "how long each run updates random keys (after kv's load)")
	f.DurationVar(&cfg.Sample, "sample", 10*time.Second, "how often a run prints records/s and RSS")
	f.IntVar(&cfg.Stores, "stores", 4, "stores (partitions) the keys are spread over")
	f.IntVar(&cfg.Commit, "commit", 100_000, "records between commits (store flushes)")
	f.StringSliceVar(&cfg.Kinds, "kinds", []string{"kv", "window"}, "workloads: kv, window")
	f.StringVar(&cfg.DataDir, "data-dir", "", "where state directories go (default: the system temp dir)")
	f.StringVar(&cfg.HeapProfile, "heap-profile", "", "a directory each run writes a Go heap profile to at its end")
	f.StringVar(&cfg.Child, "child", "", "internal: run one workload (kv or window) in this process")
	_ = f.MarkHidden("child")
	return cmd
}

// statedOverheadMiB is what a run may grow by beyond its memory budget:
// the overhead internal/stateengine's TestMemoryStaysWithinBudget states
// (memOverhead).
const statedOverheadMiB = 64

type stateResult struct {
	Kind        string
	Keys        int
	LoadRecs    int64
	LoadSecs    float64
	Recs        int64
	Secs        float64
	BaseRSS     int64
	PeakRSS     int64 // VmHWM
	EndRSS      int64
	BlockCache  int64
	Memtables   int64
	WriteCaches int64
	DiskBytes   int64
}

func runState(ctx context.Context, cfg stateConfig, out, progress io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var results []stateResult
	for _, kind := range cfg.Kinds {
		if kind != "kv" && kind != "window" {
			return fmt.Errorf("bench: state: unknown kind %q (kv, window)", kind)
		}
		for _, keys := range []int{cfg.PeerKeys, cfg.Keys} {
			fmt.Fprintf(progress, "bench: state %s over %d keys...\n", kind, keys)
			args := []string{"state", "--child", kind, "--keys", fmt.Sprint(keys), "--budget-mib", fmt.Sprint(cfg.BudgetMiB),
				"--for", cfg.For.String(), "--sample", cfg.Sample.String(), "--stores", fmt.Sprint(cfg.Stores),
				"--commit", fmt.Sprint(cfg.Commit), "--data-dir", cfg.DataDir, "--heap-profile", cfg.HeapProfile}
			cmd := exec.CommandContext(ctx, self, args...)
			cmd.Stderr = progress
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				return err
			}
			if err := cmd.Start(); err != nil {
				return err
			}
			var res *stateResult
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				if j, ok := strings.CutPrefix(line, "RESULT "); ok {
					res = &stateResult{}
					if err := json.Unmarshal([]byte(j), res); err != nil {
						return fmt.Errorf("bench: state child result: %w", err)
					}
					continue
				}
				fmt.Fprintln(out, line)
			}
			if err := cmd.Wait(); err != nil {
				return fmt.Errorf("bench: state %s over %d keys: %w", kind, keys, err)
			}
			if res == nil {
				return errors.New("bench: state child printed no result")
			}
			results = append(results, *res)
		}
	}
	budget := cfg.BudgetMiB << 20
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "kind\tkeys\tload rec/s\tupdate rec/s\tRSS before\tpeak RSS\tgrowth - budget\tend RSS\tblock cache\tmemtables\twrite caches\ton disk")
	for _, r := range results {
		load := "-"
		if r.LoadSecs > 0 {
			load = fmt.Sprintf("%.0f", float64(r.LoadRecs)/r.LoadSecs)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Kind, r.Keys, load, float64(r.Recs)/r.Secs,
			mib(r.BaseRSS), mib(r.PeakRSS), mib(r.PeakRSS-r.BaseRSS-budget), mib(r.EndRSS), mib(r.BlockCache), mib(r.Memtables), mib(r.WriteCaches), mib(r.DiskBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := 0; i+1 < len(results); i += 2 {
		p, r := results[i], results[i+1]
		verdict := "within"
		if r.PeakRSS-r.BaseRSS > budget+statedOverheadMiB<<20 {
			verdict = "OVER"
		}
		fmt.Fprintf(out, "%s: %d keys / %d keys update rec/s %.2fx; peak RSS %s, grown by %s: %s the budget %s + the stated overhead %d MiB\n",
			r.Kind, r.Keys, p.Keys, (float64(r.Recs)/r.Secs)/(float64(p.Recs)/p.Secs), mib(r.PeakRSS), mib(r.PeakRSS-r.BaseRSS), verdict, mib(budget), statedOverheadMiB)
	}
	return nil
}

// statusBytes reads a field (kB) of /proc/self/status, in bytes.
func statusBytes(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb << 10
		}
	}
	return 0
}

// nopChangelog acknowledges appends without keeping them: the workload
// measures the stores (the runtime's changelog is the broker's part).
type nopChangelog struct{ next state.Offset }

func (c *nopChangelog) Append(key, value []byte) error { c.next++; return nil }
func (c *nopChangelog) Flush(context.Context) (state.Offset, error) {
	return c.next - 1, nil
}

func stateChild(ctx context.Context, cfg stateConfig, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res := stateResult{Kind: cfg.Child, Keys: cfg.Keys, BaseRSS: statusBytes("VmRSS")}
	dir, err := os.MkdirTemp(cfg.DataDir, "weir-bench-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	eng, err := stateengine.Open(stateengine.Options{Dir: dir, MemoryBudget: cfg.BudgetMiB << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer eng.Close()
	nstores := max(cfg.Stores, 1)
	kvs := make([]state.KeyValueStore, nstores)
	wins := make([]state.WindowStore, nstores)
	for i := range nstores {
		cache := eng.NewCache()
		if cfg.Child == "kv" {
			raw, err := eng.OpenKeyValue(ctx, state.Spec{Name: "counts", Kind: state.KindKeyValue}, int32(i), &nopChangelog{})
			if err != nil {
				return err
			}
			if kvs[i], err = cache.KeyValue(raw, nil); err != nil {
				return err
			}
		} else {
			raw, err := eng.OpenWindow(ctx, state.Spec{Name: "windowed", Kind: state.KindWindow, Retention: time.Hour, WindowSize: time.Minute}, int32(i), &nopChangelog{})
			if err != nil {
				return err
			}
			if wins[i], err = cache.Window(raw, nil); err != nil {
				return err
			}
		}
	}
	r := rand.New(rand.NewPCG(uint64(cfg.Keys), 7))
	key := make([]byte, 8)
	val := make([]byte, 8)
	var n int64
	// one record: its key's count +1 in its store (and window).
	one := func(k uint64) error {
		binary.BigEndian.PutUint64(key, k)
		s := int(k % uint64(nstores))
		var cur []byte
		var err error
		if cfg.Child == "kv" {
			cur, err = kvs[s].Get(key)
		} else {
			// Stream time: 10,000 records a second from the epoch.
			ws := (n / 10_000) * 1000 / 60_000 * 60_000
			cur, err = wins[s].Get(key, ws)
			if err == nil {
				c := uint64(1)
				if len(cur) == 8 {
					c += binary.BigEndian.Uint64(cur)
				}
				binary.BigEndian.PutUint64(val, c)
				err = wins[s].Put(key, ws, val)
			}
		}
		if err != nil {
			return err
		}
		if cfg.Child == "kv" {
			c := uint64(1)
			if len(cur) == 8 {
				c += binary.BigEndian.Uint64(cur)
			}
			binary.BigEndian.PutUint64(val, c)
			if err := kvs[s].Put(key, val); err != nil {
				return err
			}
		}
		n++
		if n%int64(cfg.Commit) == 0 {
			for i := range nstores {
				var st state.Store = kvs[i]
				if cfg.Child != "kv" {
					st = wins[i]
				}
				if err := st.Flush(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	}
	sample := func(phase string, t0 time.Time, last *time.Time, lastN *int64) {
		if time.Since(*last) < cfg.Sample {
			return
		}
		now := time.Now()
		fmt.Fprintf(out, "%s %d keys %s t=%3.0fs: %8.0f rec/s, %s\n",
			cfg.Child, cfg.Keys, phase, now.Sub(t0).Seconds(), float64(n-*lastN)/now.Sub(*last).Seconds(), memoryLine(eng))
		*last, *lastN = now, n
	}
	t0 := time.Now()
	last, lastN := t0, int64(0)
	if cfg.Child == "kv" {
		// Load: every key once, in a random order (a permutation by an
		// odd multiplier modulo a power of two, skipping the overshoot).
		size := uint64(1)
		for size < uint64(cfg.Keys) {
			size <<= 1
		}
		for i := uint64(0); i < size; i++ {
			k := (i*0x9E3779B97F4A7C15 + 12345) & (size - 1)
			if k >= uint64(cfg.Keys) {
				continue
			}
			if err := one(k); err != nil {
				return err
			}
			if n%4096 == 0 {
				sample("load", t0, &last, &lastN)
			}
		}
		res.LoadRecs, res.LoadSecs = n, time.Since(t0).Seconds()
	}
	t1 := time.Now()
	start := n
	last, lastN = t1, n
	for time.Since(t1) < cfg.For {
		for range 4096 {
			if err := one(r.Uint64N(uint64(cfg.Keys))); err != nil {
				return err
			}
		}
		sample("update", t1, &last, &lastN)
	}
	res.Recs, res.Secs = n-start, time.Since(t1).Seconds()
	m := eng.Metrics()
	res.BlockCache, res.Memtables, res.WriteCaches = m.BlockCacheBytes, m.MemtableBytes, m.WriteCacheBytes
	res.EndRSS, res.PeakRSS = statusBytes("VmRSS"), statusBytes("VmHWM")
	res.DiskBytes = dirBytes(dir)
	if err := checkCounts(cfg, kvs, wins, n); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(out, "%s %d keys: go heap in use %s, heap sys %s, GC cycles %d; %s\n", cfg.Child, cfg.Keys, mib(int64(ms.HeapInuse)), mib(int64(ms.HeapSys)), ms.NumGC, memoryLine(eng))
	if cfg.HeapProfile != "" {
		f, err := os.Create(filepath.Join(cfg.HeapProfile, fmt.Sprintf("state-%s-%d.heap", cfg.Child, cfg.Keys)))
		if err != nil {
			return err
		}
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	j, _ := json.Marshal(res)
	fmt.Fprintf(out, "RESULT %s\n", j)
	return nil
}

// memoryLine says where the process's resident memory is: RSS; the Go
// runtime's share (what it holds from the OS less what it released) and
// of it the heap in use; the rest of RSS (C memory: Pebble's block cache
// and memtables, and the binary); the engine's accounted parts; Pebble's
// table readers (file cache) and open iterators.
func memoryLine(eng *stateengine.Engine) string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := statusBytes("VmRSS")
	goRes := int64(ms.Sys - ms.HeapReleased)
	m := eng.Metrics()
	pm := eng.PebbleMetrics()
	return fmt.Sprintf("RSS %s (Go %s, heap in use %s, heap live after GC ~%s, GC %d; non-Go %s), block cache %s, memtables %s (zombie %s), write caches %s, batches %s, tables %d (file cache %s), iterators %d",
		mib(rss), mib(goRes), mib(int64(ms.HeapInuse)), mib(int64(ms.NextGC)*100/(100+int64(gcPercent()))), ms.NumGC, mib(rss-goRes),
		mib(m.BlockCacheBytes), mib(m.MemtableBytes), mib(int64(pm.MemTable.ZombieSize)), mib(m.WriteCacheBytes), mib(m.BatchBytes),
		pm.FileCache.TableCount, mib(pm.FileCache.Size), pm.TableIters)
}

// gcPercent is GOGC's value (100 when unset; 0 reads as off).
func gcPercent() int {
	v := os.Getenv("GOGC")
	if v == "" {
		return 100
	}
	var p int
	if _, err := fmt.Sscan(v, &p); err != nil || p <= 0 {
		return 100
	}
	return p
}

// checkCounts checks, outside the measurement, that the stores' counts sum
// to the records counted (for the windowed count only while no window can
// have expired: under an hour of stream time).
func checkCounts(cfg stateConfig, kvs []state.KeyValueStore, wins []state.WindowStore, n int64) error {
	if cfg.Child == "window" && n/10_000 >= 3600-60 {
		return nil
	}
	var sum int64
	for i := range kvs {
		if cfg.Child == "kv" {
			it, err := kvs[i].All(false)
			if err != nil {
				return err
			}
			for it.Next() {
				sum += int64(binary.BigEndian.Uint64(it.Value()))
			}
			if err := it.Close(); err != nil {
				return err
			}
			continue
		}
		it, err := wins[i].All(false)
		if err != nil {
			return err
		}
		for it.Next() {
			sum += int64(binary.BigEndian.Uint64(it.Value()))
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	if sum != n {
		return fmt.Errorf("bench: state %s: the counts sum to %d, want %d (one per record)", cfg.Child, sum, n)
	}
	return nil
}

// dirBytes sums the sizes of the files under dir.
func dirBytes(dir string) int64 {
	var total int64
	_ = walkFiles(dir, func(size int64) { total += size })
	return total
}

// walkFiles calls fn with the size of every regular file under dir.
func walkFiles(dir string, fn func(size int64)) error {
	return filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			fn(fi.Size())
		}
		return nil
	})
}
