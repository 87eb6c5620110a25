package storage

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// ddEnv is the state of one datadriven file.
type ddEnv struct {
	fs    *vfs.MemFS
	clock *testClock
	opts  Options
	l     *Log
}

// TestDataDriven runs the scenario files in testdata/log. Commands:
//
//	open [segment-bytes=N] [index-interval=N] [cleanup=delete|compact|compact,delete]
//	     [retention-ms=N] [retention-bytes=N] [delete-retention-ms=N] [max-message-bytes=N]
//	     [segment-ms=N] [dirty-ratio=F]
//	append [ts=N] [pid=N pepoch=N seq=N] [codec=none|gzip|snappy|lz4|zstd] [epoch=N]
//	  key=value lines (value "~" is a null value, a tombstone; key "~" a null key)
//	append-raw hex=... | corrupt=crc|length|count|truncate   (a bad batch)
//	read from=N [max=N]       batches returned, one per line
//	dump                      every record readable, one per line
//	bounds                    log start, high watermark, log end
//	append ... txn            a transactional batch (with pid=N pepoch=N seq=N)
//	marker pid=N pepoch=N [commit]   a COMMIT (or ABORT) marker
//	txn-state                 last stable offset, open and aborted transactions
//	segments                  the segment files and their extents
//	files                     the directory listing
//	clean                     one Clean pass
//	advance ms=N              moves the clock forward
//	delete-records before=N
//	offset-for-ts ts=N
//	max-timestamp
//	epoch-start epoch=N
//	close / reopen / crash    (crash drops what was not synced, then reopens)
//	kill                      a crash that leaves the log down
//	truncate-file name=F size=N | flip-byte name=F at=N
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/log", func(t *testing.T, path string) {
		env := &ddEnv{fs: vfs.NewCrashableMem(), clock: &testClock{ms: 1_000_000}}
		t.Cleanup(func() {
			if env.l != nil {
				env.l.Close()
			}
		})
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return env.run(t, td)
		})
	})
}

func (e *ddEnv) reopen(t *testing.T) string {
	if e.l != nil {
		e.l.Close()
		e.l = nil
	}
	l, err := Open("/p", e.opts)
	if err != nil {
		return fmt.Sprintf("open error: %v", err)
	}
	e.l = l
	return e.bounds()
}

func (e *ddEnv) bounds() string {
	return fmt.Sprintf("start=%d hw=%d leo=%d", e.l.LogStartOffset(), e.l.HighWatermark(), e.l.LogEndOffset())
}

func argInt(t *testing.T, td *datadriven.TestData, key string, def int64) int64 {
	t.Helper()
	a, ok := td.Arg(key)
	if !ok {
		return def
	}
	v, err := strconv.ParseInt(a.Vals[0], 10, 64)
	if err != nil {
		td.Fatalf(t, "%s: %v", key, err)
	}
	return v
}

var codecs = map[string]batch.Codec{"none": batch.CodecNone, "gzip": batch.CodecGzip, "snappy": batch.CodecSnappy, "lz4": batch.CodecLZ4, "zstd": batch.CodecZstd}

