package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/broker/internal/batch"
)

func FuzzOffsetIndex(f *testing.F) {
	f.Add(encodeOffsetIndex([]offsetEntry{{0, 0}, {3, 100}, {9, 4000}}), int64(5000))
	f.Add([]byte{0, 0, 0, 1}, int64(10))
	f.Add(encodeOffsetIndex([]offsetEntry{{5, 10}, {5, 20}}), int64(100))
	f.Fuzz(func(t *testing.T, b []byte, logSize int64) {
		idx, err := decodeOffsetIndex(b, logSize)
		if err != nil {
			return
		}
		for i, e := range idx {
			if int64(e.pos) >= logSize {
				t.Fatalf("entry %d points at %d past %d", i, e.pos, logSize)
			}
			if i > 0 && (e.rel <= idx[i-1].rel || e.pos <= idx[i-1].pos) {
				t.Fatalf("entry %d does not increase", i)
			}
		}
		if !bytes.Equal(encodeOffsetIndex(idx), b) {
			t.Fatal("re-encoding differs")
		}
		// Lookups return an indexed position at or before the target.
		for _, e := range idx {
			if got := lookupOffset(idx, e.rel); got != e.pos {
				t.Fatalf("lookup %d = %d, want %d", e.rel, got, e.pos)
			}
		}
	})
}

func FuzzTimeIndex(f *testing.F) {
	f.Add(encodeTimeIndex([]timeEntry{{10, 0}, {20, 5}}), uint32(5), int64(15))
	f.Add([]byte{1, 2, 3}, uint32(0), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, maxRel uint32, ts int64) {
		idx, err := decodeTimeIndex(b, maxRel)
		if err != nil {
			return
		}
		for i, e := range idx {
			if e.rel > maxRel || (i > 0 && (e.ts <= idx[i-1].ts || e.rel <= idx[i-1].rel)) {
				t.Fatalf("entry %d breaks the invariants: %+v", i, e)
			}
		}
		if !bytes.Equal(encodeTimeIndex(idx), b) {
			t.Fatal("re-encoding differs")
		}
		rel, ok := lookupTime(idx, ts)
		if ok {
			// The entry found is older than ts and the next is not.
			i := 0
			for idx[i].rel != rel {
				i++
			}
			if idx[i].ts >= ts || (i+1 < len(idx) && idx[i+1].ts < ts) {
				t.Fatalf("lookup %d found entry %d of %+v", ts, i, idx)
			}
		} else if len(idx) > 0 && idx[0].ts < ts {
			t.Fatalf("lookup %d found nothing in %+v", ts, idx)
		}
	})
}

func FuzzCheckpoints(f *testing.F) {
	f.Add(encodeEpochs([]epochEntry{{0, 0}, {3, 17}}))
	f.Add([]byte("0\n1\n5 100\n"))
	f.Add(encodeLogStart(42))
	f.Add(encodeProducers(map[int64]*producerState{7: {epoch: 1, batches: []producerBatch{{0, 4, 10, 14}}}}))
	f.Add(encodeProducers(map[int64]*producerState{7: {epoch: 1, txnOpen: true, txnFirst: 12}}))
	f.Add(producerSnapshotV1(7, 1, producerBatch{0, 4, 10, 14}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if es, err := decodeEpochs(b); err == nil {
			again, err := decodeEpochs(encodeEpochs(es))
			if err != nil {
				t.Fatalf("re-decoding epochs: %v", err)
			}
			if diff := cmp.Diff(es, again, cmp.AllowUnexported(epochEntry{})); diff != "" {
				t.Fatal(diff)
			}
		}
		if o, err := decodeLogStart(b); err == nil {
			if o2, err := decodeLogStart(encodeLogStart(o)); err != nil || o2 != o {
				t.Fatalf("log start %d round trip: %d, %v", o, o2, err)
			}
		}
		if m, err := decodeProducers(b); err == nil {
			// NB: a valid snapshot need not re-encode to the same bytes:
			// an older version is written again as the current one, and a
			// negative txnFirst other than -1, or a producer id listed
			// twice, says the same as its canonical form. What must hold
			// is that the re-encoding is canonical (stable) and says the
			// same.
			enc := encodeProducers(m)
			again, err := decodeProducers(enc)
			if err != nil {
				t.Fatalf("re-decoding a producer snapshot: %v", err)
			}
			if diff := cmp.Diff(m, again, cmp.AllowUnexported(producerState{}, producerBatch{})); diff != "" {
				t.Fatalf("producer snapshot changed through re-encoding:\n%s", diff)
			}
			if !bytes.Equal(encodeProducers(again), enc) {
				t.Fatal("producer snapshot encoding is not stable")
			}
			if v := binary.BigEndian.Uint16(enc); v != snapshotVersion {
				t.Fatalf("re-encoded as version %d", v)
			}
			for id, p := range m {
				if len(p.batches) > maxProducerBatches {
					t.Fatalf("producer %d has %d batches", id, len(p.batches))
				}
			}
		}
	})
}

