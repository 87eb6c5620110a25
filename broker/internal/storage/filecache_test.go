package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// countingFS counts the files open through it and records every path
// it was asked to open, whether or not the file exists.
type countingFS struct {
	vfs.FS
	mu     sync.Mutex
	open   int
	peak   int
	opened []string
}

func (c *countingFS) note(name string, f vfs.File, err error) (vfs.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened = append(c.opened, name)
	if err != nil {
		return f, err
	}
	c.open++
	c.peak = max(c.peak, c.open)
	return &countedFile{File: f, fs: c}, nil
}

func (c *countingFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := c.FS.Open(name, opts...)
	return c.note(name, f, err)
}

func (c *countingFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := c.FS.OpenReadWrite(name, cat, opts...)
	return c.note(name, f, err)
}

func (c *countingFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.Create(name, cat)
	return c.note(name, f, err)
}

// stats returns the files open now, the most open at once since the last
// reset, and the paths opened since then; and resets the peak and paths.
func (c *countingFS) stats() (open, peak int, opened []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	open, peak, opened = c.open, c.peak, c.opened
	c.peak, c.opened = c.open, nil
	return open, peak, opened
}

type countedFile struct {
	vfs.File
	fs   *countingFS
	once sync.Once
}

func (f *countedFile) Close() error {
	f.once.Do(func() {
		f.fs.mu.Lock()
		f.fs.open--
		f.fs.mu.Unlock()
	})
	return f.File.Close()
}

// manySegments appends n one-batch segments to a log on fs (segment.bytes
// is one batch, so every append rolls) and returns the batch each offset
// holds.
func manySegments(t *testing.T, fs vfs.FS, cache *FileCache, n int) (*Log, [][]byte) {
	t.Helper()
	b0 := simpleBatch(t, 1, 1000)
	l := openTest(t, fs, Options{FileCache: cache, Config: Config{SegmentBytes: int64(len(b0))}})
	want := make([][]byte, n)
	for i := range n {
		b := simpleBatch(t, 1, 1000+int64(i))
		res := mustAppend(t, l, b)
		if res.BaseOffset != Offset(i) {
			t.Fatalf("append %d got offset %d", i, res.BaseOffset)
		}
		want[i] = b
	}
	return l, want
}

// readEvery reads every offset of l and checks it holds the batch appended
// there (base offset aside).
func readEvery(t *testing.T, l *Log, want [][]byte) {
	t.Helper()
	for i, w := range want {
		got, err := l.Read(Offset(i), 1)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		hs := batchesOf(t, got)
		if len(hs) != 1 || hs[0].BaseOffset != int64(i) || len(got) != len(w) || string(got[batch.HeaderSize:]) != string(w[batch.HeaderSize:]) {
			t.Fatalf("read %d: got %d bytes (%d batches), want the %d-byte batch appended there", i, len(got), len(hs), len(w))
		}
	}
}