func (e *ddEnv) run(t *testing.T, td *datadriven.TestData) string {
	switch td.Cmd {
	case "open":
		cfg := Config{
			SegmentBytes:       argInt(t, td, "segment-bytes", 0),
			IndexIntervalBytes: int32(argInt(t, td, "index-interval", 0)),
			RetentionMS:        argInt(t, td, "retention-ms", 0),
			RetentionBytes:     argInt(t, td, "retention-bytes", 0),
			DeleteRetentionMS:  argInt(t, td, "delete-retention-ms", 0),
			MaxMessageBytes:    int32(argInt(t, td, "max-message-bytes", 0)),
			SegmentMS:          argInt(t, td, "segment-ms", 0),
		}
		if a, ok := td.Arg("dirty-ratio"); ok {
			v, err := strconv.ParseFloat(a.Vals[0], 64)
			if err != nil {
				td.Fatalf(t, "dirty-ratio: %v", err)
			}
			cfg.MinCleanableDirtyRatio = v
		}
		if a, ok := td.Arg("cleanup"); ok {
			switch strings.Join(a.Vals, ",") {
			case "compact":
				cfg.Cleanup = Compact
			case "compact,delete":
				cfg.Cleanup = CompactDelete
			}
		}
		e.opts = Options{FS: e.fs, Now: e.clock.Now, Config: cfg, Logger: quietLogger(), CleanerBytesPerSecond: -1}
		return e.reopen(t)
	case "append":
		spec := batchSpec{pid: argInt(t, td, "pid", 0), pepoch: int16(argInt(t, td, "pepoch", 0)), seq: int32(argInt(t, td, "seq", 0)), txn: td.HasArg("txn")}
		if a, ok := td.Arg("codec"); ok {
			spec.codec = codecs[a.Vals[0]]
		}
		ts := argInt(t, td, "ts", e.clock.ms)
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			k, v, _ := strings.Cut(line, "=")
			r := kv{key: []byte(k), value: []byte(v), ts: ts}
			if k == "~" {
				r.key = nil
			}
			if v == "~" {
				r.value = nil
			}
			spec.recs = append(spec.recs, r)
		}
		var res AppendResult
		var err error
		if td.HasArg("in-txn") {
			// Not verified with a coordinator: only into the
			// producer's transaction open here at this epoch.
			res, err = e.l.AppendNoWaitInTxn(buildBatch(t, spec), Epoch(argInt(t, td, "epoch", 0)), spec.pid, spec.pepoch)
			if err == nil {
				err = e.l.WaitDurable(context.Background(), res.LastOffset+1)
			}
		} else {
			res, err = e.l.Append(context.Background(), buildBatch(t, spec), Epoch(argInt(t, td, "epoch", 0)))
		}
		if err != nil {
			return "error: " + classify(err)
		}
		return fmt.Sprintf("offsets [%d, %d] dup=%t", res.BaseOffset, res.LastOffset, res.Duplicate)
	case "append-trusted":
		// A broker-written batch (a transactional offset commit): no
		// sequence number, appended with AppendTrusted.
		spec := batchSpec{pid: argInt(t, td, "pid", 0), pepoch: int16(argInt(t, td, "pepoch", 0)), seq: -1, txn: td.HasArg("txn")}
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			k, v, _ := strings.Cut(line, "=")
			spec.recs = append(spec.recs, kv{key: []byte(k), value: []byte(v), ts: e.clock.ms})
		}
		if err := e.l.AppendTrusted(context.Background(), buildBatch(t, spec)); err != nil {
			return "error: " + classify(err)
		}
		return "ok\n" + e.bounds()
	case "append-raw":
		b := simpleBatch(t, 2, e.clock.ms)
		a, _ := td.Arg("corrupt")
		switch a.Vals[0] {
		case "crc":
			b[len(b)-1] ^= 1
		case "length":
			b[11] += 50 // batch length points past the bytes
		case "count":
			b[60]++ // record count lies
		case "truncate":
			b = b[:len(b)-3]
		case "negative-length":
			b[8] = 0xff
		}
		_, err := e.l.Append(context.Background(), b, 0)
		if err == nil {
			return "appended (unexpected)"
		}
		return "error: " + classify(err) + "\n" + e.bounds()
	case "read":
		b, err := e.l.Read(Offset(argInt(t, td, "from", 0)), int(argInt(t, td, "max", 1<<20)))
		if err != nil {
			return "error: " + classify(err)
		}
		var sb strings.Builder
		for _, h := range batchesOf(t, b) {
			fmt.Fprintf(&sb, "batch [%d, %d] records=%d epoch=%d\n", h.BaseOffset, h.LastOffset(), h.NumRecords, h.PartitionLeaderEpoch)
		}
		if sb.Len() == 0 {
			return "empty"
		}
		return sb.String()
	case "dump":
		return e.dump(t)
	case "bounds":
		return e.bounds()
	case "marker":
		res, err := e.l.AppendMarker(context.Background(), Marker{
			ProducerID: argInt(t, td, "pid", 0), Epoch: int16(argInt(t, td, "pepoch", 0)), Commit: td.HasArg("commit"),
			TransactionVersion: int8(argInt(t, td, "tv", 0)),
		})
		if err != nil {
			return "error: " + classify(err)
		}
		if res.Duplicate {
			return "duplicate: nothing written"
		}
		return fmt.Sprintf("marker at %d", res.BaseOffset)
	case "txn-state":
		return e.txnState()
	case "segments":
		var sb strings.Builder
		e.l.mu.RLock()
		for _, s := range e.l.segs {
			fmt.Fprintf(&sb, "%s size=%d offsets=[%d, %d) maxts=%d\n", segmentName(s.base, logSuffix), s.size, s.base, s.next, s.maxTs)
		}
		e.l.mu.RUnlock()
		return sb.String()
	case "files":
		names, err := listDir(e.fs, "/p")
		if err != nil {
			return err.Error()
		}
		return strings.Join(names, "\n")
	case "clean":
		if err := e.l.Clean(context.Background()); err != nil {
			return "error: " + err.Error()
		}
		return e.bounds()
	case "advance":
		e.clock.ms += argInt(t, td, "ms", 0)
		return fmt.Sprintf("now=%d", e.clock.ms)
	case "delete-records":
		off, err := e.l.DeleteRecordsBefore(Offset(argInt(t, td, "before", 0)))
		if err != nil {
			return "error: " + classify(err)
		}
		return fmt.Sprintf("start=%d", off)
	case "offset-for-ts":
		off, ts, ok := e.l.OffsetForTimestamp(argInt(t, td, "ts", 0))
		if !ok {
			return "none"
		}
		return fmt.Sprintf("offset=%d ts=%d", off, ts)
	case "max-timestamp":
		off, ts := e.l.MaxTimestamp()
		return fmt.Sprintf("offset=%d ts=%d", off, ts)
	case "epoch-start":
		off, ok := e.l.LeaderEpochStart(Epoch(argInt(t, td, "epoch", 0)))
		if !ok {
			return "none"
		}
		return fmt.Sprintf("start=%d", off)
	case "close":
		if err := e.l.Close(); err != nil {
			return "error: " + err.Error()
		}
		e.l = nil
		return "ok"
	case "reopen":
		return e.reopen(t)
	case "crash":
		// The old log keeps running on the old filesystem; only what was
		// durable reaches the new one.
		old := e.l
		e.l = nil
		e.fs = e.fs.CrashClone(vfs.CrashCloneCfg{})
		e.opts.FS = e.fs
		out := e.reopen(t)
		old.Close()
		return out
	case "kill":
		// A power loss with the log left down: only what was durable is on
		// the new filesystem, and no clean-shutdown marker.
		old := e.l
		e.l = nil
		e.fs = e.fs.CrashClone(vfs.CrashCloneCfg{})
		e.opts.FS = e.fs
		old.Close()
		return "ok"
	case "truncate-file", "flip-byte", "append-garbage":
		a, _ := td.Arg("name")
		name := "/p/" + a.Vals[0]
		data, err := readFile(e.fs, name)
		if err != nil {
			return err.Error()
		}
		switch td.Cmd {
		case "truncate-file":
			data = data[:argInt(t, td, "size", 0)]
		case "append-garbage":
			data = append(data, "garbage that is not a batch, long enough to hold a header.."...)
		default:
			data[argInt(t, td, "at", 0)] ^= 0x10
		}
		if err := writeFileDurable(e.fs, name, data); err != nil {
			return err.Error()
		}
		return "ok"
	}
	td.Fatalf(t, "unknown command %q", td.Cmd)
	return ""
}