// FuzzSegmentRecovery opens a log whose only segment holds arbitrary bytes.
// Open must succeed and keep a prefix of whole valid batches with
// contiguous offsets; everything it serves reads back as valid batches; a
// second open finds the same log; and appending works.
func FuzzSegmentRecovery(f *testing.F) {
	var valid []byte
	for i := range 3 {
		b := simpleBatch(f, 1+i, int64(i))
		batch.SetBaseOffset(b, int64(i*(i+1)/2)) // 0, 1, 3: batch i holds i+1 records
		valid = append(valid, b...)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-5])
	damaged := append([]byte(nil), valid...)
	damaged[80] ^= 4
	f.Add(damaged)
	f.Add([]byte("not a batch at all, but long enough to hold a header......."))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		if err := fs.MkdirAll("/p", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeFileDurable(fs, "/p/"+segmentName(0, logSuffix), data); err != nil {
			t.Fatal(err)
		}
		opts := Options{FS: fs, Sync: SyncNever, Logger: quietLogger(), Config: Config{IndexIntervalBytes: 64}}
		l, err := Open("/p", opts)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		kept := readAllBatches(t, l)
		next := int64(0)
		size := 0
		for _, b := range kept {
			h, err := batch.Validate(b)
			if err != nil {
				t.Fatalf("served an invalid batch: %v", err)
			}
			if h.BaseOffset != next {
				t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
			}
			next = h.LastOffset() + 1
			size += len(b)
		}
		if Offset(next) != l.LogEndOffset() || !bytes.Equal(bytes.Join(kept, nil), data[:size]) {
			t.Fatalf("kept %d bytes up to offset %d, log end %d", size, next, l.LogEndOffset())
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = Open("/p", opts)
		if err != nil {
			t.Fatalf("second open: %v", err)
		}
		defer l.Close()
		if l.LogEndOffset() != Offset(next) {
			t.Fatalf("second open: log end %d, want %d", l.LogEndOffset(), next)
		}
		// Appends continue at the newest epoch the log knows: without a
		// checkpoint it learns epochs from the batches, and a leader never
		// appends below its epoch.
		epoch := Epoch(0)
		if e, _, ok := l.EndOffsetForEpoch(math.MaxInt32); ok {
			epoch = e
		}
		res, err := l.Append(context.Background(), simpleBatch(t, 1, 5), epoch)
		if err != nil || res.BaseOffset != Offset(next) {
			t.Fatalf("append after recovery: %+v, %v", res, err)
		}
	})
}

// readAllBatches returns every batch the log serves, one by one.
func readAllBatches(t *testing.T, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	for off := l.LogStartOffset(); off < l.HighWatermark(); {
		b, err := l.Read(off, 1)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		if len(b) == 0 {
			break
		}
		one, _, err := batch.Next(b)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := batch.ParseHeader(one)
		out = append(out, one)
		off = Offset(h.LastOffset() + 1)
	}
	return out
}

// producerSnapshotV1 is a version 1 producer snapshot (before transactions:
// no txnFirst) of one producer.
func producerSnapshotV1(id int64, epoch int16, bs ...producerBatch) []byte {
	b := binary.BigEndian.AppendUint16(nil, 1)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(id))
	b = binary.BigEndian.AppendUint16(b, uint16(epoch))
	b = append(b, byte(len(bs)))
	for _, e := range bs {
		b = binary.BigEndian.AppendUint32(b, uint32(e.firstSeq))
		b = binary.BigEndian.AppendUint32(b, uint32(e.lastSeq))
		b = binary.BigEndian.AppendUint64(b, uint64(e.base))
		b = binary.BigEndian.AppendUint64(b, uint64(e.last))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}
