package storage

import (
	"bytes"
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// replicate copies everything past the follower's end from leader to
// follower, as a follower's fetcher does.
func replicate(t *testing.T, leader, follower *Log) {
	t.Helper()
	for {
		from := follower.LogEndOffset()
		b, err := leader.ReadReplica(from, 300)
		if err != nil {
			t.Fatalf("read replica at %d: %v", from, err)
		}
		if len(b) == 0 {
			return
		}
		if _, err := follower.AppendReplica(b); err != nil {
			t.Fatalf("append replica at %d: %v", from, err)
		}
		if err := follower.WaitDurable(context.Background(), follower.LogEndOffset()); err != nil {
			t.Fatal(err)
		}
	}
}

// replicaBytes returns every batch byte below the log end offset.
func replicaBytes(t *testing.T, l *Log) []byte {
	t.Helper()
	var out []byte
	for from := l.LogStartOffset(); from < l.LogEndOffset(); {
		b, err := l.ReadReplica(from, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
		hs := batchesOf(t, b)
		from = Offset(hs[len(hs)-1].LastOffset() + 1)
	}
	return out
}

func TestAppendReplicaKeepsOffsetsEpochsAndProducers(t *testing.T) {
	cfg := Config{SegmentBytes: 400}
	leader := openTest(t, vfs.NewMem(), Options{Config: cfg})
	follower := openTest(t, vfs.NewMem(), Options{Config: cfg})
	ctx := context.Background()
	for e := Epoch(0); e < 3; e++ {
		for i := range 4 {
			b := buildBatch(t, batchSpec{recs: []kv{{key: []byte("k"), value: []byte{byte(i)}, ts: 1}}, pid: 7, pepoch: 0, seq: int32(e)*4 + int32(i)})
			if _, err := leader.Append(ctx, b, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	replicate(t, leader, follower)
	if got, want := replicaBytes(t, follower), replicaBytes(t, leader); !bytes.Equal(got, want) {
		t.Fatalf("follower's batches differ from the leader's (%d vs %d bytes)", len(got), len(want))
	}
	for e := Epoch(0); e < 3; e++ {
		le, lo, _ := leader.EndOffsetForEpoch(e)
		fe, fo, _ := follower.EndOffsetForEpoch(e)
		if le != fe || lo != fo {
			t.Fatalf("epoch %d: leader ends it at (%d, %d), follower at (%d, %d)", e, le, lo, fe, fo)
		}
	}
	if got := follower.LatestEpoch(); got != 2 {
		t.Fatalf("LatestEpoch = %d, want 2", got)
	}
	// The follower, now leading, deduplicates the producer's retry of
	// its last batch and continues its sequence.
	retry := buildBatch(t, batchSpec{recs: []kv{{key: []byte("k"), value: []byte{3}, ts: 1}}, pid: 7, pepoch: 0, seq: 11})
	res, err := follower.Append(ctx, retry, 3)
	if err != nil || !res.Duplicate || res.BaseOffset != 11 {
		t.Fatalf("retry on the new leader: %+v, %v; want a duplicate of offset 11", res, err)
	}
	next := buildBatch(t, batchSpec{recs: []kv{{key: []byte("k"), value: []byte{4}, ts: 1}}, pid: 7, pepoch: 0, seq: 13})
	if _, err := follower.Append(ctx, next, 3); !IsOutOfOrderSequence(err) {
		t.Fatalf("a gap in the sequence on the new leader: %v, want out of order", err)
	}
	// A batch below the end or of an older epoch is refused.
	old, _ := leader.ReadReplica(0, 1)
	if _, err := follower.AppendReplica(old); err == nil {
		t.Fatal("a batch below the log end was appended")
	}
}

func TestTruncateTo(t *testing.T) {
	fs := vfs.NewMem()
	cfg := Config{SegmentBytes: 300}
	l := openTest(t, fs, Options{Config: cfg})
	ctx := context.Background()
	var ends []Offset // log end after each append
	for i := range 12 {
		b := buildBatch(t, batchSpec{recs: []kv{{key: []byte("k"), value: []byte{byte(i)}, ts: 1}, {value: []byte("x"), ts: 1}}, pid: 9, seq: int32(2 * i)})
		res, err := l.Append(ctx, b, Epoch(i/4))
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, res.LastOffset+1)
	}
	if len(l.segs) < 3 {
		t.Fatalf("want several segments, have %d", len(l.segs))
	}
	before := replicaBytes(t, l)
	// Offset 13 is inside the batch [12, 13]: that batch goes too.
	end, err := l.TruncateTo(13)
	if err != nil || end != 12 {
		t.Fatalf("TruncateTo(13) = %d, %v; want 12", end, err)
	}
	if l.LogEndOffset() != 12 || l.HighWatermark() > 12 {
		t.Fatalf("after truncation leo %d hw %d", l.LogEndOffset(), l.HighWatermark())
	}
	after := replicaBytes(t, l)
	if !bytes.Equal(after, before[:len(after)]) || len(batchesOf(t, after)) != 6 {
		t.Fatalf("truncation kept %d batches, not a prefix of 6", len(batchesOf(t, after)))
	}
	// Epoch 2 started at offset 16: forgotten; epoch 1 ends at 12.
	if e, o, _ := l.EndOffsetForEpoch(5); e != 1 || o != 12 {
		t.Fatalf("EndOffsetForEpoch(5) = %d, %d; want 1, 12", e, o)
	}
	// Producer state is rebuilt: sequence 12 follows, 14 does not.
	b := buildBatch(t, batchSpec{recs: []kv{{value: []byte("y"), ts: 1}}, pid: 9, seq: 14})
	if _, err := l.Append(ctx, b, 3); !IsOutOfOrderSequence(err) {
		t.Fatalf("sequence 14 after truncation to 12: %v, want out of order", err)
	}
	b = buildBatch(t, batchSpec{recs: []kv{{value: []byte("y"), ts: 1}}, pid: 9, seq: 12})
	if res, err := l.Append(ctx, b, 3); err != nil || res.BaseOffset != 12 {
		t.Fatalf("append after truncation: %+v, %v", res, err)
	}
	want := replicaBytes(t, l)
	// Recovery sees the same log.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	re, err := Open("/p", Options{FS: fs, Config: cfg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	if got := replicaBytes(t, re); !bytes.Equal(got, want) {
		t.Fatalf("reopened log differs: %d bytes, want %d", len(got), len(want))
	}
	if d := cmp.Diff(l.epochs, re.epochs, cmp.AllowUnexported(epochEntry{})); d != "" {
		t.Fatalf("reopened epochs differ:\n%s", d)
	}
	// Truncating to the start empties the log.
	if end, err := re.TruncateTo(0); err != nil || end != 0 || re.LogEndOffset() != 0 {
		t.Fatalf("TruncateTo(0) = %d, %v; leo %d", end, err, re.LogEndOffset())
	}
	if _, err := re.Append(ctx, simpleBatch(t, 1, 1), 4); err != nil {
		t.Fatal(err)
	}
	_ = ends
}

func TestHighWatermarkLimit(t *testing.T) {
	l := openTest(t, vfs.NewMem(), Options{})
	l.SetHighWatermarkLimit(0)
	ctx := context.Background()
	res, err := l.Append(ctx, simpleBatch(t, 3, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if hw := l.HighWatermark(); hw != 0 {
		t.Fatalf("hw %d past a limit of 0", hw)
	}
	if b, _ := l.Read(0, 1<<20); len(b) != 0 {
		t.Fatal("a consumer's read returned records above the high watermark")
	}
	if b, _ := l.ReadReplica(0, 1<<20); len(b) == 0 {
		t.Fatal("a follower's read returned nothing past the high watermark")
	}
	l.SetHighWatermarkLimit(res.LastOffset + 1)
	if err := l.WaitHighWatermark(ctx, res.LastOffset+1, nil); err != nil {
		t.Fatal(err)
	}
	l.SetHighWatermarkLimit(1) // never backwards
	if hw := l.HighWatermark(); hw != 3 {
		t.Fatalf("hw %d, want 3", hw)
	}
	// A follower takes its leader's, lower if need be.
	l.SetFollowerHighWatermark(1)
	if hw := l.HighWatermark(); hw != 1 {
		t.Fatalf("follower hw %d, want its leader's 1", hw)
	}
	l.SetFollowerHighWatermark(9)
	if hw := l.HighWatermark(); hw != 3 {
		t.Fatalf("follower hw %d, want its own end 3", hw)
	}
}

// BenchmarkReadReplica reads a leader's log front to back as its
// followers' fetches do, 1 MiB a read: "copy" into fresh memory
// (ReadReplica, how follower fetches were served), "into" a kept buffer
// (ReadReplicaInto) and "range" as file ranges for sendfile
// (ReadReplicaRange; the bytes are then never read into memory, and the
// kernel's copy to the socket, not measured here, is all that remains).
func BenchmarkReadReplica(b *testing.B) {
	l, err := Open(b.TempDir(), Options{Sync: SyncNever, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	data := benchBatch(b, 1024)
	const batches = 1024 // 16 MiB
	for range batches {
		if _, err := l.Append(context.Background(), data, 0); err != nil {
			b.Fatal(err)
		}
	}
	total := int64(batches * len(data))
	for _, mode := range []string{"copy", "into", "range"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(total)
			buf := make([]byte, 1<<20)
			for b.Loop() {
				var n int64
				for off := Offset(0); off < l.LogEndOffset(); {
					var out []byte
					switch mode {
					case "copy":
						out, err = l.ReadReplica(off, 1<<20)
					case "into":
						out, err = l.ReadReplicaInto(buf, off, 1<<20)
					case "range":
						var r FileRange
						var ok bool
						r, ok, err = l.ReadReplicaRange(off, 1<<20, 64<<10)
						if !ok {
							b.Fatalf("no range at %d", off)
						}
						// The range's last batch header says where the next read starts.
						hb := make([]byte, batch.HeaderSize)
						if _, err := l.segs[0].f.ReadAt(hb, r.Off+int64(r.Len)-int64(len(data))); err != nil {
							b.Fatal(err)
						}
						_ = r.Close()
						n += int64(r.Len)
						h, _ := batch.ParseHeader(hb)
						off = Offset(h.LastOffset() + 1)
						continue
					}
					if err != nil {
						b.Fatal(err)
					}
					n += int64(len(out))
					off = lastBatchEnd(b, out)
				}
				if n != total {
					b.Fatalf("read %d bytes, want %d", n, total)
				}
			}
		})
	}
}
