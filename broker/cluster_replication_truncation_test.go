package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// offsetValue is one record as a consumer read it or a log holds it.
type offsetValue struct {
	Offset int64
	Value  string
}

// logRecords decodes every data record of l below end.
func logRecords(t *testing.T, l *storageLog, end base.Offset) []offsetValue {
	t.Helper()
	var out []offsetValue
	for b := logBytes(t, l, end); len(b) > 0; {
		h, err := batch.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Control() {
			rs, err := batch.Records(b[:h.Size()], 1<<24)
			if err != nil {
				t.Fatalf("batch at %d: %v", h.BaseOffset, err)
			}
			for _, r := range rs {
				out = append(out, offsetValue{h.BaseOffset + int64(r.OffsetDelta), string(r.Value)})
			}
		}
		b = b[h.Size():]
	}
	return out
}

// batchEpochs returns the base offset and leader epoch of every batch of l
// below end.
func batchEpochs(t *testing.T, l *storageLog, end base.Offset) map[int64]int32 {
	t.Helper()
	out := map[int64]int32{}
	for b := logBytes(t, l, end); len(b) > 0; {
		h, err := batch.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		out[h.BaseOffset] = h.PartitionLeaderEpoch
		b = b[h.Size():]
	}
	return out
}

// rawProduceAcks sends one record to addr with acks (1 or -1) and returns
// the partition's answer.
func rawProduceAcks(ctx context.Context, addr, topic string, p int32, value string, acks int16, timeoutMS int32) (kmsg.ProduceResponseTopicPartition, error) {
	var none kmsg.ProduceResponseTopicPartition
	// NB: kgo writes its configured acks into every ProduceRequest it
	// sends, Request included.
	opts := []kgo.Opt{kgo.SeedBrokers(addr)}
	if acks == 1 {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return none, err
	}
	defer cl.Close()
	now := time.Now().UnixMilli()
	b, err := batch.Build(batch.Header{FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]batch.Record{{Value: []byte(value)}}, batch.CodecNone)
	if err != nil {
		return none, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, timeoutMS
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(timeoutMS)*time.Millisecond+5*time.Second)
	defer cancel()
	raw, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return none, fmt.Errorf("produce of %q with acks %d: %w", value, acks, err)
	}
	return raw.(*kmsg.ProduceResponse).Topics[0].Partitions[0], nil
}

// rawFetch fetches topic/p from offset on addr as a read_uncommitted
// consumer (replica id -1) and returns the partition's answer.
func rawFetch(t *testing.T, ctx context.Context, cl *kgo.Client, topicID [16]byte, topic string, p int32, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 100, 1, 1<<20
	req.IsolationLevel = 0
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, offset, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("fetch at %d: %v", offset, err)
	}
	r := raw.(*kmsg.FetchResponse)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch at %d: %+v", offset, r)
	}
	return r.Topics[0].Partitions[0]
}

// fetchesTo counts the fetch requests a client had answered, by broker.
type fetchesTo struct {
	mu sync.Mutex
	n  map[int32]int
}

func (f *fetchesTo) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != int16(kmsg.Fetch) || e2e.Err() != nil {
		return
	}
	f.mu.Lock()
	f.n[meta.NodeID]++
	f.mu.Unlock()
}

func (f *fetchesTo) count(node int32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[node]
}

