package broker

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// copyMember runs one member of a franz-go GroupTransactSession copy job:
// it reads "in" at read_committed and writes every record to "out" in the
// transaction that commits the input offsets, until ctx ends.
func copyMember(ctx context.Context, t *testing.T, b *Broker, id string, copied *int64, mu *sync.Mutex) error {
	s, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(b.Addr()),
		kgo.TransactionalID(id),
		kgo.ConsumerGroup("copy"),
		kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic("out"),
		kgo.TransactionTimeout(10*time.Second),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
	)
	if err != nil {
		return err
	}
	defer s.Close()
	for ctx.Err() == nil {
		fs := s.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err) })
		if ferr != nil {
			return ferr
		}
		if err := s.Begin(); err != nil {
			return fmt.Errorf("%s: begin: %w", id, err)
		}
		n := 0
		var perr error
		var wg sync.WaitGroup
		fs.EachRecord(func(r *kgo.Record) {
			n++
			wg.Add(1)
			s.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					perr = err
					mu.Unlock()
				}
			})
		})
		wg.Wait()
		committed, err := s.End(ctx, kgo.TransactionEndTry(perr == nil))
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: end: %w", id, err)
		}
		if committed {
			mu.Lock()
			*copied += int64(n)
			mu.Unlock()
		}
	}
	return nil
}

// TestGroupTransactSessionCopiesExactlyOnce: franz-go's
// GroupTransactSession copy job, two members in one group (the second joins
// midway, so partitions move between them while transactions are open),
// copies 20,000 records from "in" to "out": read at read_committed, "out"
// holds every input record exactly once.
func TestGroupTransactSessionCopiesExactlyOnce(t *testing.T) {
	const total = 20000
	b := startBroker(t, Options{})
	createTopic(t, b, "in", 4)
	createTopic(t, b, "out", 4)
	p := newClient(t, b, kgo.DefaultProduceTopic("in"))
	ctx := testCtx(t)
	recs := make([]*kgo.Record, 0, total)
	for i := range total {
		v := strconv.Itoa(i)
		recs = append(recs, &kgo.Record{Key: []byte(v), Value: []byte(v)})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	jobCtx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	var copied int64
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	start := func(id string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- copyMember(jobCtx, t, b, id, &copied, &mu)
		}()
	}
	start("copy-1")
	// The second member joins once the first has copied some.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := copied
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	start("copy-2")

	// Read "out" at read_committed until every input record is there.
	c := newClient(t, b, kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := make(map[string]int, total)
	dups := 0
	for len(seen) < total {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d distinct of %d records from out", len(seen), total)
		}
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("copy member: %v", err)
			}
		default:
		}
		for _, r := range fs.Records() {
			seen[string(r.Value)]++
			if seen[string(r.Value)] > 1 {
				dups++
			}
		}
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("copy member: %v", err)
		}
	}
	// Nothing more may be committed once every record is there: read on
	// for a quiet half second.
	quiet, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	for quiet.Err() == nil {
		for _, r := range c.PollFetches(quiet).Records() {
			seen[string(r.Value)]++
			dups++
		}
	}
	if dups > 0 {
		t.Fatalf("out holds %d duplicates at read_committed", dups)
	}
	for i := range total {
		if seen[strconv.Itoa(i)] != 1 {
			t.Fatalf("record %d copied %d times", i, seen[strconv.Itoa(i)])
		}
	}
}
