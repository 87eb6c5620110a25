package topics

import (
	"context"

	"github.com/weir-dev/weir/broker/internal/base"
)

// Offset and Epoch are the broker's one offset type and one leader-epoch
// type (base.Offset, base.Epoch), and Marker its transaction marker
// (base.Marker), named here so that the Log interface reads on its own.
type (
	Offset = base.Offset
	Epoch  = base.Epoch
	Marker = base.Marker
)

// AppendResult is what an append reports.
type AppendResult struct {
	// BaseOffset and LastOffset are the offsets given to the first and last
	// record appended (or, for a duplicate, those of the original).
	BaseOffset, LastOffset Offset
	// LogAppendTime is the broker time written into the batches when the
	// topic uses LogAppendTime, else -1.
	LogAppendTime int64
	// LogStartOffset is the log start offset after the append.
	LogStartOffset Offset
	// Duplicate reports an idempotent retry that was not written again.
	Duplicate bool
}

// Log is what the broker needs of a partition log.
type Log interface {
	// Append validates and appends concatenated batches and returns when they
	// are durable under the log's sync policy.
	Append(ctx context.Context, batches []byte, leaderEpoch Epoch) (AppendResult, error)
	// AppendNoWait is Append without the wait for durability: it returns
	// once the batches are written, in order with other appends. Pair it
	// with WaitDurable(ctx, LastOffset+1) before acknowledging.
	AppendNoWait(batches []byte, leaderEpoch Epoch) (AppendResult, error)
	// WaitDurable blocks until every offset below end is durable under the
	// log's sync policy (at once under policies that do not fsync per
	// append), or ctx ends.
	WaitDurable(ctx context.Context, end Offset) error
	// Read returns raw batches starting at the batch holding from: at least
	// one whole batch if any exists at or after from, then more up to
	// maxBytes.
	Read(from Offset, maxBytes int) ([]byte, error)
	LogStartOffset() Offset
	HighWatermark() Offset
	LogEndOffset() Offset
	// Changed returns a channel closed when the high watermark next advances.
	Changed() <-chan struct{}
	// OffsetForTimestamp returns the first offset whose timestamp is >= ts.
	OffsetForTimestamp(ts int64) (Offset, int64, bool)
	// MaxTimestamp returns the offset and value of the largest timestamp.
	MaxTimestamp() (Offset, int64)
	// DeleteRecordsBefore advances the log start offset to off.
	DeleteRecordsBefore(off Offset) (Offset, error)
	// Clean applies retention and compaction once.
	Clean(ctx context.Context) error
	// SetConfig applies a changed topic configuration.
	SetConfig(cfg LogConfig) error
	// Close closes the log; Remove closes it and deletes its files.
	Close() error
	Remove() error
}

// OpenLogFunc opens (creating if needed) the partition log in dir.
type OpenLogFunc func(dir string, cfg LogConfig) (Log, error)
