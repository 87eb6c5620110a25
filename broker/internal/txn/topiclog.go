package txn

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/ownership"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// StateTopic is the compacted internal topic that holds the transaction
// coordinator's records.
const StateTopic = "__transaction_state"

// maxReplayBatchBytes bounds the decompressed size of one batch read back
// from __transaction_state (Weir writes them uncompressed).
const maxReplayBatchBytes = 64 << 20

// TopicLog is the Log over the broker's own __transaction_state topic.
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
// partition, go at its leader epoch, and return once the high watermark
// covers them. The topic is then never created here: the controller
// creates it. Call it before the log is used.
func (l *TopicLog) Replicate(rep ownership.Replication) { l.rep = rep }

// OpenTopicLog returns the Log over __transaction_state. The topic is
// created (compacted, with partitions partitions) on the first append, as
// Kafka creates it on first use; an existing topic keeps its partition
// count, which Partitions reports and the coordinator must use.
func OpenTopicLog(reg *topics.Registry, partitions int32, now func() time.Time) *TopicLog {
	if now == nil {
		now = time.Now
	}
	l := &TopicLog{reg: reg, partitions: partitions, now: now}
	if t, ok := reg.Get(StateTopic); ok {
		l.partitions = t.NumPartitions()
	}
	return l
}

// Partitions returns the topic's partition count.
func (l *TopicLog) Partitions() int32 { return l.partitions }

func (l *TopicLog) partition(ctx context.Context, p int32) (*topics.Partition, error) {
	t, ok := l.reg.Get(StateTopic)
	if !ok && l.rep != nil {
		return nil, fmt.Errorf("txn: %s does not exist on this broker yet", StateTopic)
	}
	if !ok {
		var err error
		t, err = l.reg.Ensure(ctx, StateTopic, topics.Spec{
			Partitions: l.partitions,
			Configs:    map[string]string{"cleanup.policy": "compact"},
		})
		if err != nil {
			return nil, fmt.Errorf("txn: create %s: %w", StateTopic, err)
		}
	}
	part, ok := t.Partition(p)
	if !ok {
		return nil, fmt.Errorf("txn: %s has no partition %d", StateTopic, p)
	}
	return part, nil
}

// Append writes recs as one uncompressed batch and waits until it is
// durable under the log's sync policy (replicated: covered by the high
// watermark).
func (l *TopicLog) Append(ctx context.Context, p int32, recs []Record) error {
	part, err := l.partition(ctx, p)
	if err != nil {
		return err
	}
	ts := l.now().UnixMilli()
	h := batch.Header{FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	brs := make([]batch.Record, len(recs))
	for i, r := range recs {
		brs[i] = batch.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
	}
	b, err := batch.Build(h, brs, batch.CodecNone)
	if err != nil {
		return fmt.Errorf("txn: encode %s batch: %w", StateTopic, err)
	}
	if _, err := ownership.Append(ctx, l.rep, part, b, true); err != nil {
		return fmt.Errorf("txn: store records: %w", err)
	}
	return nil
}

// Replay calls fn for every record of partition p from the log start to the
// high watermark.
func (l *TopicLog) Replay(ctx context.Context, p int32, fn func(Record) error) error {
	t, ok := l.reg.Get(StateTopic)
	if !ok {
		return nil // never written
	}
	part, ok := t.Partition(p)
	if !ok {
		return nil
	}
	name := fmt.Sprintf("txn: %s/%d", StateTopic, p)
	return topics.ReplayBatches(ctx, part.Log(), name, func(h batch.Header, b []byte, from topics.Offset) error {
		if h.Control() {
			return nil
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
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}
