package protocol

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// barrierLog is an in-memory log whose appends wait until n appends (across
// all barrierLogs sharing the barrier) are in progress at once.
type barrierLog struct {
	topics.Log
	b *barrier
}

type barrier struct {
	mu      sync.Mutex
	n, in   int
	allIn   chan struct{}
	timeout time.Duration
}

var errNotConcurrent = errors.New("appends were not concurrent")

func (l *barrierLog) AppendNoWait(batches []byte, epoch topics.Epoch) (topics.AppendResult, error) {
	l.b.mu.Lock()
	l.b.in++
	if l.b.in == l.b.n {
		close(l.b.allIn)
	}
	l.b.mu.Unlock()
	select {
	case <-l.b.allIn:
	case <-time.After(l.b.timeout):
		return topics.AppendResult{}, errNotConcurrent
	}
	return l.Log.AppendNoWait(batches, epoch)
}

// testBatch encodes one valid single-record RecordBatch v2.
func testBatch(value string) []byte {
	r := kmsg.Record{Value: []byte(value)}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	rb := kmsg.RecordBatch{Magic: 2, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1,
		Records: r.AppendTo(nil)}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestProduceAppendsPartitionsConcurrently sends one produce request for
// six partitions to logs that only let an append finish once all six are in
// progress: it succeeds only if the handler appends to the six partitions
// at the same time.
func TestProduceAppendsPartitionsConcurrently(t *testing.T) {
	const parts = 6
	bar := &barrier{n: parts, allIn: make(chan struct{}), timeout: 20 * time.Second}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := topics.Open(topics.Options{Dir: t.TempDir(), Logger: discard,
		OpenLog: func(dir string, cfg topics.LogConfig) (topics.Log, error) {
			l, err := topics.OpenMemLog(dir, cfg)
			return &barrierLog{Log: l, b: bar}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	if _, err := reg.Create(context.Background(), "six", topics.Spec{Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Topics: reg, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = 1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "six"
	for i := range parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(i)
		rp.Records = testBatch("v")
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := handleProduce(context.Background(), s, &Request{Key: 0, Version: 9, Body: req})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.(*kmsg.ProduceResponse).Topics[0].Partitions {
		if p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("partition %d: code %d offset %d (appends serialized?)", p.Partition, p.ErrorCode, p.BaseOffset)
		}
	}
}

// TestRunJobsWaitsForJobsNotGoroutines: runJobs returns once every job has
// run, whether or not the goroutines it started have: here none starts
// before it returns, so the caller runs every job itself, and the late
// goroutines then find nothing left to do.
func TestRunJobsWaitsForJobsNotGoroutines(t *testing.T) {
	for _, n := range []int{0, 1, 2, 6, 100} {
		var late []func()
		spawn := func(f func()) { late = append(late, f) } // started only after runJobs returned
		ran := make([]int, n)
		// NB: a runJobs that waited for the goroutines it started would
		// wait here for ever (they start only after it returns): fail on
		// a deadline instead of hanging until the test binary's timeout.
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			runJobs(n, 64, spawn, func(i int) { ran[i]++ })
		}()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatalf("n=%d: runJobs did not return before its goroutines started", n)
		}
		for i, c := range ran {
			if c != 1 {
				t.Fatalf("n=%d: job %d ran %d times before runJobs returned, want 1", n, i, c)
			}
		}
		if want := max(min(n, 64)-1, 0); n > 1 && len(late) != want {
			t.Fatalf("n=%d: %d goroutines started, want %d", n, len(late), want)
		}
		for _, f := range late {
			f()
		}
		for i, c := range ran {
			if c != 1 {
				t.Fatalf("n=%d: job %d ran %d times after the late goroutines, want 1", n, i, c)
			}
		}
	}
}

// TestRunJobsConcurrent: with goroutines that do start, every job runs
// exactly once and runJobs returns only after the last one finished.
func TestRunJobsConcurrent(t *testing.T) {
	const n = 200
	var mu sync.Mutex
	ran := make([]int, n)
	runJobs(n, 8, goSpawn, func(i int) {
		time.Sleep(50 * time.Microsecond)
		mu.Lock()
		ran[i]++
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	for i, c := range ran {
		if c != 1 {
			t.Fatalf("job %d ran %d times, want 1", i, c)
		}
	}
}
