package group

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/ownership"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// OffsetsTopic is the compacted internal topic that holds committed offsets
// and group metadata.
const OffsetsTopic = "__consumer_offsets"

// maxReplayBatchBytes bounds the decompressed size of one batch read back
// from __consumer_offsets (Weir writes them uncompressed).
const maxReplayBatchBytes = 64 << 20

// TopicLog is the Log over the broker's own __consumer_offsets topic.
type TopicLog struct {
	reg        *topics.Registry
	partitions int32
	now        func() time.Time
	// rep is the partitions' replication in a cluster; nil on a single
	// node. Set before use (Replicate).
	rep ownership.Replication
}

// Replicate makes the log write through rep (a cluster broker's partition
// replication): appends are refused unless this broker leads the
// partition, go at its leader epoch, and an Append (a commit) returns once
// the high watermark covers it. Call it before the log is used.
func (l *TopicLog) Replicate(rep ownership.Replication) { l.rep = rep }

// OpenTopicLog returns the Log over __consumer_offsets. The topic is created
// (compacted, with partitions partitions) on the first append, as Kafka
// creates it on first use. An existing topic keeps its partition count:
// Partitions reports it, and the coordinator must use it.
func OpenTopicLog(_ context.Context, reg *topics.Registry, partitions int32, now func() time.Time) (*TopicLog, error) {
	if now == nil {
		now = time.Now
	}
	l := &TopicLog{reg: reg, partitions: partitions, now: now}
	if t, ok := reg.Get(OffsetsTopic); ok {
		l.partitions = t.NumPartitions()
	}
	return l, nil
}

// Partitions returns the topic's partition count.
func (l *TopicLog) Partitions() int32 { return l.partitions }

func (l *TopicLog) topic(ctx context.Context) (*topics.Topic, error) {
	if t, ok := l.reg.Get(OffsetsTopic); ok {
		return t, nil
	}
	t, err := l.reg.Ensure(ctx, OffsetsTopic, topics.Spec{
		Partitions: l.partitions,
		Configs:    map[string]string{"cleanup.policy": "compact"},
	})
	if err != nil {
		return nil, fmt.Errorf("group: create %s: %w", OffsetsTopic, err)
	}
	return t, nil
}

func (l *TopicLog) partition(ctx context.Context, p int32) (*topics.Partition, error) {
	t, err := l.topic(ctx)
	if err != nil {
		return nil, err
	}
	part, ok := t.Partition(p)
	if !ok {
		return nil, fmt.Errorf("group: %s has no partition %d", OffsetsTopic, p)
	}
	return part, nil
}

// Append writes recs as one uncompressed batch and waits until it is
// durable under the log's sync policy (replicated: covered by the high
// watermark).
func (l *TopicLog) Append(ctx context.Context, p int32, recs []Record) error {
	part, b, err := l.encode(ctx, p, recs)
	if err != nil {
		return err
	}
	if hasTxn(recs) {
		if l.rep == nil {
			return appendTrusted(ctx, part.Log(), b, p)
		}
		err := ownership.AppendBroker(ctx, l.rep, part, func(tl topics.LeaderTxnLog, epoch topics.Epoch) (topics.AppendResult, error) {
			return tl.WriteTrusted(b, epoch)
		})
		if err != nil {
			return fmt.Errorf("group: store transactional offsets: %w", err)
		}
		return nil
	}
	if _, err := ownership.Append(ctx, l.rep, part, b, true); err != nil {
		return fmt.Errorf("group: store records: %w", err)
	}
	return nil
}

// Write writes recs as one uncompressed batch and returns once it is in the
// log, before the log's fsync (and replication); the next Append's wait
// covers it.
func (l *TopicLog) Write(ctx context.Context, p int32, recs []Record) error {
	part, b, err := l.encode(ctx, p, recs)
	if err != nil {
		return err
	}
	if _, err := ownership.Append(ctx, l.rep, part, b, false); err != nil {
		return fmt.Errorf("group: store records: %w", err)
	}
	return nil
}

// encode returns partition p and recs as one uncompressed batch.
func (l *TopicLog) encode(ctx context.Context, p int32, recs []Record) (*topics.Partition, []byte, error) {
	log, err := l.partition(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	b, err := encodeRuns(l.now().UnixMilli(), recs)
	if err != nil {
		return nil, nil, fmt.Errorf("group: encode %s batch: %w", OffsetsTopic, err)
	}
	return log, b, nil
}

// Replay calls fn for every record of partition p from the log start to the
// high watermark.
func (l *TopicLog) Replay(ctx context.Context, p int32, fn func(Record) error) error {
	fn, marker, flush := txnReplay(fn)
	if err := l.replay(ctx, p, fn, marker); err != nil {
		return err
	}
	return flush()
}

func (l *TopicLog) replay(ctx context.Context, p int32, fn func(Record) error, txnMarker func(batch.Header, []byte) error) error {
	if _, ok := l.reg.Get(OffsetsTopic); !ok {
		return nil // never written
	}
	part, err := l.partition(ctx, p)
	if err != nil {
		return err
	}
	log := part.Log()
	name := fmt.Sprintf("group: %s/%d", OffsetsTopic, p)
	return topics.ReplayBatches(ctx, log, name, func(h batch.Header, b []byte, from topics.Offset) error {
		if h.Control() {
			return txnMarker(h, b)
		}
		recs, err := batch.Records(b, maxReplayBatchBytes)
		if err != nil {
			return fmt.Errorf("%s batch at %d: %w", name, h.BaseOffset, err)
		}
		for _, r := range recs {
			if topics.Offset(h.BaseOffset)+topics.Offset(r.OffsetDelta) < from || r.Key == nil {
				continue
			}
			rec := Record{Partition: p, Key: bytes.Clone(r.Key)}
			if r.Value != nil {
				rec.Value = bytes.Clone(r.Value)
			}
			if h.Transactional() {
				rec.txn, rec.txnPID, rec.txnEpoch = true, h.ProducerID, h.ProducerEpoch
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}
