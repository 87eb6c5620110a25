package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/storage"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// storageOpener returns how the broker opens partition logs: the storage
// engine, with the broker's fsync policy; produce storage failures are
// reported to health.
func storageOpener(opts Options, health *storageHealth) topics.OpenLogFunc {
	sync := storage.SyncGroupCommit
	switch opts.Fsync {
	case FsyncInterval:
		sync = storage.SyncInterval
	case FsyncNever:
		sync = storage.SyncNever
	}
	fs := opts.logFS
	if fs == nil {
		fs = opts.dataFS
	}
	// One bound on the sealed segments' open files for every partition.
	files := storage.NewFileCache(opts.OpenSegmentFiles)
	return func(dir string, cfg topics.LogConfig) (topics.Log, error) {
		l, err := storage.Open(dir, storage.Options{
			FS: fs, Sync: sync, SyncInterval: opts.FsyncInterval, Config: storageConfig(cfg), Logger: opts.Logger,
			FileCache: files,
		})
		if err != nil {
			return nil, err
		}
		sl := &storageLog{l: l, health: health}
		sl.cfg.Store(&cfg)
		return sl, nil
	}
}

func storageConfig(c topics.LogConfig) storage.Config {
	policy := storage.Delete
	switch {
	case c.Compact && c.Delete:
		policy = storage.CompactDelete
	case c.Compact:
		policy = storage.Compact
	}
	return storage.Config{
		SegmentBytes: c.SegmentBytes, SegmentMS: c.SegmentMS, RetentionMS: c.RetentionMS,
		RetentionBytes: c.RetentionBytes, Cleanup: policy, DeleteRetentionMS: c.DeleteRetentionMS,
		MaxMessageBytes: c.MaxMessageBytes, LogAppendTime: c.LogAppendTime,
	}
}

// storageLog adapts a storage.Log to topics.Log: it translates types, maps
// storage errors to Kafka codes, and does the topic-level checks that are
// the broker's, not the log's (keys on compacted topics, LogAppendTime).
type storageLog struct {
	l      *storage.Log
	cfg    atomic.Pointer[topics.LogConfig]
	health *storageHealth // counts and logs storage failures of appends
}

// kafkaErr wraps a storage error with its Kafka error code.
func kafkaErr(err error) error {
	var code *kerr.Error
	switch {
	case err == nil:
		return nil
	case batch.IsRefused(err):
		// Well formed but not a producer's to send (a control batch, an
		// idempotent batch without a sequence number): Kafka's answer.
		code = kerr.InvalidRecord
	case storage.IsCorrupt(err):
		code = kerr.CorruptMessage
	case storage.IsMessageTooLarge(err):
		code = kerr.MessageTooLarge
	case storage.IsOutOfOrderSequence(err):
		code = kerr.OutOfOrderSequenceNumber
	case storage.IsInvalidProducerEpoch(err):
		code = kerr.InvalidProducerEpoch
	case storage.IsTxnNotOpen(err):
		code = kerr.InvalidTxnState
	case storage.IsCoordinatorFenced(err):
		code = kerr.TransactionCoordinatorFenced
	case storage.IsOffsetOutOfRange(err):
		code = kerr.OffsetOutOfRange
	case storage.IsStorage(err):
		code = kerr.KafkaStorageError
	case storage.IsClosed(err):
		code = kerr.NotLeaderForPartition
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = kerr.RequestTimedOut
	default:
		return err
	}
	return fmt.Errorf("%w: %w", code, err)
}

// maxKeyCheckBytes bounds decompression when checking keys of a batch for a
// compacted topic.
const maxKeyCheckBytes = 64 << 20

func (s *storageLog) Append(ctx context.Context, batches []byte, epoch topics.Epoch) (topics.AppendResult, error) {
	res, err := s.AppendNoWait(batches, epoch)
	if err != nil {
		return res, err
	}
	return res, s.WaitDurable(ctx, res.LastOffset+1)
}

func (s *storageLog) AppendNoWait(batches []byte, epoch topics.Epoch) (topics.AppendResult, error) {
	if err := s.checkProduced(batches); err != nil {
		return topics.AppendResult{}, err
	}
	return s.appended(s.l.AppendNoWait(batches, epoch))
}

// appended turns the log's answer to an append into the topic's.
func (s *storageLog) appended(res storage.AppendResult, err error) (topics.AppendResult, error) {
	if err != nil {
		s.health.appendFailed(s.l.Dir(), err)
		return topics.AppendResult{}, kafkaErr(err)
	}
	return topics.AppendResult{
		BaseOffset: res.BaseOffset, LastOffset: res.LastOffset,
		LogAppendTime: res.LogAppendTime, LogStartOffset: res.LogStartOffset, Duplicate: res.Duplicate,
	}, nil
}