// TestClusterReplicationIsolatedLeaderTruncates: three nodes, a partition
// with replication factor 3 (min.insync.replicas 2), replica lag 1 s. A
// consumer (franz-go, read_uncommitted) follows the partition from its
// start to the end of the test. The leader is cut from both other nodes,
// not from clients, and takes records it cannot replicate: a seeded number
// of acks=1 produces (acknowledged) and one acks=all produce (not). While
// it holds them above its high watermark, raw fetches at and around the
// high watermark and at its log end get none of them, the high watermark
// they answer is the one before the cut, and the running consumer keeps
// fetching from it. The controller replaces it; the new leader takes
// committed records at the same offsets; once healed the old leader
// truncates exactly the records it took while cut off (its log end never
// drops below the old high watermark, its log below it is what it was,
// and it ends with the new leader's log batch by batch). The consumer read
// exactly the new leader's final log, offset by offset, and never any of
// the uncommitted records.
func TestClusterReplicationIsolatedLeaderTruncates(t *testing.T) {
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	nUncommitted := 2 + rng.IntN(5) // acks=1 records to the cut-off leader
	nBefore, nDuring, nAfter := 20+rng.IntN(60), 10+rng.IntN(40), 10+rng.IntN(40)
	t.Logf("%d committed records, %d acks=1 records to the cut-off leader, %d committed while it is cut off, %d after",
		nBefore, nUncommitted, nDuring, nAfter)

	c := startReplicatedCluster(t, 3, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const topic = "trunc"
	admin := newClusterClient(t, c)
	createTopicEventually(t, ctx, kadm.NewClient(admin), topic, 1, nil, 15*time.Second)
	var old, oldEpoch int32
	eventually(t, 20*time.Second, "one leader with an ISR of 3 on every node", func() error {
		agreed := int32(-1)
		for id := int32(1); id <= 3; id++ {
			l, e, isr, err := partitionLeader(ctx, admin, id, topic, 0)
			if err != nil {
				return err
			}
			if l < 1 || len(isr) != 3 || (agreed != -1 && l != agreed) {
				return fmt.Errorf("node %d: leader %d isr %v", id, l, isr)
			}
			agreed, old, oldEpoch = l, l, e
		}
		return nil
	})

	// The consumer, from the start to the end of the test, following
	// leadership.
	fetches := &fetchesTo{n: map[int32]int{}}
	cons := newClusterClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.MetadataMinAge(100*time.Millisecond), kgo.WithHooks(fetches))
	var (
		readMu sync.Mutex
		read   []offsetValue
	)
	readCount := func() int { readMu.Lock(); defer readMu.Unlock(); return len(read) }
	cctx, ccancel := context.WithCancel(ctx)
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			fs.EachRecord(func(r *kgo.Record) {
				readMu.Lock()
				read = append(read, offsetValue{r.Offset, string(r.Value)})
				readMu.Unlock()
			})
		}
	}()
	defer func() { ccancel(); <-consDone }()

	// produce produces values to the partition with acks=all through a
	// client seeded with seeds only, ten records to a batch.
	produce := func(seeds []string, values []string) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProduceRequestTimeout(3*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := 0; i < len(values); i += 10 {
			var wg sync.WaitGroup
			var failed atomic.Value
			for _, v := range values[i:min(i+10, len(values))] {
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
					if err != nil {
						failed.Store(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	values := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%d", prefix, i)
		}
		return out
	}
	produce(c.seeds(), values("before", nBefore))
	oldLog := partitionLog(c.brokers[old-1], topic, 0)
	hw0 := base.Offset(nBefore)
	waitReplicated(t, c, topic, 0, hw0, 15*time.Second)
	eventually(t, 15*time.Second, "the consumer at the high watermark", func() error {
		if n := readCount(); n != nBefore {
			return fmt.Errorf("%d read", n)
		}
		return nil
	})

	// Cut the leader from the other nodes; it takes records it cannot
	// replicate.
	c.net.Isolate(faultnet.NodeID(old))
	cutAt := time.Now()
	t.Logf("leader %d (epoch %d) cut from the other nodes at high watermark %d", old, oldEpoch, hw0)
	uncommitted := map[string]bool{}
	for i := range nUncommitted {
		v := fmt.Sprintf("uncommitted-acks1-%d", i)
		uncommitted[v] = true
		pr, err := rawProduceAcks(ctx, c.brokers[old-1].Addr(), topic, 0, v, 1, 2000)
		if err != nil || pr.ErrorCode != 0 || pr.BaseOffset != int64(hw0)+int64(i) {
			t.Fatalf("acks=1 produce %d to the cut-off leader: %v %v at offset %d, want offset %d",
				i, err, kerr.ErrorForCode(pr.ErrorCode), pr.BaseOffset, int64(hw0)+int64(i))
		}
	}
	// An acks=all produce is appended, then waits in vain for the ISR; the
	// fetches below run meanwhile, before the leader can give up on its
	// followers.
	uncommitted["uncommitted-acksall"] = true
	type answer struct {
		pr  kmsg.ProduceResponseTopicPartition
		err error
	}
	acksAll := make(chan answer, 1)
	go func() {
		pr, err := rawProduceAcks(ctx, c.brokers[old-1].Addr(), topic, 0, "uncommitted-acksall", -1, 1000)
		acksAll <- answer{pr, err}
	}()
	heldEnd := hw0 + base.Offset(nUncommitted) + 1
	eventually(t, 5*time.Second, "the acks=all record appended", func() error {
		if e := oldLog.LogEndOffset(); e != heldEnd {
			return fmt.Errorf("end %d", e)
		}
		return nil
	})
	if hw := oldLog.HighWatermark(); hw != hw0 {
		t.Fatalf("the cut-off leader: hw %d, want %d", hw, hw0)
	}
	heldBelowHW := logBytes(t, oldLog, hw0)
	heldAt := time.Now()
	fetchesBefore := fetches.count(old)

	// While it holds them: consumer fetches get none of them.
	rcl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers[old-1].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer rcl.Close()
	tp, _ := c.brokers[old-1].reg.Get(topic)
	for _, off := range []int64{0, int64(hw0) - 1, int64(hw0), int64(hw0) + 1, int64(heldEnd) - 1, int64(heldEnd)} {
		fp := rawFetch(t, ctx, rcl, tp.ID(), topic, 0, off)
		if fp.ErrorCode != 0 || fp.HighWatermark != int64(hw0) {
			t.Fatalf("fetch at %d from the cut-off leader (end %d, hw %d), %v after the cut (past the broker session timeout it no longer answers as leader): %v, high watermark %d",
				off, heldEnd, hw0, time.Since(cutAt).Round(time.Millisecond), kerr.ErrorForCode(fp.ErrorCode), fp.HighWatermark)
		}
		for b := fp.RecordBatches; len(b) > 0; {
			h, err := batch.ParseHeader(b)
			if err != nil || h.Size() > len(b) {
				t.Fatalf("fetch at %d: batch bytes %v", off, err)
			}
			if h.LastOffset() >= int64(hw0) {
				t.Fatalf("fetch at %d from the cut-off leader returned the batch %d-%d, at or above its high watermark %d",
					off, h.BaseOffset, h.LastOffset(), hw0)
			}
			b = b[h.Size():]
		}
		t.Logf("fetch at %d from the cut-off leader: %d bytes, high watermark %d", off, len(fp.RecordBatches), fp.HighWatermark)
	}

	switch a := <-acksAll; {
	case a.err != nil:
		t.Fatal(a.err)
	case a.pr.ErrorCode == 0:
		t.Fatalf("an acks=all produce to the cut-off leader %d was acknowledged at offset %d", old, a.pr.BaseOffset)
	default:
		t.Logf("acks=all produce to the cut-off leader: %v", kerr.ErrorForCode(a.pr.ErrorCode))
	}

	// The controller replaces it.
	var now, nowEpoch int32
	eventually(t, 20*time.Second, "a new leader", func() error {
		for id := int32(1); id <= 3; id++ {
			if id == old {
				continue
			}
			l, e, _, err := partitionLeader(ctx, admin, id, topic, 0)
			if err != nil {
				return err
			}
			if l < 1 || l == old {
				return fmt.Errorf("node %d: leader %d", id, l)
			}
			now, nowEpoch = l, e
		}
		return nil
	})
	replacedAt := time.Now()
	if n := fetches.count(old) - fetchesBefore; n == 0 {
		t.Fatalf("the consumer fetched nothing from the cut-off leader %d in the %v it held the records",
			old, replacedAt.Sub(heldAt).Round(time.Millisecond))
	} else {
		t.Logf("the consumer had %d fetches answered by the cut-off leader in %v; new leader %d (epoch %d)",
			n, replacedAt.Sub(heldAt).Round(time.Millisecond), now, nowEpoch)
	}
	if e := oldLog.LogEndOffset(); e != heldEnd {
		t.Fatalf("the cut-off leader's end moved from %d to %d", heldEnd, e)
	}
	// The new leader takes committed records at the offsets the old one
	// holds uncommitted ones at.
	produce([]string{c.brokers[now-1].Addr()}, values("during", nDuring))

	// Heal; watch the old leader's log end while it truncates and catches
	// up (sampled every millisecond: a drop shorter than that goes
	// unseen, the final comparison below catches what it leaves).
	var lowest atomic.Int64
	lowest.Store(int64(heldEnd))
	wctx, wcancel := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for wctx.Err() == nil {
			if e := int64(oldLog.LogEndOffset()); e < lowest.Load() {
				lowest.Store(e)
			}
			time.Sleep(time.Millisecond) // sampling interval
		}
	}()
	c.net.HealAll()
	produce([]string{c.brokers[now-1].Addr()}, values("after", nAfter))
	end := hw0 + base.Offset(nDuring+nAfter)
	waitReplicated(t, c, topic, 0, end, 30*time.Second)
	wcancel()
	<-watchDone
	if low := base.Offset(lowest.Load()); low < hw0 {
		t.Fatalf("the old leader truncated to %d, below the high watermark %d it held", low, hw0)
	} else {
		t.Logf("the old leader's log end went from %d down to %d (the high watermark %d), then to %d", heldEnd, low, hw0, end)
	}
	if got := logBytes(t, oldLog, hw0); string(got) != string(heldBelowHW) {
		t.Fatalf("the old leader's log below the high watermark %d changed", hw0)
	}
	checkReplicasAgree(t, c, topic, 0)
	newLog := partitionLog(c.brokers[now-1], topic, 0)
	if e := batchEpochs(t, oldLog, end)[int64(hw0)]; e <= oldEpoch {
		t.Fatalf("the old leader's batch at %d has leader epoch %d, want one after %d", hw0, e, oldEpoch)
	}

	// The consumer read exactly the final log.
	eventually(t, 20*time.Second, "the consumer at the end", func() error {
		if n := readCount(); n < int(end) {
			return fmt.Errorf("%d of %d read", n, end)
		}
		return nil
	})
	ccancel()
	<-consDone
	want := logRecords(t, newLog, end)
	readMu.Lock()
	defer readMu.Unlock()
	for _, r := range read {
		if uncommitted[r.Value] || strings.HasPrefix(r.Value, "uncommitted-") {
			t.Fatalf("the consumer read %q at offset %d, never committed", r.Value, r.Offset)
		}
	}
	for _, r := range want {
		if strings.HasPrefix(r.Value, "uncommitted-") {
			t.Fatalf("the final log holds %q at offset %d", r.Value, r.Offset)
		}
	}
	if diff := cmp.Diff(want, read); diff != "" {
		t.Fatalf("the consumer did not read the final log (-log +read):\n%s", diff)
	}
	t.Logf("the consumer read %d records, the final log offset by offset", len(read))
}
