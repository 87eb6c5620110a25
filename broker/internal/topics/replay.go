package topics

import (
	"context"
	"fmt"

	"github.com/weir-dev/weir/broker/internal/batch"
)

// ReplayBatches reads log from its start to its high watermark and calls fn
// with every whole batch, its header and the offset the read began at (a
// batch may start below it: the records before from are for fn to skip).
// It is how the coordinators rebuild their state from their internal
// topics. Its own errors begin with name (e.g. "group:
// __consumer_offsets/3"); fn's errors and ctx's are returned as they are.
func ReplayBatches(ctx context.Context, log Log, name string, fn func(h batch.Header, b []byte, from Offset) error) error {
	off, end := log.LogStartOffset(), log.HighWatermark()
	for off < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := log.Read(off, 1<<20)
		if err != nil {
			return fmt.Errorf("%s: read at %d: %w", name, off, err)
		}
		if len(data) == 0 {
			return nil
		}
		next := off
		for len(data) > 0 {
			var b []byte
			b, data, err = batch.Next(data)
			if err != nil {
				if batch.IsTruncated(err) {
					break // a partial batch at the end of the read
				}
				return fmt.Errorf("%s: at %d: %w", name, next, err)
			}
			h, err := batch.ParseHeader(b)
			if err != nil {
				return fmt.Errorf("%s: at %d: %w", name, next, err)
			}
			if err := fn(h, b, off); err != nil {
				return err
			}
			next = Offset(h.LastOffset()) + 1
		}
		if next <= off {
			return fmt.Errorf("%s: no progress reading at %d", name, off)
		}
		off = next
	}
	return nil
}
