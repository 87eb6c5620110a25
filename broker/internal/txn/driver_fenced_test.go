package txn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDriverStopsOnCoordinatorFenced: a partition that answers a marker
// TRANSACTION_COORDINATOR_FENCED holds a newer coordinator's marker for
// the producer; the driver stops writing that transaction's markers (no
// retry at MarkerRetry) and neither completes nor fails it: it stays
// prepared, for the new coordinator to finish. Without the stop, the
// writer is called again within a few retry periods of 1 ms.
func TestDriverStopsOnCoordinatorFenced(t *testing.T) {
	var calls atomic.Int32
	retried := make(chan struct{})
	d, err := OpenDriver(context.Background(), DriverOptions{
		Coordinator: Options{ProducerIDs: &counterIDs{}},
		Log:         &memLog{},
		Markers: func(_ context.Context, m Marker) ([]TopicPartition, error) {
			if calls.Add(1) == 2 {
				close(retried)
			}
			return nil, fmt.Errorf("marker to %s/%d: %w", m.Partitions[0].Topic, m.Partitions[0].Partition, kerr.TransactionCoordinatorFenced)
		},
		MarkerRetry: time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pid, epoch := beginTxn(t, d, "tx", time.Minute)
	et := kmsg.NewPtrEndTxnRequest()
	et.Version, et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = 3, "tx", pid, epoch, true
	if c := step(t, d, et).(*kmsg.EndTxnResponse).ErrorCode; c != 0 {
		t.Fatalf("EndTxn: error %d", c)
	}
	// Retries come at 1, 2, 4, ... ms: 500 ms would see several.
	select {
	case <-retried:
		t.Fatalf("the driver wrote the markers again after TRANSACTION_COORDINATOR_FENCED (%d calls)", calls.Load())
	case <-time.After(500 * time.Millisecond):
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("marker writer called %d times, want 1", n)
	}
	if info, _ := d.Describe("tx"); info.State != StatePrepareCommit {
		t.Fatalf("transaction %v after a fenced marker, want it left %v", info.State, StatePrepareCommit)
	}
	if s := d.Stats(); s.Committed != 0 || s.Aborted != 0 {
		t.Fatalf("stats %+v: a fenced transaction counted as ended", s)
	}
}
