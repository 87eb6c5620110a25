package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// modelRec is a record as the model remembers it.
type modelRec struct {
	key, value string
	null       bool // tombstone
	ts         int64
}

// model is the trivial in-memory log the real one is compared with.
type model struct {
	// decoded caches the records of batches already checked, by base offset
	// and CRC, so each full check decodes only new batches.
	decoded map[[2]int64][]batch.Record
	recs    map[Offset]modelRec
	start   Offset
	end     Offset
}

// TestModel applies random appends, reads, restarts, crashes, retention,
// DeleteRecords and compaction to the real log and to a map, and checks
// after every step that the log holds exactly what the model allows: every
// record it returns is the model's record at that offset, and every model
// record at or past the log start is present unless compaction may have
// removed it (a later record with the same key exists, or it is an expired
// tombstone).
func TestModel(t *testing.T) {
	seeds, steps := 6, 150
	if testing.Short() {
		seeds, steps = 3, 100
	}
	base := uint64(time.Now().UnixNano())
	if s := os.Getenv("WEIR_MODEL_SEED"); s != "" { // replay a logged seed
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		base, seeds = v, 1
	}
	for i := range seeds {
		seed := base + uint64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d", seed)
			runModel(t, seed, steps)
		})
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	fs := vfs.NewCrashableMem()
	clock := &testClock{ms: 1_000_000}
	cfg := Config{
		SegmentBytes:       int64(200 + rng.IntN(800)),
		IndexIntervalBytes: int32(rng.IntN(300)),
		RetentionMS:        -1,
		RetentionBytes:     -1,
		DeleteRetentionMS:  int64(1 + rng.IntN(5000)),
	}
	switch rng.IntN(3) {
	case 1:
		cfg.Cleanup = Compact
	case 2:
		cfg.Cleanup = CompactDelete
	}
	if cfg.Cleanup != Compact && rng.IntN(2) == 0 {
		cfg.RetentionMS = int64(2000 + rng.IntN(20000))
	}
	if cfg.Cleanup != Compact && rng.IntN(2) == 0 {
		cfg.RetentionBytes = int64(500 + rng.IntN(3000))
	}
	sync := SyncGroupCommit
	if rng.IntN(3) == 0 {
		sync = SyncNever
	}
	opts := Options{FS: fs, Now: clock.Now, Sync: sync, Config: cfg, Logger: quietLogger(), CleanerBytesPerSecond: -1, CleanerBufferBytes: 256}
	t.Logf("config %+v sync %v", cfg, sync)
	open := func() *Log {
		t.Helper()
		opts.FS = fs
		l, err := Open("/p", opts)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return l
	}
	l := open()
	defer func() { l.Close() }()
	m := &model{recs: map[Offset]modelRec{}, decoded: map[[2]int64][]batch.Record{}}
	compacts := cfg.Cleanup.compacts()
	// durableEnd is what a crash must keep under SyncNever: everything below
	// the active segment's base (rolled segments are fsynced) or the end at
	// the last clean open/close.
	durableEnd := Offset(0)
	// lz4 is rarer than the others: each lz4 decode clears a 4 MiB block
	// buffer, which the race detector makes slow.
	codecsList := []batch.Codec{batch.CodecNone, batch.CodecNone, batch.CodecNone, batch.CodecGzip, batch.CodecGzip, batch.CodecSnappy,
		batch.CodecSnappy, batch.CodecZstd, batch.CodecZstd, batch.CodecNone, batch.CodecNone, batch.CodecLZ4}

	for step := range steps {
		op := rng.IntN(100)
		switch {
		case op < 55: // append
			n := 1 + rng.IntN(4)
			spec := batchSpec{codec: codecsList[rng.IntN(len(codecsList))]}
			var recs []modelRec
			for range n {
				r := modelRec{key: fmt.Sprintf("k%d", rng.IntN(8)), value: fmt.Sprintf("v%d", rng.IntN(1000)), ts: clock.ms}
				if compacts && rng.IntN(8) == 0 {
					r.null, r.value = true, ""
				}
				var v []byte
				if !r.null {
					v = []byte(r.value)
				}
				spec.recs = append(spec.recs, kv{key: []byte(r.key), value: v, ts: r.ts})
				recs = append(recs, r)
			}
			res, err := l.Append(context.Background(), buildBatch(t, spec), 0)
			if err != nil {
				t.Fatalf("step %d: append: %v", step, err)
			}
			if res.BaseOffset != m.end {
				t.Fatalf("step %d: append at %d, model end %d", step, res.BaseOffset, m.end)
			}
			for i, r := range recs {
				m.recs[m.end+Offset(i)] = r
			}
			m.end += Offset(n)
			l.mu.RLock()
			durableEnd = max(durableEnd, l.segs[len(l.segs)-1].base)
			l.mu.RUnlock()
		case op < 65: // read at a random offset
			if m.end > l.LogStartOffset() {
				from := l.LogStartOffset() + Offset(rng.Int64N(int64(m.end-l.LogStartOffset())))
				b, err := l.Read(from, rng.IntN(400))
				if err != nil {
					t.Fatalf("step %d: read %d: %v", step, from, err)
				}
				if len(b) == 0 && !compacts {
					t.Fatalf("step %d: read %d below hw %d returned nothing", step, from, l.HighWatermark())
				}
				checkRead(t, m, b, from)
			}
		case op < 72:
			clock.ms += int64(rng.IntN(3000))
		case op < 80:
			if err := l.Clean(context.Background()); err != nil {
				t.Fatalf("step %d: clean: %v", step, err)
			}
		case op < 83:
			if hw := l.HighWatermark(); hw > 0 {
				to := Offset(rng.Int64N(int64(hw) + 1))
				if _, err := l.DeleteRecordsBefore(to); err != nil {
					t.Fatalf("step %d: delete records before %d: %v", step, to, err)
				}
			}
		case op < 90: // clean restart
			if err := l.Close(); err != nil {
				t.Fatalf("step %d: close: %v", step, err)
			}
			l = open()
			durableEnd = m.end
		default: // crash, keeping random parts of unsynced tails
			old := l
			fs = crashKeepingTails(t, fs, rng)
			old.Close()
			l = open()
			leo := l.LogEndOffset()
			if leo < durableEnd || leo > m.end {
				t.Fatalf("step %d: after crash leo %d, durable end %d, model end %d", step, leo, durableEnd, m.end)
			}
			if sync == SyncGroupCommit && leo != m.end {
				t.Fatalf("step %d: group commit lost acknowledged records: leo %d, model end %d", step, leo, m.end)
			}
			for o := leo; o < m.end; o++ {
				delete(m.recs, o)
			}
			m.end = leo
			durableEnd = leo
		}
		checkAll(t, step, l, m, compacts, clock.ms-cfg.DeleteRetentionMS)
	}
}

