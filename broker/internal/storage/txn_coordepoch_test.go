package storage

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A marker from a coordinator of an older coordinator epoch (one that lost
// its __transaction_state partition, whose write lands late) is refused
// with ErrCoordinatorFenced once a marker of a newer one was written for
// the producer: accepted, it would end the producer's next transaction (of
// the same producer epoch) and move the last stable offset. A marker of the
// same coordinator epoch (a retry) and the broker's own (-1) are accepted.
func TestStaleCoordinatorMarkerRefused(t *testing.T) {
	l := openTest(t, vfs.NewMem(), Options{})
	ctx := context.Background()
	txn := func(seq int32) {
		t.Helper()
		mustAppend(t, l, buildBatch(t, batchSpec{recs: []kv{{key: []byte("k"), value: []byte("v"), ts: 1}}, pid: 7, pepoch: 0, seq: seq, txn: true}))
	}
	txn(0)
	if _, err := l.AppendMarker(ctx, Marker{ProducerID: 7, Epoch: 0, Commit: true, CoordinatorEpoch: 4}); err != nil {
		t.Fatal(err)
	}
	txn(1) // transaction 2, at offset 2
	lso, end := l.LastStableOffset(), l.LogEndOffset()
	if lso != 2 {
		t.Fatalf("last stable offset %d with transaction 2 open at 2", lso)
	}
	_, err := l.AppendMarker(ctx, Marker{ProducerID: 7, Epoch: 0, Commit: true, CoordinatorEpoch: 3})
	if !IsCoordinatorFenced(err) {
		t.Fatalf("a marker of coordinator epoch 3 after one of 4: err %v, want ErrCoordinatorFenced", err)
	}
	if got := l.LastStableOffset(); got != lso {
		t.Fatalf("the refused marker moved the last stable offset %d -> %d", lso, got)
	}
	if got := l.LogEndOffset(); got != end {
		t.Fatalf("the refused marker was written: log end %d -> %d", end, got)
	}
	if open := l.OpenTransactions(); open[7] != 2 {
		t.Fatalf("open transactions %v after the refused marker, want pid 7's at 2", open)
	}
	if _, err := l.AppendMarker(ctx, Marker{ProducerID: 7, Epoch: 0, Commit: false, CoordinatorEpoch: 4}); err != nil {
		t.Fatalf("a marker of the same coordinator epoch: %v", err)
	}
	txn(2)
	if _, err := l.AppendMarker(ctx, Marker{ProducerID: 7, Epoch: 0, Commit: false, CoordinatorEpoch: -1}); err != nil {
		t.Fatalf("the broker's own marker (coordinator epoch -1): %v", err)
	}
	if _, err := l.AppendMarker(ctx, Marker{ProducerID: 7, Epoch: 0, Commit: false, CoordinatorEpoch: 3}); !IsCoordinatorFenced(err) {
		t.Fatalf("after the broker's own marker, one of coordinator epoch 3: err %v, want ErrCoordinatorFenced (-1 must not lower the epoch)", err)
	}
	if _, err := l.AppendMarker(ctx, Marker{ProducerID: 8, Epoch: 0, Commit: false, CoordinatorEpoch: 0}); err != nil {
		t.Fatalf("a marker for another producer: %v", err)
	}
}

// The coordinator epoch of a producer's markers is rebuilt alike by a
// follower (AppendReplica), by the open-time scan of the segments, and
// from a producer snapshot: whichever comes to lead refuses the stale
// marker. With one batch per segment, the marker's epoch reaches the
// reopened log only through the snapshot written when its segment rolled.
func TestStaleCoordinatorMarkerRefusedAfterReplicationAndRecovery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		segBytes int64
	}{{"scan", 0}, {"snapshot", 100}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			opts := Options{FS: fs, Logger: quietLogger(), CleanerBytesPerSecond: -1, Sync: SyncNever, Config: Config{SegmentBytes: tc.segBytes}}
			leader, err := Open("/leader", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer leader.Close()
			follower, err := Open("/follower", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { follower.Close() }()
			txn := func(seq int32) {
				t.Helper()
				b := buildBatch(t, batchSpec{recs: []kv{{key: []byte("k"), value: []byte("v"), ts: 1}}, pid: 7, pepoch: 0, seq: seq, txn: true})
				if _, err := leader.Append(context.Background(), b, 1); err != nil {
					t.Fatal(err)
				}
			}
			txn(0)
			if _, err := leader.WriteMarker(Marker{ProducerID: 7, Epoch: 0, Commit: true, CoordinatorEpoch: 4}, 1); err != nil {
				t.Fatal(err)
			}
			txn(1)
			for follower.LogEndOffset() < leader.LogEndOffset() {
				b, err := leader.ReadReplica(follower.LogEndOffset(), 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := follower.AppendReplica(b); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := follower.WriteMarker(Marker{ProducerID: 7, Epoch: 0, Commit: true, CoordinatorEpoch: 3}, 1); !IsCoordinatorFenced(err) {
				t.Fatalf("follower: a marker of coordinator epoch 3 after one of 4: err %v, want ErrCoordinatorFenced", err)
			}
			if err := follower.Close(); err != nil {
				t.Fatal(err)
			}
			if follower, err = Open("/follower", opts); err != nil {
				t.Fatal(err)
			}
			if tc.segBytes > 0 {
				if _, err := fs.Stat("/follower/" + segmentName(2, snapshotSuffix)); err != nil {
					t.Fatalf("no producer snapshot at offset 2: %v", err)
				}
			}
			if _, err := follower.WriteMarker(Marker{ProducerID: 7, Epoch: 0, Commit: true, CoordinatorEpoch: 3}, 1); !IsCoordinatorFenced(err) {
				t.Fatalf("reopened: a marker of coordinator epoch 3 after one of 4: err %v, want ErrCoordinatorFenced", err)
			}
			if got := follower.OpenTransactions(); got[7] != 2 {
				t.Fatalf("reopened: open transactions %v, want pid 7's at 2", got)
			}
		})
	}
}

// A version 2 producer snapshot (before coordinator epochs) reads with no
// coordinator epoch (-1), and is written again as the current version
// holding the same state.
func TestProducerSnapshotV2(t *testing.T) {
	b := binary.BigEndian.AppendUint16(nil, 2)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint64(b, 7)
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, 1)
	for _, v := range []uint64{0<<32 | 4, 10, 14} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = binary.BigEndian.AppendUint64(b, 10) // txnFirst
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	m, err := decodeProducers(b)
	if err != nil {
		t.Fatal(err)
	}
	p := m[7]
	if p == nil || p.epoch != 3 || len(p.batches) != 1 || p.batches[0].lastSeq != 4 || p.batches[0].last != 14 || !p.txnOpen || p.txnFirst != 10 || p.coordEpoch != -1 {
		t.Fatalf("decoded %+v", p)
	}
	p.coordEpoch = 5
	again, err := decodeProducers(encodeProducers(m))
	if err != nil {
		t.Fatal(err)
	}
	if q := again[7]; q == nil || q.coordEpoch != 5 || q.txnFirst != 10 {
		t.Fatalf("re-decoded %+v", q)
	}
}
