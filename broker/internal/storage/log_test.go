package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/google/go-cmp/cmp"
)

func TestAppendReadBasic(t *testing.T) {
	fs := vfs.NewMem()
	l := openTest(t, fs, Options{})
	r1 := mustAppend(t, l, simpleBatch(t, 3, 1000))
	r2 := mustAppend(t, l, simpleBatch(t, 2, 1001))
	if diff := cmp.Diff(AppendResult{BaseOffset: 0, LastOffset: 2, LogAppendTime: -1}, r1); diff != "" {
		t.Fatal(diff)
	}
	if r2.BaseOffset != 3 || r2.LastOffset != 4 {
		t.Fatalf("second append got %+v", r2)
	}
	if got := l.HighWatermark(); got != 5 {
		t.Fatalf("hw %d, want 5", got)
	}
	b, err := l.Read(4, 1)
	if err != nil {
		t.Fatal(err)
	}
	hs := batchesOf(t, b)
	if len(hs) != 1 || hs[0].BaseOffset != 3 {
		t.Fatalf("read from 4 gave %+v", hs)
	}
	b, err = l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(batchesOf(t, b)); got != 2 {
		t.Fatalf("read from 0 gave %d batches, want 2", got)
	}
	if _, err := l.Read(6, 100); !IsOffsetOutOfRange(err) {
		t.Fatalf("read past end: %v", err)
	}
	if b, err := l.Read(5, 100); err != nil || len(b) != 0 {
		t.Fatalf("read at end: %d bytes, %v", len(b), err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, fs, Options{})
	if l2.LogEndOffset() != 5 || l2.HighWatermark() != 5 {
		t.Fatalf("after reopen leo %d hw %d", l2.LogEndOffset(), l2.HighWatermark())
	}
	r3 := mustAppend(t, l2, simpleBatch(t, 1, 1002))
	if r3.BaseOffset != 5 {
		t.Fatalf("append after reopen at %d", r3.BaseOffset)
	}
}

func TestRollAndReopen(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{Config: Config{SegmentBytes: 1024, IndexIntervalBytes: 200}}
	l := openTest(t, fs, opts)
	var want []int64
	for i := range 40 {
		r := mustAppend(t, l, simpleBatch(t, 2, int64(1000+i)))
		want = append(want, int64(r.BaseOffset))
	}
	if n := len(l.segs); n < 4 {
		t.Fatalf("only %d segments after 40 appends into 1 KiB segments", n)
	}
	check := func(l *Log) {
		t.Helper()
		var got []int64
		for off := Offset(0); off < l.HighWatermark(); {
			b, err := l.Read(off, 1)
			if err != nil {
				t.Fatal(err)
			}
			hs := batchesOf(t, b)
			got = append(got, hs[0].BaseOffset)
			off = Offset(hs[0].LastOffset() + 1)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("batches read (-want +got):\n%s", diff)
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, fs, opts)
	check(l2)
	// Remove the index files: they are rebuilt.
	names, _ := listDir(fs, "/p")
	for _, n := range names {
		if len(n) > 20 && (n[20:] == ".index" || n[20:] == ".timeindex") {
			fs.Remove("/p/" + n)
		}
	}
	l2.Close()
	l3 := openTest(t, fs, opts)
	check(l3)
}

// TestAppendNoWaitThenWaitDurable: under SyncGroupCommit, AppendNoWait
// returns once the batches are written and asks for the fsync without
// waiting: its records become readable when the fsync is done, with no
// WaitDurable (acks=0 and acks=1 produces rely on it). A failed fsync is
// WaitDurable's error, not AppendNoWait's.
func TestAppendNoWaitThenWaitDurable(t *testing.T) {
	fs, ff := withFaults(vfs.NewMem(), nil)
	l := openTest(t, fs, Options{})
	res, err := l.AppendNoWait(simpleBatch(t, 3, 1000), 0)
	if err != nil {
		t.Fatalf("AppendNoWait: %v", err)
	}
	if res.BaseOffset != 0 || res.LastOffset != 2 {
		t.Fatalf("AppendNoWait result %+v, want offsets 0..2", res)
	}
	if leo := l.LogEndOffset(); leo != 3 {
		t.Fatalf("after AppendNoWait: leo %d, want 3", leo)
	}
	for deadline := time.Now().Add(10 * time.Second); l.HighWatermark() != 3; {
		if time.Now().After(deadline) {
			t.Fatalf("hw %d 10s after AppendNoWait, want 3: no fsync was asked for", l.HighWatermark())
		}
		select {
		case <-l.Changed():
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := l.WaitDurable(context.Background(), res.LastOffset+1); err != nil {
		t.Fatalf("WaitDurable: %v", err)
	}

	appendOverFailedSync(t, l, ff, 3)
}

// appendOverFailedSync appends one record while every fsync fails: the
// append is taken, its wait for durability fails with a storage error,
// and the high watermark stays at hw.
func appendOverFailedSync(t *testing.T, l *Log, ff *faults, hw Offset) {
	t.Helper()
	ff.set(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData {
			return errors.New("injected fsync failure")
		}
		return nil
	})
	defer ff.set(nil)
	res, err := l.AppendNoWait(simpleBatch(t, 1, 1001), 0)
	if err != nil {
		t.Fatalf("AppendNoWait before the failing fsync: %v", err)
	}
	if err := l.WaitDurable(context.Background(), res.LastOffset+1); !IsStorage(err) {
		t.Fatalf("WaitDurable over a failed fsync: %v, want a storage error", err)
	}
	if got := l.HighWatermark(); got != hw {
		t.Fatalf("after the failed fsync: hw %d, want %d", got, hw)
	}
}

// TestAppendWaitsForDurability: Append returns only once its records are
// below the high watermark, and a ctx that is already done returns ctx's
// error or nil (whichever of the fsync and ctx it sees first), with the
// records written either way (they stay in the log).
func TestAppendWaitsForDurability(t *testing.T) {
	l := openTest(t, vfs.NewMem(), Options{})
	res := mustAppend(t, l, simpleBatch(t, 2, 1000))
	if hw := l.HighWatermark(); hw != res.LastOffset+1 {
		t.Fatalf("after Append: hw %d, want %d", hw, res.LastOffset+1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, simpleBatch(t, 1, 1001), 0); !errors.Is(err, context.Canceled) && err != nil {
		t.Fatalf("Append with a done ctx: %v", err)
	}
	if leo := l.LogEndOffset(); leo != 3 {
		t.Fatalf("after Append with a done ctx: leo %d, want 3", leo)
	}
}

// TestAppendLogAppendTime: under Config.LogAppendTime the log writes its
// clock into each batch (max timestamp, timestamp type, a CRC that
// validates) and reports it; a damaged batch is refused as corrupt and not
// re-stamped into a valid one.
func TestAppendLogAppendTime(t *testing.T) {
	clock := &testClock{ms: 5_000}
	l := openTest(t, vfs.NewMem(), Options{Now: clock.Now, Config: Config{LogAppendTime: true}})
	res := mustAppend(t, l, simpleBatch(t, 2, 1000))
	if res.LogAppendTime != 5_000 {
		t.Fatalf("LogAppendTime %d, want the clock's 5000", res.LogAppendTime)
	}
	b, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	hs := batchesOf(t, b) // validates each CRC
	if len(hs) != 1 || !hs[0].LogAppendTime() || hs[0].MaxTimestamp != 5_000 || hs[0].FirstTimestamp != 1000 {
		t.Fatalf("stored headers %+v, want one LogAppendTime batch with max timestamp 5000", hs)
	}
	if off, ts := l.MaxTimestamp(); off != 0 || ts != 5_000 {
		t.Fatalf("MaxTimestamp = %d, %d; want 0, 5000", off, ts)
	}

	bad := simpleBatch(t, 1, 1001)
	bad[len(bad)-1] ^= 0xff
	if _, err := l.Append(context.Background(), bad, 0); !IsCorrupt(err) {
		t.Fatalf("append of a damaged batch: %v, want corrupt", err)
	}
	if leo := l.LogEndOffset(); leo != 2 {
		t.Fatalf("leo %d after a refused append, want 2", leo)
	}

	if err := l.SetConfig(Config{}); err != nil {
		t.Fatal(err)
	}
	if res := mustAppend(t, l, simpleBatch(t, 1, 1002)); res.LogAppendTime != -1 {
		t.Fatalf("CreateTime append reports LogAppendTime %d, want -1", res.LogAppendTime)
	}
}
