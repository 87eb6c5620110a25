package topics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// MemLog is an in-memory Log for tests of the layers above storage. It
// validates and stores batches and serves reads, but keeps no producer
// state and no indexes. Its errors wrap kerr errors.
type MemLog struct {
	mu      sync.Mutex
	batches [][]byte // guarded by mu
	start   Offset   // guarded by mu; log start offset
	end     Offset   // guarded by mu; log end offset == high watermark
	changed chan struct{}
	cfg     LogConfig
	closed  bool
}

// OpenMemLog is an OpenLogFunc that ignores dir.
func OpenMemLog(_ string, cfg LogConfig) (Log, error) {
	return &MemLog{changed: make(chan struct{}), cfg: cfg}, nil
}

// Append implements Log.
func (l *MemLog) Append(_ context.Context, batches []byte, epoch Epoch) (AppendResult, error) {
	var parsed [][]byte
	for rest := batches; len(rest) > 0; {
		b, r, err := batch.Next(rest)
		if err != nil {
			return AppendResult{}, fmt.Errorf("topics: %v: %w", err, kerr.CorruptMessage)
		}
		if _, err := batch.ValidateProduced(b); err != nil {
			return AppendResult{}, fmt.Errorf("topics: %v: %w", err, kerr.CorruptMessage)
		}
		if l.cfg.MaxMessageBytes > 0 && len(b) > int(l.cfg.MaxMessageBytes) {
			return AppendResult{}, kerr.MessageTooLarge
		}
		parsed = append(parsed, append([]byte(nil), b...))
		rest = r
	}
	if len(parsed) == 0 {
		return AppendResult{}, fmt.Errorf("topics: empty produce: %w", kerr.CorruptMessage)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return AppendResult{}, kerr.NotLeaderForPartition
	}
	res := AppendResult{BaseOffset: l.end, LogAppendTime: -1}
	for _, b := range parsed {
		h, _ := batch.ParseHeader(b)
		batch.SetBaseOffset(b, int64(l.end))
		batch.SetPartitionLeaderEpoch(b, int32(epoch))
		if l.cfg.LogAppendTime {
			res.LogAppendTime = time.Now().UnixMilli()
			batch.SetMaxTimestampAndAppendTime(b, res.LogAppendTime)
		}
		l.end += Offset(h.LastOffsetDelta) + 1
		l.batches = append(l.batches, b)
	}
	res.LastOffset = l.end - 1
	res.LogStartOffset = l.start
	close(l.changed)
	l.changed = make(chan struct{})
	return res, nil
}

// AppendNoWait implements Log.
func (l *MemLog) AppendNoWait(batches []byte, epoch Epoch) (AppendResult, error) {
	return l.Append(context.Background(), batches, epoch)
}

// WaitDurable implements Log: memory is as durable as it gets.
func (l *MemLog) WaitDurable(context.Context, Offset) error { return nil }

// Read implements Log.
func (l *MemLog) Read(from Offset, maxBytes int) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from < l.start || from > l.end {
		return nil, kerr.OffsetOutOfRange
	}
	var out []byte
	for _, b := range l.batches {
		h, _ := batch.ParseHeader(b)
		if last := Offset(h.LastOffset()); last < from || last < l.start {
			continue
		}
		if len(out) > 0 && len(out)+len(b) > maxBytes {
			break
		}
		out = append(out, b...)
	}
	return out, nil
}

// LogStartOffset implements Log.
func (l *MemLog) LogStartOffset() Offset { l.mu.Lock(); defer l.mu.Unlock(); return l.start }

// HighWatermark implements Log.
func (l *MemLog) HighWatermark() Offset { l.mu.Lock(); defer l.mu.Unlock(); return l.end }

// LogEndOffset implements Log.
func (l *MemLog) LogEndOffset() Offset { return l.HighWatermark() }

// Changed implements Log.
func (l *MemLog) Changed() <-chan struct{} { l.mu.Lock(); defer l.mu.Unlock(); return l.changed }

// OffsetForTimestamp implements Log.
func (l *MemLog) OffsetForTimestamp(ts int64) (Offset, int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.batches {
		h, _ := batch.ParseHeader(b)
		if h.MaxTimestamp >= ts && Offset(h.LastOffset()) >= l.start {
			return max(Offset(h.BaseOffset), l.start), h.MaxTimestamp, true
		}
	}
	return 0, 0, false
}

// MaxTimestamp implements Log.
func (l *MemLog) MaxTimestamp() (Offset, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	off, ts := Offset(-1), int64(-1)
	for _, b := range l.batches {
		h, _ := batch.ParseHeader(b)
		if h.MaxTimestamp > ts {
			off, ts = Offset(h.LastOffset()), h.MaxTimestamp
		}
	}
	return off, ts
}

// DeleteRecordsBefore implements Log.
func (l *MemLog) DeleteRecordsBefore(off Offset) (Offset, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if off > l.end || off < 0 {
		return l.start, kerr.OffsetOutOfRange
	}
	if off > l.start {
		l.start = off
	}
	return l.start, nil
}

// Clean implements Log; it does nothing.
func (l *MemLog) Clean(context.Context) error { return nil }

// SetConfig implements Log.
func (l *MemLog) SetConfig(cfg LogConfig) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	return nil
}

// Close implements Log.
func (l *MemLog) Close() error { l.mu.Lock(); defer l.mu.Unlock(); l.closed = true; return nil }

// Remove implements Log.
func (l *MemLog) Remove() error { return l.Close() }
