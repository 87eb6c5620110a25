package storage

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// fullDisk is an injector for a device with no free block: every write and
// every file creation fails with ENOSPC; reads, renames, removals and
// truncations work. It records the names it refused.
type fullDisk struct {
	mu      sync.Mutex
	refused []string
}

func (d *fullDisk) inject(op errorfs.Op) error {
	if !isWrite(op) && op.Kind != errorfs.OpCreate {
		return nil
	}
	d.mu.Lock()
	d.refused = append(d.refused, fmt.Sprintf("op %d %s", op.Kind, op.Path))
	d.mu.Unlock()
	return errNoSpace
}

// readBases reads every batch's base offset from the log start to the high
// watermark, one batch per Read.
func readBases(t *testing.T, l *Log) []int64 {
	t.Helper()
	var got []int64
	for off := l.LogStartOffset(); off < l.HighWatermark(); {
		b, err := l.Read(off, 1)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		h := batchesOf(t, b)[0]
		got = append(got, h.BaseOffset)
		off = Offset(h.LastOffset() + 1)
	}
	return got
}

// TestOpenOnFullDisk: a log with sealed segments, a leader-epoch checkpoint
// and missing index files opens on a full disk (clean shutdown and crash
// alike), serves every batch, and answers appends with a disk-full error;
// sealed segments are open read-only; once space is back, appends resume.
func TestOpenOnFullDisk(t *testing.T) {
	for _, tc := range []struct {
		name        string
		crash       bool
		lostIndexes bool
	}{
		{"clean-shutdown", false, false},
		{"crash", true, false},
		{"clean-shutdown-indexes-lost", false, true},
		{"crash-indexes-lost", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			opts := Options{Config: Config{SegmentBytes: 1024, IndexIntervalBytes: 200}}
			l := openTest(t, mem, opts)
			var want []int64
			for i := range 30 {
				r := mustAppend(t, l, simpleBatch(t, 2, int64(1000+i)))
				want = append(want, int64(r.BaseOffset))
			}
			if n := len(l.segs); n < 3 {
				t.Fatalf("%d segments, want at least 3", n)
			}
			fs := vfs.FS(mem)
			if tc.crash {
				fs = mem.CrashClone(vfs.CrashCloneCfg{}) // group commit: everything acknowledged is synced
			} else if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.lostIndexes { // open rebuilds them
				if err := fs.Remove("/p/" + segmentName(0, indexSuffix)); err != nil {
					t.Fatal(err)
				}
			}
			ckBefore := readFileT(t, fs, "/p/"+epochCheckpointFile)

			disk := &fullDisk{}
			inj, ff := withFaults(fs, disk.inject)
			l2 := openTest(t, inj, opts)
			if diff := cmp.Diff(want, readBases(t, l2)); diff != "" {
				t.Fatalf("batches read on a full disk (-want +got):\n%s", diff)
			}
			for _, s := range l2.segs[:len(l2.segs)-1] {
				if _, err := s.f.Write([]byte("x")); err == nil {
					t.Fatalf("sealed segment %s was opened writable", s.path)
				}
			}
			if _, err := l2.Append(context.Background(), simpleBatch(t, 2, 5000), 0); !IsDiskFull(err) {
				t.Fatalf("append on a full disk: %v, want a disk-full error", err)
			}
			for _, r := range disk.refused {
				if strings.Contains(r, epochCheckpointFile) {
					t.Errorf("open or append tried to rewrite the unchanged leader-epoch checkpoint: %s", r)
				}
			}
			if got := readFileT(t, fs, "/p/"+epochCheckpointFile); !bytes.Equal(got, ckBefore) {
				t.Errorf("leader-epoch checkpoint changed: %q, was %q", got, ckBefore)
			}
			if diff := cmp.Diff(want, readBases(t, l2)); diff != "" {
				t.Fatalf("batches read after the refused append (-want +got):\n%s", diff)
			}

			ff.set(nil)
			r := mustAppend(t, l2, simpleBatch(t, 2, 6000))
			if int64(r.BaseOffset) != want[len(want)-1]+2 {
				t.Fatalf("append after space came back at %d, want %d", r.BaseOffset, want[len(want)-1]+2)
			}
		})
	}
}

