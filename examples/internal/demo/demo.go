// Package demo holds what the example programs share: where a run's event
// clock starts when the topics already hold records of an earlier run.
package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LastTimestamp returns the latest timestamp among the last records of
// every partition of topics, and false when they hold no record. It reads
// one record per non-empty partition, for at most 30 s.
func LastTimestamp(ctx context.Context, brokers []string, topics ...string) (time.Time, bool, error) {
	var latest time.Time
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return latest, false, fmt.Errorf("demo: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return latest, false, fmt.Errorf("demo: end offsets of %v: %w", topics, err)
	}
	last := map[string]map[int32]kgo.Offset{}
	n := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if last[o.Topic] == nil {
				last[o.Topic] = map[int32]kgo.Offset{}
			}
			last[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset - 1)
			n++
		}
	})
	if n == 0 {
		return latest, false, nil
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(last))
	if err != nil {
		return latest, false, fmt.Errorf("demo: %w", err)
	}
	defer cons.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for n > 0 {
		fs := cons.PollFetches(rctx)
		if rctx.Err() != nil {
			return latest, false, fmt.Errorf("demo: read the last records of %v: %w", topics, rctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := last[r.Topic][r.Partition]; !ok {
				return
			}
			delete(last[r.Topic], r.Partition)
			n--
			if r.Timestamp.After(latest) {
				latest = r.Timestamp
			}
		})
	}
	return latest, true, nil
}