// checkRead checks that every record in b at or past from is the model's.
func checkRead(t *testing.T, m *model, b []byte, from Offset) {
	t.Helper()
	for len(b) > 0 {
		one, rest, err := batch.Next(b)
		if err != nil {
			t.Fatalf("read bytes: %v", err)
		}
		h, _ := batch.ParseHeader(one)
		recs := m.records(t, one)
		for _, r := range recs {
			off := Offset(h.BaseOffset) + Offset(r.OffsetDelta)
			if off < from {
				continue // the batch holding from starts before it
			}
			want, ok := m.recs[off]
			if !ok {
				t.Fatalf("log has offset %d the model lacks", off)
			}
			if string(r.Key) != want.key || string(r.Value) != want.value || (r.Value == nil) != want.null {
				t.Fatalf("offset %d: log %q=%q, model %q=%q (null %t)", off, r.Key, r.Value, want.key, want.value, want.null)
			}
		}
		b = rest
	}
}

// checkAll reads the whole log and compares it with the model.
func checkAll(t *testing.T, step int, l *Log, m *model, compacts bool, horizon int64) {
	t.Helper()
	start, hw, leo := l.LogStartOffset(), l.HighWatermark(), l.LogEndOffset()
	if start < m.start || start > hw || hw > leo || leo != m.end {
		t.Fatalf("step %d: bounds start %d (model %d) hw %d leo %d (model %d)", step, start, m.start, hw, leo, m.end)
	}
	if hw != leo {
		t.Fatalf("step %d: hw %d != leo %d with no append in flight", step, hw, leo)
	}
	for o := m.start; o < start; o++ {
		delete(m.recs, o)
	}
	m.start = start
	present := map[Offset]bool{}
	for off := start; off < hw; {
		b, err := l.Read(off, 1<<16)
		if err != nil {
			t.Fatalf("step %d: read %d: %v", step, off, err)
		}
		if len(b) == 0 {
			break
		}
		checkRead(t, m, b, off)
		for len(b) > 0 {
			one, rest, _ := batch.Next(b)
			h, _ := batch.ParseHeader(one)
			for _, r := range m.records(t, one) {
				present[Offset(h.BaseOffset)+Offset(r.OffsetDelta)] = true
			}
			off = Offset(h.LastOffset() + 1)
			b = rest
		}
	}
	latest := map[string]Offset{}
	for o := start; o < m.end; o++ {
		if r, ok := m.recs[o]; ok {
			latest[r.key] = o
		}
	}
	for o := start; o < m.end; o++ {
		r, ok := m.recs[o]
		if !ok || present[o] {
			continue
		}
		removable := compacts && (latest[r.key] != o || (r.null && r.ts <= horizon))
		if !removable {
			t.Fatalf("step %d: offset %d (%s=%s) missing from the log [%d, %d)", step, o, r.key, r.value, start, hw)
		}
		delete(m.recs, o) // gone for good
	}
}

// records decodes a batch, or returns its records decoded before.
func (m *model) records(t *testing.T, b []byte) []batch.Record {
	t.Helper()
	h, err := batch.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	k := [2]int64{h.BaseOffset, int64(h.CRC)}
	if recs, ok := m.decoded[k]; ok {
		return recs
	}
	recs, err := batch.Records(b, 1<<20)
	if err != nil {
		t.Fatalf("read batch %d: %v", h.BaseOffset, err)
	}
	for i := range recs { // they alias b, which the caller reuses
		recs[i].Key = append([]byte(nil), recs[i].Key...)
		if recs[i].Value != nil {
			recs[i].Value = append([]byte{}, recs[i].Value...)
		}
	}
	m.decoded[k] = recs
	return recs
}