// TestStaleEpochCheckpointOnFullDisk: a checkpoint naming an epoch past the
// recovered end cannot be rewritten at open on a full disk; the log opens
// anyway and the first append after space is back rewrites it before
// writing its batch.
func TestStaleEpochCheckpointOnFullDisk(t *testing.T) {
	mem := vfs.NewMem()
	l := openTest(t, mem, Options{})
	for i := range 3 {
		mustAppend(t, l, simpleBatch(t, 2, int64(i)))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Epoch 1 "started" at 100, past the end (6): as after a torn tail.
	if err := writeFileDurable(mem, "/p/"+epochCheckpointFile, encodeEpochs([]epochEntry{{0, 0}, {1, 100}})); err != nil {
		t.Fatal(err)
	}

	disk := &fullDisk{}
	inj, ff := withFaults(mem, disk.inject)
	l2 := openTest(t, inj, Options{})
	if diff := cmp.Diff([]int64{0, 2, 4}, readBases(t, l2)); diff != "" {
		t.Fatalf("batches (-want +got):\n%s", diff)
	}
	if !l2.epochsUnsaved {
		t.Fatal("open on a full disk did not note the checkpoint it could not rewrite")
	}
	ff.set(nil)
	mustAppend(t, l2, simpleBatch(t, 1, 10))
	want := encodeEpochs([]epochEntry{{0, 0}})
	if got := readFileT(t, mem, "/p/"+epochCheckpointFile); !bytes.Equal(got, want) {
		t.Fatalf("checkpoint after the append: %q, want %q", got, want)
	}
}

func readFileT(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	b, err := readFile(fs, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

// TestRetentionFreesFullDisk: on a full disk, retention still deletes
// whole segments (the log-start checkpoint cannot be rewritten, and need
// not be: the first remaining segment marks the start), and a reopened log
// starts there.
func TestRetentionFreesFullDisk(t *testing.T) {
	mem := vfs.NewMem()
	disk := &fullDisk{}
	inj, ff := withFaults(mem, nil)
	opts := Options{Config: Config{SegmentBytes: 1024, RetentionBytes: 2048}}
	l := openTest(t, inj, opts)
	var want []int64
	for i := range 30 {
		r := mustAppend(t, l, simpleBatch(t, 2, int64(1000+i)))
		want = append(want, int64(r.BaseOffset))
	}
	segsBefore := len(l.segs)
	ff.set(disk.inject)
	if err := l.Clean(context.Background()); err != nil {
		t.Fatalf("Clean on a full disk: %v", err)
	}
	if len(l.segs) >= segsBefore {
		t.Fatalf("retention deleted nothing on a full disk: %d segments, %d before", len(l.segs), segsBefore)
	}
	start := l.LogStartOffset()
	if start != l.segs[0].base || start == 0 {
		t.Fatalf("log start %d, first segment %d", start, l.segs[0].base)
	}
	for _, n := range mustList(t, mem, "/p") {
		if b, ok := parseBase(n); ok && b < start && strings.HasSuffix(n, logSuffix) {
			t.Errorf("segment file %s below the start %d is still there", n, start)
		}
	}
	var kept []int64
	for _, o := range want {
		if Offset(o) >= start {
			kept = append(kept, o)
		}
	}
	if diff := cmp.Diff(kept, readBases(t, l)); diff != "" {
		t.Fatalf("batches after retention (-want +got):\n%s", diff)
	}
	ff.set(nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, mem, opts)
	if l2.LogStartOffset() != start {
		t.Fatalf("reopened log starts at %d, want %d", l2.LogStartOffset(), start)
	}
	if diff := cmp.Diff(kept, readBases(t, l2)); diff != "" {
		t.Fatalf("batches after reopening (-want +got):\n%s", diff)
	}
}

func mustList(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := listDir(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestDeleteRecordsOnFullDisk: DeleteRecords on a full disk first deletes
// the whole segments below the one holding its offset; when that gives
// space back it then moves the start to the offset durably, and when it
// does not, it fails with a disk-full error with the start at that
// segment's base (also after reopening).
func TestDeleteRecordsOnFullDisk(t *testing.T) {
	for _, spaceBack := range []bool{true, false} {
		name := "space-back"
		if !spaceBack {
			name = "still-full"
		}
		t.Run(name, func(t *testing.T) {
			mem := vfs.NewMem()
			inj, ff := withFaults(mem, nil)
			opts := Options{Config: Config{SegmentBytes: 1024}}
			l := openTest(t, inj, opts)
			var want []int64
			for i := range 30 {
				r := mustAppend(t, l, simpleBatch(t, 2, int64(1000+i)))
				want = append(want, int64(r.BaseOffset))
			}
			holder := l.segs[2] // DeleteRecords to the middle of the third segment
			off := holder.base + 3
			if off >= holder.next {
				t.Fatalf("segment %d..%d too small for the test", holder.base, holder.next)
			}
			var mu sync.Mutex
			freed := false
			ff.set(func(op errorfs.Op) error {
				mu.Lock()
				defer mu.Unlock()
				if op.Kind == errorfs.OpRemove && strings.HasSuffix(op.Path, logSuffix) && spaceBack {
					freed = true
				}
				if !freed && (isWrite(op) || op.Kind == errorfs.OpCreate) {
					return errNoSpace
				}
				return nil
			})
			got, err := l.DeleteRecordsBefore(off)
			wantStart := off
			if spaceBack {
				if err != nil {
					t.Fatalf("DeleteRecordsBefore(%d) once deleting segments gave space back: %v", off, err)
				}
			} else {
				if !IsDiskFull(err) {
					t.Fatalf("DeleteRecordsBefore(%d) on a disk that stays full: %v, want a disk-full error", off, err)
				}
				wantStart = holder.base
			}
			if got != wantStart || l.LogStartOffset() != wantStart {
				t.Fatalf("start: returned %d, log says %d, want %d", got, l.LogStartOffset(), wantStart)
			}
			for _, n := range mustList(t, mem, "/p") {
				if b, ok := parseBase(n); ok && b < holder.base && strings.HasSuffix(n, logSuffix) {
					t.Errorf("segment file %s below %d is still there", n, holder.base)
				}
			}
			ff.set(nil)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := openTest(t, mem, opts)
			if l2.LogStartOffset() != wantStart {
				t.Fatalf("reopened log starts at %d, want %d", l2.LogStartOffset(), wantStart)
			}
			var kept []int64
			for _, o := range want {
				if Offset(o) >= holder.base {
					kept = append(kept, o)
				}
			}
			// A read from the start returns the batch holding it.
			b, err := l2.Read(l2.LogStartOffset(), 1)
			if err != nil {
				t.Fatal(err)
			}
			first := batchesOf(t, b)[0]
			if Offset(first.BaseOffset) > wantStart || Offset(first.LastOffset()) < wantStart {
				t.Fatalf("read from the start %d returned batch %d..%d", wantStart, first.BaseOffset, first.LastOffset())
			}
			if spaceBack {
				return
			}
			if diff := cmp.Diff(kept, readBases(t, l2)); diff != "" {
				t.Fatalf("batches after reopening (-want +got):\n%s", diff)
			}
		})
	}
}
