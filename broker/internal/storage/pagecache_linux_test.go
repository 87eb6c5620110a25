//go:build linux && (amd64 || arm64)

package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// residentPages counts the pages of the file at path from byte from on
// that are in the page cache (mincore over a mapping of it).
func residentPages(t *testing.T, path string, from int64) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() == 0 {
		return 0
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec[from/int64(page):] {
		n += int(v & 1)
	}
	return n
}

// TestDropSyncedCache: a follower's fsynced bytes leave the page cache (all
// but the partial last page), and read back the same from disk; under a
// policy that does not fsync every append nothing is dropped.
func TestDropSyncedCache(t *testing.T) {
	var sfs syscall.Statfs_t
	dir := t.TempDir()
	if err := syscall.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Type == 0x01021994 { // tmpfs: its pages are the file
		t.Skip("the temporary directory is on tmpfs, which keeps every page")
	}
	leader := openTest(t, vfs.NewMem(), Options{})
	value := bytes.Repeat([]byte("v"), 8000)
	for i := range 64 {
		mustAppend(t, leader, buildBatch(t, batchSpec{recs: []kv{{key: []byte{byte(i)}, value: value, ts: 1}}}))
	}
	for _, policy := range []SyncPolicy{SyncGroupCommit, SyncInterval} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := filepath.Join(dir, policy.String())
			l, err := Open(dir, Options{FS: vfs.Default, Sync: policy, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			follow := func() {
				for l.LogEndOffset() < leader.LogEndOffset() {
					b, err := leader.ReadReplica(l.LogEndOffset(), 100<<10)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := l.AppendReplica(b); err != nil {
						t.Fatal(err)
					}
					if err := l.WaitDurable(ctx, l.LogEndOffset()); err != nil {
						t.Fatal(err)
					}
					l.DropSyncedCache()
				}
			}
			check := func(when string, from int64) {
				seg := filepath.Join(dir, segmentName(0, logSuffix))
				got := residentPages(t, seg, from)
				st, err := os.Stat(seg)
				if err != nil {
					t.Fatal(err)
				}
				pages := int((st.Size()+cachePage-1)/cachePage - from/cachePage)
				switch {
				case policy == SyncGroupCommit && got > 1:
					t.Fatalf("%s: %d of the segment's %d pages still cached after DropSyncedCache, want at most the last", when, got, pages)
				case policy != SyncGroupCommit && got < pages-1:
					t.Fatalf("%s: only %d of the segment's %d pages cached under %v: DropSyncedCache dropped what it must keep", when, got, pages, policy)
				}
				if a, b := replicaBytes(t, l), replicaBytes(t, leader); !bytes.Equal(a, b) {
					t.Fatalf("%s: the follower reads back %d bytes differing from the leader's %d", when, len(a), len(b))
				}
			}
			follow()
			check("following", 0)
			// A truncated tail written again is dropped again (what is
			// below the cut, truncation reads, and check read back).
			if _, err := l.TruncateTo(leader.LogEndOffset() / 2); err != nil {
				t.Fatal(err)
			}
			cut := l.segs[0].size
			follow()
			check("after a truncation", cut)
		})
	}
}

// processCPU returns the process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendReplicaDropCache appends 1 MiB of a leader's batches per
// op on the real filesystem as a follower does (AppendReplica, then
// WaitDurable: an fsync), "keep" leaving the page cache as it is and
// "drop" calling DropSyncedCache after each fsync. Where fresh page-cache
// pages are dear (a VM whose free memory goes back to its hypervisor) the
// kept pages make every append take new ones; dropped, the next append
// reuses them. Run with a bounded count: -benchtime 2048x writes 2 GiB,
// enough to outgrow the pages recently freed (which are still cheap).
func BenchmarkAppendReplicaDropCache(b *testing.B) {
	var recs []batch.Record
	for i := range 1000 {
		recs = append(recs, batch.Record{OffsetDelta: int32(i), Value: make([]byte, 1024)})
	}
	data, err := batch.Build(batch.Header{FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs, batch.CodecNone)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"keep", "drop"} {
		b.Run(mode, func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{Logger: quietLogger(), Config: Config{SegmentBytes: 256 << 20}})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			cpu0 := processCPU(b)
			for b.Loop() {
				batch.SetBaseOffset(data, int64(l.LogEndOffset()))
				if _, err := l.AppendReplica(data); err != nil {
					b.Fatal(err)
				}
				if err := l.WaitDurable(ctx, l.LogEndOffset()); err != nil {
					b.Fatal(err)
				}
				if mode == "drop" {
					l.DropSyncedCache()
				}
			}
			// The process's CPU (the syncer's fsyncs included): wall time
			// here is mostly the disk's.
			b.ReportMetric(float64(processCPU(b)-cpu0)/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkAppendReplicaRound appends 4 MiB of a leader's batches (four
// producer batches of 1 MiB) per op as a follower that is four batches
// behind does: "1MiB" in four fetch rounds of one batch each (each an
// AppendReplica, a WaitDurable and a DropSyncedCache), as fetches of at
// most 1 MiB a partition bring them; "4MiB" in one round of all four, as
// fetches of 4 MiB do. Run with a bounded count (-benchtime 256x writes
// 1 GiB a mode).
func BenchmarkAppendReplicaRound(b *testing.B) {
	var recs []batch.Record
	for i := range 1000 {
		recs = append(recs, batch.Record{OffsetDelta: int32(i), Value: make([]byte, 1024)})
	}
	one, err := batch.Build(batch.Header{FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs, batch.CodecNone)
	if err != nil {
		b.Fatal(err)
	}
	const per = 4
	all := make([]byte, 0, per*len(one))
	for range per {
		all = append(all, one...)
	}
	for _, mode := range []string{"1MiB", "4MiB"} {
		b.Run(mode, func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{Logger: quietLogger(), Config: Config{SegmentBytes: 256 << 20}})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			round := func(data []byte) {
				if _, err := l.AppendReplica(data); err != nil {
					b.Fatal(err)
				}
				if err := l.WaitDurable(ctx, l.LogEndOffset()); err != nil {
					b.Fatal(err)
				}
				l.DropSyncedCache()
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(all)))
			cpu0 := processCPU(b)
			for b.Loop() {
				for i := range per {
					batch.SetBaseOffset(all[i*len(one):], int64(l.LogEndOffset())+int64(i*len(recs)))
				}
				if mode == "4MiB" {
					round(all)
					continue
				}
				for i := range per {
					round(all[i*len(one) : (i+1)*len(one)])
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}
