package storage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// testClock is a settable clock.
type testClock struct{ ms int64 }

func (c *testClock) Now() time.Time { return time.UnixMilli(c.ms) }

// kv is one record for a test batch; a nil value is a tombstone.
type kv struct {
	key, value []byte
	ts         int64
}

// batchSpec describes a test batch.
type batchSpec struct {
	recs   []kv
	pid    int64
	pepoch int16
	seq    int32
	codec  batch.Codec
	txn    bool // transactional
}

// buildBatch encodes a batch as a producer sends it (base offset 0).
func buildBatch(t testing.TB, s batchSpec) []byte {
	t.Helper()
	if len(s.recs) == 0 {
		t.Fatal("buildBatch: no records")
	}
	first := s.recs[0].ts
	maxTs := first
	recs := make([]batch.Record, len(s.recs))
	for i, r := range s.recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), TimestampDelta: r.ts - first, Key: r.key, Value: r.value}
		maxTs = max(maxTs, r.ts)
	}
	h := batch.Header{FirstTimestamp: first, MaxTimestamp: maxTs, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	if s.pid > 0 {
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = s.pid, s.pepoch, s.seq
	}
	if s.txn {
		h.Attributes |= 0x10
	}
	b, err := batch.Build(h, recs, s.codec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simpleBatch builds an n-record batch with keys k<i> and values v<i>,
// timestamps ts.
func simpleBatch(t testing.TB, n int, ts int64) []byte {
	t.Helper()
	recs := make([]kv, n)
	for i := range recs {
		recs[i] = kv{key: fmt.Appendf(nil, "k%d", i), value: fmt.Appendf(nil, "v%d", i), ts: ts}
	}
	return buildBatch(t, batchSpec{recs: recs})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openTest opens a log on fs in dir "/p" and closes it at cleanup.
func openTest(t testing.TB, fs vfs.FS, opts Options) *Log {
	t.Helper()
	opts.FS = fs
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	l, err := Open("/p", opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	res, err := l.Append(context.Background(), b, 0)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// batchesOf splits raw read bytes into headers.
func batchesOf(t testing.TB, b []byte) []batch.Header {
	t.Helper()
	var hs []batch.Header
	for len(b) > 0 {
		one, rest, err := batch.Next(b)
		if err != nil {
			t.Fatalf("split read bytes: %v", err)
		}
		h, err := batch.Validate(one)
		if err != nil {
			t.Fatalf("read returned an invalid batch: %v", err)
		}
		hs = append(hs, h)
		b = rest
	}
	return hs
}
