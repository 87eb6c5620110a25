package txn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// memLog is an in-memory Log.
type memLog struct {
	mu    sync.Mutex
	parts map[int32][]Record
	fail  bool // Append fails
}

func (l *memLog) Append(_ context.Context, p int32, recs []Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return errors.New("disk on fire")
	}
	if l.parts == nil {
		l.parts = map[int32][]Record{}
	}
	l.parts[p] = append(l.parts[p], recs...)
	return nil
}

func (l *memLog) Replay(_ context.Context, p int32, fn func(Record) error) error {
	l.mu.Lock()
	recs := append([]Record(nil), l.parts[p]...)
	l.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// markerLog records the markers written; while blocked it writes none.
type markerLog struct {
	mu      sync.Mutex
	blocked bool
	written []Marker
}

func (m *markerLog) write(_ context.Context, mk Marker) ([]TopicPartition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blocked {
		return nil, errors.New("partition leader unreachable")
	}
	m.written = append(m.written, mk)
	return mk.Partitions, nil
}

func openTestDriver(t *testing.T, log *memLog, ml *markerLog) *Driver {
	t.Helper()
	d, err := OpenDriver(context.Background(), DriverOptions{
		Coordinator: Options{ProducerIDs: &counterIDs{}},
		Log:         log, Markers: ml.write, MarkerRetry: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func step(t *testing.T, d *Driver, req kmsg.Request) kmsg.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := d.Handle(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// beginTxn starts a transaction of id on topic t partition 0 and returns
// its producer id and epoch.
func beginTxn(t *testing.T, d *Driver, id string, timeout time.Duration) (int64, int16) {
	t.Helper()
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version, ip.TransactionalID, ip.TransactionTimeoutMillis = 4, &id, int32(timeout.Milliseconds())
	ir := step(t, d, ip).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: error %d", ir.ErrorCode)
	}
	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.Version, ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = 3, id, ir.ProducerID, ir.ProducerEpoch
	ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	ar := step(t, d, ap).(*kmsg.AddPartitionsToTxnResponse)
	if c := ar.Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("AddPartitionsToTxn: error %d", c)
	}
	return ir.ProducerID, ir.ProducerEpoch
}

// waitState polls until id is in state want.
func waitState(t *testing.T, d *Driver, id string, want State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := d.Describe(id)
		if info.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %v", id, info.State, want)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestDriverRestartFinishesPrepared: a transaction whose commit was
// recorded but whose markers could not be written before the driver
// stopped is finished by the next driver over the same log: the markers
// are written and the transaction completes.
func TestDriverRestartFinishesPrepared(t *testing.T) {
	for _, commit := range []bool{true, false} {
		log, ml := &memLog{}, &markerLog{blocked: true}
		d := openTestDriver(t, log, ml)
		pid, epoch := beginTxn(t, d, "tx", time.Minute)
		et := kmsg.NewPtrEndTxnRequest()
		et.Version, et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = 3, "tx", pid, epoch, commit
		if c := step(t, d, et).(*kmsg.EndTxnResponse).ErrorCode; c != 0 {
			t.Fatalf("EndTxn: error %d", c)
		}
		want := StatePrepareAbort
		if commit {
			want = StatePrepareCommit
		}
		if info, _ := d.Describe("tx"); info.State != want {
			t.Fatalf("with markers blocked: %v, want %v", info.State, want)
		}
		d.Close()

		ml2 := &markerLog{}
		d2 := openTestDriver(t, log, ml2)
		done := StateCompleteAbort
		if commit {
			done = StateCompleteCommit
		}
		waitState(t, d2, "tx", done)
		ml2.mu.Lock()
		if len(ml2.written) != 1 || ml2.written[0].Commit != commit || ml2.written[0].ProducerID != ProducerID(pid) {
			t.Fatalf("markers after restart: %+v, want one %v marker for producer %d", ml2.written, commit, pid)
		}
		ml2.mu.Unlock()
		d2.Close()
		// And the completion is stored: a third driver finds it complete.
		d3 := openTestDriver(t, log, &markerLog{})
		if info, _ := d3.Describe("tx"); info.State != done {
			t.Fatalf("third open: %v, want %v", info.State, done)
		}
		d3.Close()
	}
}

// TestDriverTimeoutAborts: a transaction left open past its timeout is
// aborted by the driver's own clock, its markers written, and counted.
func TestDriverTimeoutAborts(t *testing.T) {
	log, ml := &memLog{}, &markerLog{}
	d := openTestDriver(t, log, ml)
	defer d.Close()
	beginTxn(t, d, "hung", 50*time.Millisecond)
	waitState(t, d, "hung", StateCompleteAbort)
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().TimedOut != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want one timed out", d.Stats())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	if s := d.Stats(); s.Aborted != 1 || s.Committed != 0 || s.Open != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestDriverFailedAppendAnswersRetriable: when __transaction_state cannot
// be written, the request is answered COORDINATOR_NOT_AVAILABLE and the
// coordinator forgets what it did not store.
func TestDriverFailedAppendAnswersRetriable(t *testing.T) {
	log, ml := &memLog{}, &markerLog{}
	d := openTestDriver(t, log, ml)
	defer d.Close()
	log.mu.Lock()
	log.fail = true
	log.mu.Unlock()
	id := "tx"
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version, ip.TransactionalID, ip.TransactionTimeoutMillis = 4, &id, 60000
	if r := step(t, d, ip).(*kmsg.InitProducerIDResponse); r.ErrorCode != 15 { // COORDINATOR_NOT_AVAILABLE
		t.Fatalf("InitProducerId with the log failing: %+v", r)
	}
	if _, ok := d.Describe(id); ok {
		t.Fatal("the coordinator kept an id it could not store")
	}
}