// checkKeys refuses batch b of a compacted topic if a record has no key,
// decompressing at most maxDecompressed bytes. A damaged batch is
// CORRUPT_MESSAGE even after a keyless record, as when every record was
// decoded before any key was looked at. NB: batch.Scan decodes record by
// record into one reused Record: on a changelog (compacted) topic every
// produced record passes here, and a slice of them per batch (batch.Records)
// was garbage the size of the batch.
func checkKeys(b []byte, maxDecompressed int) error {
	keyless := false
	err := batch.Scan(b, maxDecompressed, func(r *batch.Record) error {
		if r.Key == nil {
			keyless = true
		}
		return nil
	})
	if err != nil {
		return kafkaErr(fmt.Errorf("%w: %w", storage.ErrCorrupt, err))
	}
	if keyless {
		return fmt.Errorf("%w: broker: compacted topic refuses a record without a key", kerr.InvalidRecord)
	}
	return nil
}

// checkProduced does the topic's checks of a produced payload.
func (s *storageLog) checkProduced(batches []byte) error {
	cfg := s.cfg.Load()
	checkTS := !cfg.LogAppendTime && cfg.TimestampDifferenceMaxMS < math.MaxInt64
	// The log validates every batch (CRC included) before it writes any;
	// the checks here read headers only, except on compacted topics, whose
	// keys need the records decoded.
	if checkTS || cfg.Compact {
		for rest := batches; len(rest) > 0; {
			b, r, err := batch.Next(rest)
			if err != nil {
				break // the log reports it
			}
			rest = r
			if checkTS {
				h, err := batch.ParseHeader(b)
				if err != nil {
					break // the log reports it
				}
				if err := checkTimestamps(h, time.Now().UnixMilli(), cfg.TimestampDifferenceMaxMS); err != nil {
					// Only a refused batch is validated here: a damaged
					// one is the log's to answer (CORRUPT_MESSAGE).
					if _, verr := batch.Validate(b); verr == nil {
						return err
					}
					break
				}
			}
			if cfg.Compact {
				if err := checkKeys(b, min(maxKeyCheckBytes, 4*int(cfg.MaxMessageBytes)+1<<20)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkTimestamps applies message.timestamp.difference.max.ms to a
// CreateTime batch from its header alone: the first and the max timestamp
// must each be within maxDiff of now (records are not decoded, so a record
// between them with a timestamp below the first one is not looked at).
// Timestamps of -1 (none) pass, as in Kafka.
func checkTimestamps(h batch.Header, now, maxDiff int64) error {
	// Bounds without overflow (now and maxDiff are not negative).
	lo, hi := now-maxDiff, int64(math.MaxInt64)
	if maxDiff <= math.MaxInt64-now {
		hi = now + maxDiff
	}
	for _, ts := range [...]struct {
		name string
		v    int64
	}{{"first", h.FirstTimestamp}, {"max", h.MaxTimestamp}} {
		if ts.v == -1 {
			continue
		}
		if ts.v < lo || ts.v > hi {
			return fmt.Errorf("%w: broker: batch %s timestamp %d is more than message.timestamp.difference.max.ms %d from the broker's clock %d",
				kerr.InvalidTimestamp, ts.name, ts.v, maxDiff, now)
		}
	}
	return nil
}

// WaitDurable waits until an fsync covers every offset below end (at once
// under the policies that do not fsync per append); a failed fsync is a
// KAFKA_STORAGE_ERROR.
func (s *storageLog) WaitDurable(ctx context.Context, end topics.Offset) error {
	err := s.l.WaitDurable(ctx, end)
	if err != nil {
		s.health.appendFailed(s.l.Dir(), err)
	}
	return kafkaErr(err)
}

func (s *storageLog) Read(from topics.Offset, maxBytes int) ([]byte, error) {
	b, err := s.l.Read(from, maxBytes)
	return b, kafkaErr(err)
}

func (s *storageLog) LogStartOffset() topics.Offset { return s.l.LogStartOffset() }
func (s *storageLog) HighWatermark() topics.Offset  { return s.l.HighWatermark() }
func (s *storageLog) LogEndOffset() topics.Offset   { return s.l.LogEndOffset() }
func (s *storageLog) Changed() <-chan struct{}      { return s.l.Changed() }

func (s *storageLog) OffsetForTimestamp(ts int64) (topics.Offset, int64, bool) {
	return s.l.OffsetForTimestamp(ts)
}

func (s *storageLog) MaxTimestamp() (topics.Offset, int64) { return s.l.MaxTimestamp() }

func (s *storageLog) DeleteRecordsBefore(off topics.Offset) (topics.Offset, error) {
	lso, err := s.l.DeleteRecordsBefore(off)
	return lso, kafkaErr(err)
}

func (s *storageLog) Clean(ctx context.Context) error { return s.l.Clean(ctx) }

func (s *storageLog) SetConfig(cfg topics.LogConfig) error {
	s.cfg.Store(&cfg)
	return s.l.SetConfig(storageConfig(cfg))
}

func (s *storageLog) Close() error  { return s.l.Close() }
func (s *storageLog) Remove() error { return s.l.Remove() }