// classify names an error by its helper, so scenario files do not depend on
// message text.
func classify(err error) string {
	switch {
	case IsOffsetOutOfRange(err):
		return "offset out of range"
	case IsOutOfOrderSequence(err):
		return "out of order sequence"
	case IsInvalidProducerEpoch(err):
		return "invalid producer epoch"
	case IsTxnNotOpen(err):
		return "transaction not open"
	case IsMessageTooLarge(err):
		return "message too large"
	case IsCorrupt(err):
		return "corrupt"
	case IsDiskFull(err):
		return "disk full"
	case IsStorage(err):
		return "storage"
	}
	return err.Error()
}

// dump prints every record readable from the log start to the high
// watermark.
func (e *ddEnv) dump(t *testing.T) string {
	var sb strings.Builder
	for off := e.l.LogStartOffset(); off < e.l.HighWatermark(); {
		b, err := e.l.Read(off, 1<<20)
		if err != nil {
			return fmt.Sprintf("read %d: %v", off, err)
		}
		if len(b) == 0 {
			break
		}
		for len(b) > 0 {
			one, rest, err := batch.Next(b)
			if err != nil {
				return err.Error()
			}
			h, _ := batch.ParseHeader(one)
			recs, err := batch.Records(one, 1<<20)
			if err != nil {
				return err.Error()
			}
			for _, r := range recs {
				o := h.BaseOffset + int64(r.OffsetDelta)
				if Offset(o) < off {
					continue
				}
				if h.Control() {
					kind, _, _ := controlKind(one)
					fmt.Fprintf(&sb, "%d marker pid=%d type=%d\n", o, h.ProducerID, kind)
					continue
				}
				v := string(r.Value)
				if r.Value == nil {
					v = "~"
				}
				fmt.Fprintf(&sb, "%d %s=%s\n", o, r.Key, v)
			}
			off = Offset(h.LastOffset() + 1)
			b = rest
		}
	}
	if sb.Len() == 0 {
		return "empty"
	}
	return sb.String()
}

// txnState renders the log's transaction state: the last stable offset,
// the open transactions and the aborted ones over the whole log.
func (e *ddEnv) txnState() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "lso=%d\n", e.l.LastStableOffset())
	open := e.l.OpenTransactions()
	for _, pid := range sortedKeys(open) {
		fmt.Fprintf(&sb, "open pid=%d first=%d\n", pid, open[pid])
	}
	for _, a := range e.l.AbortedTransactions(0, e.l.LogEndOffset()) {
		fmt.Fprintf(&sb, "aborted pid=%d first=%d last=%d lso=%d\n", a.ProducerID, a.FirstOffset, a.LastOffset, a.LastStableOffset)
	}
	return sb.String()
}

func sortedKeys(m map[int64]Offset) []int64 {
	return slices.Sorted(maps.Keys(m))
}