// TestOpenFilesBoundedWithManySegments: a log of 2,000 segments holds at
// most the cache's bound of sealed segment files open (plus the active
// segment's) while appending, reading every segment, and after reopening.
func TestOpenFilesBoundedWithManySegments(t *testing.T) {
	const segments, bound = 2000, 16
	fs := &countingFS{FS: vfs.NewMem()}
	cache := NewFileCache(bound)
	l, want := manySegments(t, fs, cache, segments)
	// The bound, the active segment, the next one a roll creates before it
	// seals the old, and a checkpoint file written meanwhile.
	limit := bound + 3
	if _, peak, _ := fs.stats(); peak > limit {
		t.Fatalf("appending %d segments held up to %d files open at once, want at most %d", segments, peak, limit)
	}
	readEvery(t, l, want)
	if open, peak, _ := fs.stats(); peak > limit || open > bound+1 {
		t.Fatalf("reading %d segments: %d files open, up to %d at once; want at most %d", segments, open, peak, limit)
	}
	if got := cache.OpenFiles(); got > bound {
		t.Fatalf("cache holds %d files open, bound %d", got, bound)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if open, _, _ := fs.stats(); open != 0 {
		t.Fatalf("%d files still open after Close", open)
	}
	// Reopened after the clean stop, then after a crash (no marker).
	for _, crash := range []bool{false, true} {
		if crash {
			if err := fs.Remove("/p/" + cleanShutdownFile); err != nil {
				t.Fatal(err)
			}
		}
		l2, err := Open("/p", Options{FS: fs, FileCache: cache, Logger: quietLogger(), Config: Config{SegmentBytes: int64(len(want[0]))}})
		if err != nil {
			t.Fatal(err)
		}
		readEvery(t, l2, want)
		if _, peak, _ := fs.stats(); peak > limit {
			t.Fatalf("crash %v: open and reads held up to %d files open at once, want at most %d", crash, peak, limit)
		}
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCleanStartOpensNoSealedSegment: after a clean stop, Open reads
// nothing of the sealed segments (neither their files nor their indexes);
// a read then opens only the segment it reads. After a crash that left
// neither the marker nor the recovery-point checkpoint every sealed segment
// is checked again.
func TestCleanStartOpensNoSealedSegment(t *testing.T) {
	const segments = 50
	fs := &countingFS{FS: vfs.NewMem()}
	cache := NewFileCache(8)
	l, want := manySegments(t, fs, cache, segments)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fs.stats()
	opts := Options{FS: fs, FileCache: cache, Logger: quietLogger(), Config: Config{SegmentBytes: int64(len(want[0]))}}
	l2, err := Open("/p", opts)
	if err != nil {
		t.Fatal(err)
	}
	// Every append but the last rolled: the last segment is active.
	active := segmentName(Offset(segments-1), "")
	_, _, opened := fs.stats()
	for _, p := range opened {
		if isSegmentFile(p) && !strings.Contains(p, active) {
			t.Errorf("open after a clean stop opened %s", p)
		}
	}
	if got, want := l2.LogEndOffset(), Offset(segments); got != want {
		t.Fatalf("log end offset %d, want %d", got, want)
	}
	reopens := cache.Reopens()
	readEvery(t, l2, want[:1])
	got, err := l2.Read(17, 1)
	if err != nil || len(batchesOf(t, got)) != 1 || batchesOf(t, got)[0].BaseOffset != 17 {
		t.Fatalf("read 17: %v", err)
	}
	_, _, opened = fs.stats()
	var logs []string
	for _, p := range opened {
		if strings.HasSuffix(p, logSuffix) {
			logs = append(logs, p)
		}
	}
	if len(logs) != 2 || !strings.Contains(logs[0], segmentName(0, logSuffix)) || !strings.Contains(logs[1], segmentName(17, logSuffix)) {
		t.Fatalf("reads of offsets 0 and 17 opened %v, want the segments at 0 and 17 only", logs)
	}
	if cache.Reopens() != reopens+2 {
		t.Fatalf("cache opened %d files for two reads", cache.Reopens()-reopens)
	}
	// Everything else still reads right, and its indexes load on demand.
	readEvery(t, l2, want)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash with no marker and no recovery-point checkpoint: every
	// sealed segment is checked again.
	for _, f := range []string{cleanShutdownFile, recoveryPointFile} {
		if err := fs.Remove("/p/" + f); err != nil {
			t.Fatal(err)
		}
	}
	fs.stats()
	l3, err := Open("/p", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	_, _, opened = fs.stats()
	n := 0
	for _, p := range opened {
		if strings.HasSuffix(p, logSuffix) {
			n++
		}
	}
	if n != segments {
		t.Fatalf("open after a crash opened %d segment files, want all %d", n, segments)
	}
	readEvery(t, l3, want)
}

// TestKillStartOpensNothingBelowRecoveryPoint: after a power loss (only
// what was synced survives) Open opens no file of a sealed segment below
// the recovery point (neither its log nor its indexes), only the active
// segment; every acknowledged batch reads back, and reads open only what
// they read. A checkpoint that no longer matches a segment (its file cut)
// makes Open check that segment, and truncate its torn tail, again.
func TestKillStartOpensNothingBelowRecoveryPoint(t *testing.T) {
	const segments = 40
	mem := vfs.NewCrashableMem()
	cache := NewFileCache(8)
	l, want := manySegments(t, &countingFS{FS: mem}, cache, segments)
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	l.Close()
	if _, err := crashed.Stat("/p/" + cleanShutdownFile); err == nil {
		t.Fatal("the crash kept a clean-shutdown marker")
	}
	fs := &countingFS{FS: crashed}
	opts := Options{FS: fs, FileCache: NewFileCache(8), Logger: quietLogger(), Config: Config{SegmentBytes: int64(len(want[0]))}}
	l2, err := Open("/p", opts)
	if err != nil {
		t.Fatal(err)
	}
	active := segmentName(Offset(segments-1), "")
	_, _, opened := fs.stats()
	for _, p := range opened {
		if isSegmentFile(p) && !strings.Contains(p, active) {
			t.Errorf("open after a crash opened %s, below the recovery point", p)
		}
	}
	if got := l2.LogEndOffset(); got != Offset(segments) {
		t.Fatalf("log end offset %d, want %d", got, segments)
	}
	got, err := l2.Read(23, 1)
	if err != nil || len(batchesOf(t, got)) != 1 || batchesOf(t, got)[0].BaseOffset != 23 {
		t.Fatalf("read 23: %v", err)
	}
	_, _, opened = fs.stats()
	var logs []string
	for _, p := range opened {
		if strings.HasSuffix(p, logSuffix) {
			logs = append(logs, p)
		}
	}
	if len(logs) != 1 || !strings.Contains(logs[0], segmentName(23, logSuffix)) {
		t.Fatalf("a read of offset 23 opened %v, want the segment at 23 only", logs)
	}
	readEvery(t, l2, want)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash again, after a listed segment lost its last bytes behind the
	// log's back: its size no longer matches, so it is checked (and cut
	// at its last whole batch, the torn one dropped) while the others are
	// still taken as listed.
	if err := fs.Remove("/p/" + cleanShutdownFile); err != nil {
		t.Fatal(err)
	}
	torn := "/p/" + segmentName(10, logSuffix)
	data, err := readFile(crashed, torn)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileDurable(crashed, torn, data[:len(data)-3]); err != nil {
		t.Fatal(err)
	}
	fs.stats()
	l3, err := Open("/p", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	_, _, opened = fs.stats()
	logs = logs[:0]
	for _, p := range opened {
		// The cut segment is opened a second time, writable, to cut it.
		if strings.HasSuffix(p, logSuffix) && !slices.Contains(logs, p) {
			logs = append(logs, p)
		}
	}
	if len(logs) != 2 || !strings.Contains(logs[0], segmentName(10, logSuffix)) || !strings.Contains(logs[1], active) {
		t.Fatalf("open after the cut opened %v, want the cut segment and the active one", logs)
	}
	if b, err := l3.Read(10, 1); err == nil && len(b) > 0 && batchesOf(t, b)[0].BaseOffset == 10 {
		t.Fatal("offset 10 still reads after its batch was torn")
	}
	readEvery(t, l3, want[:10])
	for i := 11; i < segments; i++ {
		got, err := l3.Read(Offset(i), 1)
		if err != nil || len(got) != len(want[i]) || batchesOf(t, got)[0].BaseOffset != int64(i) {
			t.Fatalf("read %d after the cut: %d bytes, %v", i, len(got), err)
		}
	}
}

// isSegmentFile reports whether path names a segment's log or index file.
func isSegmentFile(path string) bool {
	for _, s := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if strings.HasSuffix(path, s) {
			return true
		}
	}
	return false
}

// TestFileCacheEvictsUnheldOnly: a file a read holds is never closed under
// it, and the cache shrinks back to its bound once reads let go.
func TestFileCacheEvictsUnheldOnly(t *testing.T) {
	fs := vfs.NewMem()
	c := NewFileCache(2)
	var sfs []*segFile
	for i := range 4 {
		path := segmentName(Offset(i), logSuffix)
		f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		sfs = append(sfs, c.closed(fs, path))
	}
	var held []vfs.File
	for _, sf := range sfs[:3] {
		f, err := sf.acquire()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, f)
	}
	if got := c.OpenFiles(); got != 3 {
		t.Fatalf("%d open while 3 are held, want 3 (held files stay open past the bound)", got)
	}
	for i, f := range held {
		var b [1]byte
		if _, err := f.ReadAt(b[:], 0); err != nil || b[0] != byte(i) {
			t.Fatalf("held file %d: %v %v", i, b, err)
		}
		sfs[i].release()
	}
	// A fourth read makes room: two of the unheld files close.
	var b [1]byte
	if _, err := sfs[3].ReadAt(b[:], 0); err != nil || b[0] != 3 {
		t.Fatalf("read 3: %v %v", b, err)
	}
	if got := c.OpenFiles(); got > 2 {
		t.Fatalf("%d open after the reads let go, bound 2", got)
	}
	// A closed-for-good file is not reopened.
	if err := sfs[3].Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sfs[3].ReadAt(b[:], 0); err == nil {
		t.Fatal("read of a closed segment file succeeded")
	}
}

// BenchmarkSegmentFileReadAt: a 4 KiB pread of a segment file directly
// (the peer: what the log did before the FileCache), through a pinned
// segFile (the active segment) and through a cached sealed one.
func BenchmarkSegmentFileReadAt(b *testing.B) {
	dir := b.TempDir()
	path := dir + "/" + segmentName(0, logSuffix)
	fs := vfs.Default
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	cache := NewFileCache(16)
	sealed := cache.closed(fs, path)
	defer sealed.Close()
	for _, c := range []struct {
		name string
		f    vfs.File
	}{{"direct", f}, {"pinned", cache.pinned(fs, f, path)}, {"sealed", sealed}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := c.f.ReadAt(buf, int64(i%256)*4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	f.Close()
}

// TestFileCacheConcurrentReads: readers of many segments through a cache
// far smaller than the segments, while appends roll new ones, each read
// what was appended at its offset; the race detector watches the handles.
func TestFileCacheConcurrentReads(t *testing.T) {
	const segments, readers, reads = 200, 6, 300
	fs := &countingFS{FS: vfs.NewMem()}
	cache := NewFileCache(4)
	l, want := manySegments(t, fs, cache, segments)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	var g sync.WaitGroup
	errs := make(chan error, readers+1)
	for w := range readers {
		g.Add(1)
		go func() {
			defer g.Done()
			r := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			for range reads {
				i := r.IntN(segments)
				got, err := l.Read(Offset(i), 1)
				if err != nil {
					errs <- fmt.Errorf("read %d: %w", i, err)
					return
				}
				if len(got) != len(want[i]) || string(got[batch.HeaderSize:]) != string(want[i][batch.HeaderSize:]) {
					errs <- fmt.Errorf("read %d: got %d bytes, not the batch appended there", i, len(got))
					return
				}
			}
		}()
	}
	more := make([][]byte, 50)
	for i := range more {
		more[i] = simpleBatch(t, 1, 5000+int64(i))
	}
	g.Add(1)
	go func() {
		defer g.Done()
		for _, b := range more {
			if _, err := l.Append(context.Background(), b, 0); err != nil {
				errs <- err
				return
			}
		}
	}()
	g.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := cache.OpenFiles(); got > 4 {
		t.Fatalf("cache holds %d files open after the reads, bound 4", got)
	}
}
