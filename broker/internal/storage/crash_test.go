package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/broker/internal/batch"
)

// ackedBatch is a batch whose Append returned success.
type ackedBatch struct {
	base  Offset
	bytes []byte // as written, offsets patched
}

// TestCrashKeepsEveryAcknowledgedBatch runs concurrent appenders under group
// commit and simulates a power loss while they run: every batch whose
// Append had returned before the crash must be in the recovered log, byte
// for byte, whatever parts of the unsynced tails the disk kept or damaged.
func TestCrashKeepsEveryAcknowledgedBatch(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewCrashableMem()
	opts := Options{Config: Config{SegmentBytes: 4096, IndexIntervalBytes: 512}, Logger: quietLogger()}
	var all []ackedBatch // acknowledged before some crash, over all rounds
	for round := range rounds {
		opts.FS = fs
		l, err := Open("/p", opts)
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		var mu sync.Mutex
		var acked []ackedBatch
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					b := buildBatch(t, batchSpec{recs: []kv{{key: fmt.Appendf(nil, "w%d", w), value: fmt.Appendf(nil, "round %d value %d", round, i), ts: int64(i)}}})
					res, err := l.Append(ctx, b, 0)
					if err != nil {
						if ctx.Err() != nil || IsClosed(err) {
							return
						}
						t.Errorf("append: %v", err)
						return
					}
					mu.Lock()
					acked = append(acked, ackedBatch{res.BaseOffset, b})
					mu.Unlock()
				}
			}()
		}
		// Let some appends complete, then crash while others are in
		// flight.
		want := 20 + rng.IntN(60)
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: only %d appends acknowledged", round, n)
			}
			select {
			case <-l.Changed():
			case <-time.After(100 * time.Millisecond):
			}
		}
		mu.Lock()
		before := append([]ackedBatch(nil), acked...)
		mu.Unlock()
		crashed := crashKeepingTails(t, fs, rng)
		cancel()
		wg.Wait()
		l.Close()
		all = append(all, before...)

		fs = crashed
		opts.FS = fs
		l2, err := Open("/p", opts)
		if err != nil {
			t.Fatalf("round %d: open after crash: %v", round, err)
		}
		for _, a := range all {
			got, err := l2.Read(a.base, 1)
			if err != nil {
				t.Fatalf("round %d: read acknowledged batch at %d: %v", round, a.base, err)
			}
			one, _, err := batch.Next(got)
			if err != nil || !bytes.Equal(one, a.bytes) {
				t.Fatalf("round %d: acknowledged batch at %d differs after the crash (%v)", round, a.base, err)
			}
		}
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d acknowledged batches survive", round, len(all))
	}
}

// TestDiskFull: an append that hits ENOSPC fails with a disk-full error,
// leaves nothing behind, reads keep working, and appends resume once space
// is back.
func TestDiskFull(t *testing.T) {
	mem := vfs.NewMem()
	ff := &faults{}
	inj := &tornWriteFS{FS: mem, inj: ff}
	l := openTest(t, inj, Options{Config: Config{SegmentBytes: 1000}})
	for i := range 5 {
		mustAppend(t, l, simpleBatch(t, 2, int64(i)))
	}
	before, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	full := func(op errorfs.Op) error {
		if isWrite(op) || op.Kind == errorfs.OpCreate {
			return errNoSpace
		}
		return nil
	}
	ff.set(full)
	for i := range 10 { // some of these need a roll, which fails too
		_, err := l.Append(context.Background(), simpleBatch(t, 2, 100), 0)
		if !IsDiskFull(err) {
			t.Fatalf("append %d on a full disk: %v", i, err)
		}
	}
	if l.LogEndOffset() != 10 || l.HighWatermark() != 10 {
		t.Fatalf("after failed appends leo %d hw %d, want 10", l.LogEndOffset(), l.HighWatermark())
	}
	after, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatalf("read on a full disk: %v", err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("reads changed after failed appends")
	}
	ff.set(nil)
	res := mustAppend(t, l, simpleBatch(t, 2, 200))
	if res.BaseOffset != 10 {
		t.Fatalf("append after space came back at %d, want 10", res.BaseOffset)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, inj, Options{Config: Config{SegmentBytes: 1000}})
	var offs []int64
	for off := Offset(0); off < l2.HighWatermark(); {
		b, err := l2.Read(off, 1)
		if err != nil {
			t.Fatal(err)
		}
		h := batchesOf(t, b)[0]
		offs = append(offs, h.BaseOffset)
		off = Offset(h.LastOffset() + 1)
	}
	if diff := cmp.Diff([]int64{0, 2, 4, 6, 8, 10}, offs); diff != "" {
		t.Fatalf("batches after reopen (-want +got):\n%s", diff)
	}
}

// TestFsyncFailure: a failed fsync fails the waiting appends with a storage
// error and stops further appends; reads keep working.
func TestFsyncFailure(t *testing.T) {
	inj, ff := withFaults(vfs.NewMem(), nil)
	l := openTest(t, inj, Options{})
	mustAppend(t, l, simpleBatch(t, 1, 1))
	ff.set(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData {
			return errors.New("injected fsync failure")
		}
		return nil
	})
	if _, err := l.Append(context.Background(), simpleBatch(t, 1, 2), 0); !IsStorage(err) {
		t.Fatalf("append with failing fsync: %v", err)
	}
	ff.set(nil)
	if _, err := l.Append(context.Background(), simpleBatch(t, 1, 3), 0); !IsStorage(err) {
		t.Fatalf("append after a failed fsync: %v", err)
	}
	if l.HighWatermark() != 1 {
		t.Fatalf("hw %d moved past the unsynced append", l.HighWatermark())
	}
	if b, err := l.Read(0, 100); err != nil || len(batchesOf(t, b)) != 1 {
		t.Fatalf("read after a failed fsync: %v", err)
	}
}

