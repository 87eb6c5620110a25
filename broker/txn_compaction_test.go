package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestReadCommittedAcrossCompaction: on a compacted topic, compaction drops
// an aborted transaction's records and then, a delete.retention.ms later,
// the markers whose transactions have no records left. A read_committed
// consumer that started before and goes on after sees exactly the latest
// committed value of each key once (no aborted record, nothing twice), and
// so does one that starts afterwards.
func TestReadCommittedAcrossCompaction(t *testing.T) {
	b := startBroker(t, Options{CleanInterval: 50 * time.Millisecond})
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))
	_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"cleanup.policy":      kadm.StringPtr("compact"),
		"segment.ms":          kadm.StringPtr("1"), // a segment per append or so
		"delete.retention.ms": kadm.StringPtr("2000"),
	}, "cmp")
	if err != nil {
		t.Fatal(err)
	}
	p := newClient(t, b, kgo.TransactionalID("compactor"), kgo.DefaultProduceTopic("cmp"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	plain := newClient(t, b, kgo.DefaultProduceTopic("cmp"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rec := func(k, v string) *kgo.Record { return &kgo.Record{Key: []byte(k), Value: []byte(v)} }
	txn := func(commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn(false, rec("a", "aborted-1"), rec("b", "aborted-1"))
	txn(true, rec("a", "1"), rec("c", "1"))
	txn(false, rec("c", "aborted-2"))
	if err := plain.ProduceSync(ctx, rec("a", "2"), rec("d", "1")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn(true, rec("e", "1"))
	for i := range 6 { // filler, so that the segments above are sealed
		if err := plain.ProduceSync(ctx, rec("f"+string(rune('0'+i)), "x")).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The latest committed value of each key; a: 1 then 2, c: 1.
	want := []string{"a=2", "c=1", "d=1", "e=1", "f0=x", "f1=x", "f2=x", "f3=x", "f4=x", "f5=x"}

	// A read_committed consumer that reads its first records before
	// compaction runs its course.
	early := newClient(t, b, kgo.ConsumeTopics("cmp"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1))
	seen := map[string][]string{}
	poll := func(c *kgo.Client) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		fs := c.PollRecords(pctx, 1)
		for _, r := range fs.Records() {
			seen[string(r.Key)] = append(seen[string(r.Key)], string(r.Value))
		}
	}
	poll(early)
	if len(seen) == 0 {
		t.Fatal("the early reader read nothing")
	}

	// Wait until compaction has removed the markers of the transactions
	// with no records left, the two aborted ones. The two commits stay:
	// c=1 and e=1 are the latest values of their keys.
	deadline := time.Now().Add(30 * time.Second)
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.Fetch), 12) // by topic name
	raw := newClient(t, b, kgo.MaxVersions(v))
	t.Logf("%d markers before compaction ended", markers(t, raw, "cmp"))
	for markers(t, raw, "cmp") > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d markers left after 30s, want 2", markers(t, raw, "cmp"))
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}

	latest := func(seen map[string][]string) []string {
		var out []string
		for k, vs := range seen {
			for _, v := range vs {
				if len(v) > 8 && v[:8] == "aborted-" {
					t.Fatalf("read_committed returned %s=%s", k, v)
				}
			}
			out = append(out, k+"="+vs[len(vs)-1])
		}
		slices.Sort(out)
		return out
	}
	for end := time.Now().Add(20 * time.Second); !slices.Equal(latest(seen), want); {
		if time.Now().After(end) {
			t.Fatalf("the early reader has %v, want %v", latest(seen), want)
		}
		poll(early)
	}
	for k, vs := range seen {
		if len(vs) != len(slices.Compact(slices.Clone(vs))) {
			t.Fatalf("the early reader read %s twice: %v", k, vs)
		}
	}

	late := map[string][]string{}
	for _, v := range readAllKeyed(t, b, "cmp", len(want)) {
		late[v[0]] = append(late[v[0]], v[1])
	}
	if got := latest(late); !slices.Equal(got, want) {
		t.Fatalf("a reader after compaction has %v, want %v", got, want)
	}
	for k, vs := range late {
		if len(vs) != 1 {
			t.Fatalf("after compaction %s has %d records %v, want 1", k, len(vs), vs)
		}
	}
}

// readAllKeyed reads topic from the start at read_committed until it has n
// records and for a quiet half second more, returning [key, value] pairs.
func readAllKeyed(t *testing.T, b *Broker, topic string, n int) [][2]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	var out [][2]string
	var quiet time.Time
	for quiet.IsZero() || time.Now().Before(quiet) {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := c.PollFetches(pctx)
		cancel()
		for _, r := range fs.Records() {
			out = append(out, [2]string{string(r.Key), string(r.Value)})
		}
		if ctx.Err() != nil {
			t.Fatalf("read %v, want %d records", out, n)
		}
		if quiet.IsZero() && len(out) >= n {
			quiet = time.Now().Add(500 * time.Millisecond)
		}
	}
	return out
}

// markers counts the control batches of partition 0 of topic, read with a
// raw Fetch at read_uncommitted.
func markers(t *testing.T, c *kgo.Client, topic string) int {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes, req.MaxWaitMillis = 1<<20, 0
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.FetchOffset = 1<<20, 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	n := 0
	for off := int64(0); ; {
		req.Topics[0].Partitions[0].FetchOffset = off
		resp, err := req.RequestWith(testCtx(t), c)
		if err != nil {
			t.Fatal(err)
		}
		fp := resp.Topics[0].Partitions[0]
		if fp.ErrorCode != 0 {
			t.Fatalf("fetch: %v", kerr.ErrorForCode(fp.ErrorCode))
		}
		b, last := fp.RecordBatches, off
		for len(b) >= 61 {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				break // a partial batch at the end
			}
			if rb.Attributes&0x20 != 0 {
				n++
			}
			last = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
			b = b[12+int(rb.Length):]
		}
		if last == off || last >= fp.HighWatermark {
			return n
		}
		off = last
	}
}
