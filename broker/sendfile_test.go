package broker

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFetchSendsFromFiles: a consumer reading back about 3.5 MiB of batches
// of varied sizes, over 1 MiB segments, from two partitions (one of large
// records, one of small) gets every record intact and in order, and
// most of the bytes went from the segment files by sendfile; the file
// descriptors the fetches took are all closed afterwards.
func TestFetchSendsFromFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sendfile is used on Linux only")
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	b := startBroker(t, Options{MetricsAddr: "127.0.0.1:0"})
	ctx := testCtx(t)
	cl := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("sf"),
		kgo.ProducerLinger(5*time.Millisecond))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1048576")}, "sf"); err != nil {
		t.Fatal(err)
	}
	var want [2][][]byte
	for i := range 6000 {
		p := int32(i % 2)
		n := 10 + rng.IntN(100)
		if p == 0 {
			n = 100 + rng.IntN(2000)
		}
		v := make([]byte, n)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		want[p] = append(want[p], v)
		cl.Produce(ctx, &kgo.Record{Partition: p, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fdsBefore := openFDs(t)

	cons := newClient(t, b, kgo.ConsumeTopics("sf"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got [2][][]byte
	for len(got[0])+len(got[1]) < 6000 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d+%d of 6000: %v", len(got[0]), len(got[1]), ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], r.Value) })
	}
	for p := range 2 {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("partition %d: %d records, want %d", p, len(got[p]), len(want[p]))
		}
		for i := range want[p] {
			if !bytes.Equal(got[p][i], want[p][i]) {
				t.Fatalf("partition %d record %d differs", p, i)
			}
		}
	}
	cons.Close()
	eventually(t, 10*time.Second, "the fetches' descriptors closed", func() error {
		if n := openFDs(t); n > fdsBefore {
			return fmt.Errorf("%d descriptors open, %d before consuming", n, fdsBefore)
		}
		return nil
	})
	m := scrape(t, b) // NB: after counting descriptors: it keeps a connection
	fetched, sent := m["weir_fetched_bytes_total"][""], m["weir_fetched_sendfile_bytes_total"][""]
	t.Logf("fetched %.0f bytes, %.0f of them by sendfile", fetched, sent)
	if sent < fetched/2 || sent > fetched {
		t.Fatalf("sent %.0f of %.0f fetched bytes from files: want most", sent, fetched)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
