package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLargeProduceFramesIntact has several producers send large Produce
// requests at once (frames of hundreds of KiB, whose buffers the server
// reuses once each request has been handled) and reads every record back:
// each value must be the one its key was produced with. A buffer handed
// to a new frame while an earlier request still used it would store
// another producer's bytes (or fail the CRC).
func TestLargeProduceFramesIntact(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	b := startBroker(t, Options{CleanInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const producers, perProducer, size = 4, 1500, 1024
	adm, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 6, 1, nil, "frames"); err != nil {
		t.Fatal(err)
	}
	value := func(p, i int) []byte {
		rng := rand.New(rand.NewPCG(seed, uint64(p*perProducer+i)))
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		return v
	}
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Go(func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("frames"),
				kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(20*time.Millisecond))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			recs := make([]*kgo.Record, 0, perProducer)
			for i := range perProducer {
				recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "%d/%d", p, i), Value: value(p, i)})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				errs <- fmt.Errorf("producer %d: %w", p, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("frames"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := make(map[string]bool)
	for len(seen) < producers*perProducer {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records before the deadline", len(seen), producers*perProducer)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("fetch %s[%d]: %v", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		for _, r := range fs.Records() {
			var p, i int
			if _, err := fmt.Sscanf(string(r.Key), "%d/%d", &p, &i); err != nil {
				t.Fatalf("record at %s[%d]@%d has key %q: %v", r.Topic, r.Partition, r.Offset, r.Key, err)
			}
			if string(r.Value) != string(value(p, i)) {
				t.Fatalf("record %s at %s[%d]@%d holds other bytes than were produced", r.Key, r.Topic, r.Partition, r.Offset)
			}
			if seen[string(r.Key)] {
				t.Fatalf("record %s read twice (again at %s[%d]@%d)", r.Key, r.Topic, r.Partition, r.Offset)
			}
			seen[string(r.Key)] = true
		}
	}
}