// TestCompactionCrashAtEveryStep simulates a power loss at each filesystem
// operation of a compaction pass in turn. After each, the log opens, reads
// end to end, and holds a state between the one before the pass and the
// one after it: nothing the pass should keep is lost.
func TestCompactionCrashAtEveryStep(t *testing.T) {
	build := func(fs vfs.FS) (*Log, map[Offset]string) {
		// SyncNever and a Close make the data durable with one fsync
		// instead of one per append: this test is about the cleaner.
		opts := Options{FS: fs, Sync: SyncNever, Config: Config{SegmentBytes: 400, Cleanup: Compact}, Logger: quietLogger(), CleanerBytesPerSecond: -1}
		l, err := Open("/p", opts)
		if err != nil {
			t.Fatal(err)
		}

		for i := range 20 {
			// No lz4 here: each lz4 decode clears a 4 MiB block buffer,
			// which the race detector makes slow, and this test decodes
			// every batch thousands of times. The datadriven and model
			// tests compact lz4 batches.
			codec := []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecZstd}[i%4]
			b := buildBatch(t, batchSpec{recs: []kv{{key: fmt.Appendf(nil, "k%d", i%4), value: fmt.Appendf(nil, "v%d", i), ts: int64(i)}}, codec: codec})
			if _, err := l.Append(context.Background(), b, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if l, err = Open("/p", opts); err != nil {
			t.Fatal(err)
		}
		return l, readAll(t, l)
	}
	// The state after a clean pass, for reference.
	ref, pre := build(vfs.NewCrashableMem())
	if err := ref.Clean(context.Background()); err != nil {
		t.Fatal(err)
	}
	post := readAll(t, ref)
	ref.Close()
	if len(post) >= len(pre) {
		t.Fatalf("compaction removed nothing: %d -> %d records", len(pre), len(post))
	}
	for k := 1; ; k++ {
		mem := vfs.NewCrashableMem()
		inj, ff := withFaults(mem, nil)
		l, _ := build(inj)
		var crashed *vfs.MemFS
		n := 0
		ff.set(func(op errorfs.Op) error {
			if op.Kind.ReadOrWrite() == errorfs.OpIsRead {
				return nil
			}
			n++
			if n == k {
				crashed = mem.CrashClone(vfs.CrashCloneCfg{})
				return errors.New("injected: power lost")
			}
			return nil
		})
		err := l.Clean(context.Background())
		ff.set(nil)
		l.Close()
		if crashed == nil {
			if err != nil {
				t.Fatalf("clean without a crash: %v", err)
			}
			t.Logf("crashed at each of %d operations", k-1)
			break
		}
		l2, err := Open("/p", Options{FS: crashed, Config: Config{SegmentBytes: 400, Cleanup: Compact}, Logger: quietLogger()})
		if err != nil {
			t.Fatalf("crash at op %d: open: %v", k, err)
		}
		got := readAll(t, l2)
		for off, v := range post {
			if got[off] != v {
				t.Fatalf("crash at op %d: offset %d is %q, want %q", k, off, got[off], v)
			}
		}
		for off, v := range got {
			if pre[off] != v {
				t.Fatalf("crash at op %d: offset %d is %q, never written", k, off, v)
			}
		}
		// A later clean finishes the job.
		if err := l2.Clean(context.Background()); err != nil {
			t.Fatalf("crash at op %d: clean after recovery: %v", k, err)
		}
		if diff := cmp.Diff(post, readAll(t, l2)); diff != "" {
			t.Fatalf("crash at op %d: after a second clean (-want +got):\n%s", k, diff)
		}
		l2.Close()
	}
}

// readAll returns every readable record as offset -> "key=value".
func readAll(t *testing.T, l *Log) map[Offset]string {
	t.Helper()
	out := map[Offset]string{}
	for off := l.LogStartOffset(); off < l.HighWatermark(); {
		b, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		if len(b) == 0 {
			break
		}
		for len(b) > 0 {
			one, rest, err := batch.Next(b)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := batch.ParseHeader(one)
			recs, err := batch.Records(one, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out[Offset(h.BaseOffset)+Offset(r.OffsetDelta)] = string(r.Key) + "=" + string(r.Value)
			}
			off = Offset(h.LastOffset() + 1)
			b = rest
		}
	}
	return out
}

// TestSyncInterval: appends return once written with the high watermark at
// the log end; the interval syncer then makes them durable, so a crash
// after it has run keeps them.
func TestSyncInterval(t *testing.T) {
	fs := vfs.NewCrashableMem()
	l := openTest(t, fs, Options{Sync: SyncInterval, SyncInterval: time.Millisecond})
	for i := range 5 {
		mustAppend(t, l, simpleBatch(t, 1, int64(i)))
		if hw, leo := l.HighWatermark(), l.LogEndOffset(); hw != leo {
			t.Fatalf("hw %d != leo %d under SyncInterval", hw, leo)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.RLock()
		d := l.durable
		l.mu.RUnlock()
		if d == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("durable %d never reached 5", d)
		}
		select {
		case <-l.durableChan():
		case <-time.After(10 * time.Millisecond):
		}
	}
	l2 := openTest(t, fs.CrashClone(vfs.CrashCloneCfg{}), Options{})
	if leo := l2.LogEndOffset(); leo != 5 {
		t.Fatalf("after crash leo %d, want 5", leo)
	}
}

func (l *Log) durableChan() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.durableCh
}
