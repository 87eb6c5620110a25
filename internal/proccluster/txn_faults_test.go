package proccluster_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// copyMemberEnv names the broker a copy-member process (this test binary
// re-run as TestFaultCopyMemberProcess) copies on.
const copyMemberEnv = "WEIR_COPY_MEMBER_BROKER"

// TestFaultCopyMemberProcess is not a test of its own: it is the body of a
// copy-job member process started by TestFaultTransactionalCopyMemberKilled.
// It runs a franz-go GroupTransactSession that copies "in" to "out" until it
// is killed.
func TestFaultCopyMemberProcess(t *testing.T) {
	addr := processEnv(t, copyMemberEnv, "TestFaultTransactionalCopyMemberKilled")
	id := os.Getenv("WEIR_COPY_MEMBER_ID")
	s, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(addr),
		kgo.TransactionalID(id),
		kgo.ConsumerGroup("copy"),
		kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic("out"),
		kgo.TransactionTimeout(5*time.Second),
		kgo.SessionTimeout(6*time.Second),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for {
		// Small transactions (at most 100 records), so that a kill lands
		// in the middle of one.
		fs := s.PollRecords(ctx, 100)
		fs.EachError(func(topic string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "%s: fetch %s/%d: %v\n", id, topic, p, err)
		})
		if err := s.Begin(); err != nil {
			t.Fatalf("%s: begin: %v", id, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			s.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, nil)
		})
		if _, err := s.End(ctx, kgo.TryCommit); err != nil {
			// A retriable failure aborted the transaction; the records come
			// again. Anything else is the test's failure.
			fmt.Fprintf(os.Stderr, "%s: end: %v\n", id, err)
		}
	}
}

// TestFaultTransactionalCopyMemberKilled: franz-go's GroupTransactSession
// copy job with two member processes against a single-node weir broker
// process, 100,000 records; a member is SIGKILLed ten times (at random
// moments from the logged seed) and restarted with its transactional id. Read at
// read_committed, "out" holds every input record exactly once; read at
// read_uncommitted it holds at least as many (the killed transactions'
// aborted records too).
func TestFaultTransactionalCopyMemberKilled(t *testing.T) {
	rng := faultTest(t)
	const total, kills = 100000, 10
	sb := startSoloBroker(t)
	addr := sb.addr

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sb.waitServing(ctx, cl)
	adm := kadm.NewClient(cl)
	for _, topic := range []string{"in", "out"} {
		if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	recs := make([]*kgo.Record, 0, total)
	for i := range total {
		v := strconv.Itoa(i)
		recs = append(recs, &kgo.Record{Key: []byte(v), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	members := map[string]*testProc{}
	startMember := func(id string) {
		members[id] = sb.startTestProcess(id, "TestFaultCopyMemberProcess", copyMemberEnv+"="+addr, "WEIR_COPY_MEMBER_ID="+id)
	}
	startMember("copy-1")
	startMember("copy-2")

	out, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	seen := make(map[string]int, total)
	dups := 0
	read := func(ctx context.Context) {
		for _, r := range out.PollFetches(ctx).Records() {
			seen[string(r.Value)]++
			if seen[string(r.Value)] > 1 {
				dups++
			}
		}
	}
	// Kill a member at random moments while the copy runs (the k-th once
	// k/(kills+1) of the records are copied, then up to 300 ms later);
	// restart it under the same transactional id, which fences what it left
	// open.
	for k := range kills {
		for len(seen) < (k+1)*total/(kills+1) {
			read(ctx)
			if ctx.Err() != nil {
				t.Fatalf("out holds %d distinct of %d records at read_committed before kill %d", len(seen), total, k+1)
			}
		}
		wait := time.Duration(rng.IntN(300)) * time.Millisecond
		wctx, c := context.WithTimeout(ctx, wait)
		for wctx.Err() == nil {
			read(wctx)
		}
		c()
		id := fmt.Sprintf("copy-%d", 1+rng.IntN(2))
		t.Logf("kill %d: SIGKILL %s, %d of %d copied", k+1, id, len(seen), total)
		members[id].kill()
		startMember(id)
	}
	for len(seen) < total {
		read(ctx)
		if ctx.Err() != nil {
			t.Fatalf("out holds %d distinct of %d records at read_committed", len(seen), total)
		}
	}
	for _, m := range members {
		m.kill()
	}
	quiet, c := context.WithTimeout(ctx, time.Second)
	for quiet.Err() == nil {
		read(quiet)
	}
	c()
	if dups > 0 {
		t.Fatalf("out holds %d duplicates at read_committed", dups)
	}
	for i := range total {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Fatalf("record %d is in out %d times", i, n)
		}
	}
	// At read_uncommitted, out holds every committed record and the
	// aborted ones of the killed members' transactions.
	ends, err := adm.ListEndOffsets(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	all, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("out"), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	next := map[int32]int64{}
	uncommitted := 0
	reached := func() bool {
		ok := true
		ends.Each(func(o kadm.ListedOffset) { ok = ok && next[o.Partition] >= o.Offset })
		return ok
	}
	for !reached() {
		fs := all.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_uncommitted did not reach the log ends %v: %v", ends, next)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				uncommitted++
			}
		})
	}
	if uncommitted < total {
		t.Fatalf("out holds %d records at read_uncommitted, fewer than the %d read committed", uncommitted, total)
	}
	t.Logf("out: %d records read committed, exactly once; %d at read_uncommitted (%d aborted)", total, uncommitted, uncommitted-total)
}
