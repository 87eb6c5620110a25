package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/batch"
	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// startReplicatedCluster starts n brokers replicating with a short
// replica lag time.
func startReplicatedCluster(t *testing.T, n int, lag time.Duration) *testCluster {
	t.Helper()
	return startTestClusterWith(t, make([]string, n), func(i int, o *Options) {
		o.ReplicaLagTime = lag
	})
}

// createTopicEventually creates topic with partitions, replication factor
// 3 and configs through adm, retrying for up to d while the cluster
// settles; TOPIC_ALREADY_EXISTS on a retry is a create whose answer was
// lost.
func createTopicEventually(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, partitions int32, configs map[string]*string, d time.Duration) {
	t.Helper()
	tried := false
	eventually(t, d, "topic "+topic+" created", func() error {
		r, err := adm.CreateTopic(ctx, partitions, 3, configs, topic)
		if err == nil {
			err = r.Err
		}
		if tried && errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		tried = true
		return err
	})
}

// partitionLog returns broker b's storage log of topic/p, nil if it has
// none.
func partitionLog(b *Broker, topic string, p int32) *storageLog {
	t, ok := b.reg.Get(topic)
	if !ok {
		return nil
	}
	lp, ok := t.Partition(p)
	if !ok {
		return nil
	}
	sl, _ := lp.Log().(*storageLog)
	return sl
}

// logBytes returns every batch of l below end.
func logBytes(t *testing.T, l *storageLog, end base.Offset) []byte {
	t.Helper()
	var out []byte
	for from := l.LogStartOffset(); from < end; {
		b, err := l.ReadReplica(from, 1<<20)
		if err != nil {
			t.Fatalf("read %d: %v", from, err)
		}
		if len(b) == 0 {
			break
		}
		for len(b) > 0 {
			h, err := parseHeaderForTest(b)
			if err != nil {
				t.Fatal(err)
			}
			if base.Offset(h.BaseOffset) >= end {
				return out
			}
			out = append(out, b[:h.Size()]...)
			b = b[h.Size():]
			from = base.Offset(h.LastOffset() + 1)
		}
	}
	return out
}

// checkReplicasAgree fails unless every running broker's log of topic/p
// holds the same batches below the smallest high watermark, and returns
// that high watermark.
func checkReplicasAgree(t *testing.T, c *testCluster, topic string, p int32) base.Offset {
	t.Helper()
	var logs []*storageLog
	hw := base.Offset(-1)
	for i, b := range c.brokers {
		if !c.nodes.Running(int32(i + 1)) {
			continue
		}
		if l := partitionLog(b, topic, p); l != nil {
			logs = append(logs, l)
			if h := l.HighWatermark(); hw < 0 || h < hw {
				hw = h
			}
		}
	}
	var want []byte
	for i, l := range logs {
		got := logBytes(t, l, hw)
		if i == 0 {
			want = got
		} else if !bytes.Equal(got, want) {
			t.Fatalf("%s/%d: replica logs differ below the high watermark %d", topic, p, hw)
		}
	}
	return hw
}

// waitReplicated waits until every running replica of topic/p has end
// offset and high watermark end.
func waitReplicated(t *testing.T, c *testCluster, topic string, p int32, end base.Offset, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("%s/%d replicated to %d everywhere", topic, p, end), func() error {
		for i, b := range c.brokers {
			if !c.nodes.Running(int32(i + 1)) {
				continue
			}
			l := partitionLog(b, topic, p)
			if l == nil {
				return fmt.Errorf("node %d has no log", i+1)
			}
			if l.LogEndOffset() != end || l.HighWatermark() != end {
				return fmt.Errorf("node %d: end %d hw %d", i+1, l.LogEndOffset(), l.HighWatermark())
			}
		}
		return nil
	})
}

// TestClusterReplication: a topic with replication factor 3 on three
// brokers: acks=all produces are acknowledged, every broker's log holds the
// same batches (offsets and leader epochs included), and consumers read
// every record from the leaders.
func TestClusterReplication(t *testing.T) {
	c := startReplicatedCluster(t, 3, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("r"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	createTopicEventually(t, ctx, adm, "r", 2, nil, 15*time.Second)
	const n = 300
	for i := range n {
		r := &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	for p := range int32(2) {
		waitReplicated(t, c, "r", p, n/2, 15*time.Second)
		if hw := checkReplicasAgree(t, c, "r", p); hw != n/2 {
			t.Fatalf("partition %d: high watermark %d, want %d", p, hw, n/2)
		}
	}
	// DeleteRecords on the leader reaches every replica's log start.
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: "r", Partition: 1, At: 10})
	if rs, err := adm.DeleteRecords(ctx, del); err != nil || rs.Error() != nil {
		t.Fatalf("delete records: %v %v", err, rs.Error())
	}
	eventually(t, 10*time.Second, "every replica's log start at 10", func() error {
		for i, b := range c.brokers {
			if s := partitionLog(b, "r", 1).LogStartOffset(); s != 10 {
				return fmt.Errorf("node %d: log start %d", i+1, s)
			}
		}
		return nil
	})
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics("r"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < n-10 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	var want []string
	for i := range n {
		if i%2 == 1 && i/2 < 10 {
			continue // deleted: offsets 0-9 of partition 1
		}
		want = append(want, fmt.Sprintf("v%d", i))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("consumed %d records, not the %d produced", len(got), n)
	}
}

func parseHeaderForTest(b []byte) (batch.Header, error) { return batch.ParseHeader(b) }

// partitionLeader asks node via's metadata for topic/p's leader and ISR.
func partitionLeader(ctx context.Context, cl *kgo.Client, via int32, topic string, p int32) (int32, int32, []int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	raw, err := cl.Broker(int(via)).Request(ctx, req)
	if err != nil {
		return 0, 0, nil, err
	}
	m := raw.(*kmsg.MetadataResponse)
	if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 || int(p) >= len(m.Topics[0].Partitions) {
		return 0, 0, nil, fmt.Errorf("metadata of %s from %d: %+v", topic, via, m.Topics)
	}
	mp := m.Topics[0].Partitions[p]
	return mp.Leader, mp.LeaderEpoch, mp.ISR, nil
}

// ackLog is what a background producer had acknowledged.
type ackLog struct {
	mu    sync.Mutex
	acked []int
	errs  int
}

func (a *ackLog) count() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.acked) }

// produceInBackground produces "0", "1", ... to topic/0 one at a time with
// an idempotent acks=all client until the returned stop is called; stop
// closes the client (failing what it still holds) and waits for the loop.
func produceInBackground(t *testing.T, c *testCluster, topic string) (*ackLog, func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(20*time.Second), kgo.ProduceRequestTimeout(3*time.Second),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	a := &ackLog{}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr()
			cancel()
			a.mu.Lock()
			if err == nil {
				a.acked = append(a.acked, i)
			} else {
				a.errs++
			}
			a.mu.Unlock()
		}
	}()
	var once sync.Once
	return a, func() {
		once.Do(func() {
			close(quit)
			cl.Close() // fails the record in flight, if any
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("the background producer did not stop within 30s of its client closing")
			}
		})
	}
}

// consumeAll reads topic/0 from the start up to its high watermark on the
// current leader.
func consumeAll(t *testing.T, c *testCluster, topic string, want int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < want {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), want, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("consume: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestClusterReplicationFailover: an idempotent acks=all producer keeps
// producing to a replicated partition while (1) its leader shuts down and
// comes back, and (2) its next leader is isolated from every other node
// (as a crash would, while clients still reach it) and healed. Produces
// sent to the isolated leader are never acknowledged; the new leader is
// one of the ISR; the returning leader truncates exactly the records it
// took while isolated; in the end every replica holds the same log, and a
// consumer reads every acknowledged record exactly once, in order, and
// none of the isolated leader's records.
func TestClusterReplicationFailover(t *testing.T) {
	c := startReplicatedCluster(t, 3, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopicEventually(t, ctx, kadm.NewClient(cl), "f", 1, nil, 15*time.Second)
	leaderOf := func(via int32) (int32, int32, []int32) {
		var l, e int32
		var isr []int32
		eventually(t, 20*time.Second, "a leader with an ISR of 3", func() error {
			var err error
			l, e, isr, err = partitionLeader(ctx, cl, via, "f", 0)
			if err == nil && (l < 1 || len(isr) != 3) {
				err = fmt.Errorf("leader %d isr %v", l, isr)
			}
			return err
		})
		return l, e, isr
	}
	acks, stopProducer := produceInBackground(t, c, "f")
	defer stopProducer()
	waitAcks := func(n int, what string) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() error {
			if got := acks.count(); got < n {
				return fmt.Errorf("%d acknowledged", got)
			}
			return nil
		})
	}
	waitAcks(50, "first acknowledgements")

	// (1) Controlled shutdown of the leader: an ISR member takes over.
	l1, e1, _ := leaderOf(1)
	other := l1%3 + 1
	c.nodes.Stop(l1)
	base1 := acks.count()
	waitAcks(base1+50, "acknowledgements after the leader shut down")
	l, e, _, err := partitionLeader(ctx, cl, other, "f", 0)
	if err != nil || l == l1 || e <= e1 {
		t.Fatalf("after leader %d (epoch %d) shut down: leader %d epoch %d (%v)", l1, e1, l, e, err)
	}
	c.nodes.Restart(l1)
	c.brokers[l1-1] = c.nodes.Node(l1)
	l2, e2, _ := leaderOf(other)

	// (2) The leader is cut off from every node (clients still reach it).
	c.net.Isolate(faultnet.NodeID(l2))
	for i := range 3 {
		code := rawProduce(t, c.brokers[l2-1].Addr(), "f", 0, fmt.Sprintf("iso-%d", i), 1000)
		if code == 0 {
			t.Fatalf("a produce to the isolated leader %d was acknowledged", l2)
		}
		t.Logf("produce to the isolated leader: %v", kerr.ErrorForCode(code))
	}
	isoLog := partitionLog(c.brokers[l2-1], "f", 0)
	if isoLog.LogEndOffset() <= isoLog.HighWatermark() {
		t.Fatalf("the isolated leader holds no uncommitted records (end %d, hw %d)", isoLog.LogEndOffset(), isoLog.HighWatermark())
	}
	base2 := acks.count()
	waitAcks(base2+50, "acknowledgements on a new leader while the old one is isolated")
	c.net.HealAll()
	l3, e3, _ := leaderOf(other%3 + 1)
	if l3 == l2 || e3 <= e2 {
		t.Fatalf("after isolating leader %d (epoch %d): leader %d epoch %d", l2, e2, l3, e3)
	}
	waitAcks(acks.count()+20, "acknowledgements after the heal")
	stopProducer()
	// A produce the closing client had already sent may still land: take
	// the leader's end once every replica has caught up with it.
	var end base.Offset
	eventually(t, 20*time.Second, "f/0 replicated everywhere", func() error {
		end = partitionLog(c.brokers[l3-1], "f", 0).LogEndOffset()
		for i, b := range c.brokers {
			if l := partitionLog(b, "f", 0); l == nil || l.LogEndOffset() != end || l.HighWatermark() != end {
				return fmt.Errorf("node %d behind the leader's end %d", i+1, end)
			}
		}
		return nil
	})
	checkReplicasAgree(t, c, "f", 0)

	acks.mu.Lock()
	acked := slices.Clone(acks.acked)
	acks.mu.Unlock()
	got := consumeAll(t, c, "f", int(end))
	seen := map[string]bool{}
	last := -1
	for _, v := range got {
		if strings.HasPrefix(v, "iso-") {
			t.Fatalf("consumed %q, produced to the isolated leader and never acknowledged", v)
		}
		if seen[v] {
			t.Fatalf("record %q read twice", v)
		}
		seen[v] = true
		n, _ := strconv.Atoi(v)
		if n <= last {
			t.Fatalf("record %d after %d: out of order", n, last)
		}
		last = n
	}
	for _, a := range acked {
		if !seen[strconv.Itoa(a)] {
			t.Fatalf("acknowledged record %d lost (leaders %d, %d, %d)", a, l1, l2, l3)
		}
	}
	t.Logf("%d acknowledged, %d failed, %d in the log; leaders %d (epoch %d), %d (epoch %d), %d (epoch %d)",
		len(acked), acks.errs, len(got), l1, e1, l2, e2, l3, e3)
}

// rawProduce sends one record to addr with acks=all and returns the
// partition's error code.
func rawProduce(t *testing.T, addr, topic string, p int32, value string, timeoutMS int32) int16 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now().UnixMilli()
	b, err := batch.Build(batch.Header{FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]batch.Record{{Value: []byte(value)}}, batch.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, timeoutMS
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMS)*time.Millisecond+5*time.Second)
	defer cancel()
	raw, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return kerr.RequestTimedOut.Code
	}
	return raw.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// TestClusterReplicationEpochsAndMinISR: leader epochs on the wire
// (OffsetForLeaderEpoch, advertised in cluster mode; a future
// CurrentLeaderEpoch on OffsetForLeaderEpoch and Fetch to the leader;
// TestClusterCurrentLeaderEpoch has every answer on every API that takes
// it) and min.insync.replicas: with one of three replicas down an acks=all
// produce to a topic requiring 3 in sync is refused with
// NOT_ENOUGH_REPLICAS before anything is written, and succeeds once the
// replica is back in the ISR.
func TestClusterReplicationEpochsAndMinISR(t *testing.T) {
	c := startReplicatedCluster(t, 3, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	three := "3"
	createTopicEventually(t, ctx, kadm.NewClient(cl), "m", 1, map[string]*string{"min.insync.replicas": &three}, 15*time.Second)
	var leader int32
	eventually(t, 15*time.Second, "a leader that accepts acks=all", func() error {
		l, _, isr, err := partitionLeader(ctx, cl, 1, "m", 0)
		if err != nil {
			return err
		}
		if l < 1 || len(isr) != 3 {
			return fmt.Errorf("leader %d isr %v", l, isr)
		}
		leader = l
		if code := rawProduce(t, c.brokers[l-1].Addr(), "m", 0, "a", 5000); code != 0 {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
	lc := newClient(t, c.brokers[leader-1])
	sb := lc.SeedBrokers()[0]

	// ApiVersions advertises OffsetForLeaderEpoch; it answers epoch 0.
	av, err := sb.Request(ctx, kmsg.NewPtrApiVersionsRequest())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(av.(*kmsg.ApiVersionsResponse).ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == 23 }) {
		t.Fatal("OffsetForLeaderEpoch is not advertised in cluster mode")
	}

	ofe := func(current, epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "m"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, current, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		raw, err := sb.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return raw.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	}
	// NB: a first attempt that timed out may have been written too.
	end := int64(partitionLog(c.brokers[leader-1], "m", 0).LogEndOffset())
	if got := ofe(0, 0); got.ErrorCode != 0 || got.LeaderEpoch != 0 || got.EndOffset != end || end < 1 {
		t.Fatalf("OffsetForLeaderEpoch(0): %+v, want epoch 0 ending at %d", got, end)
	}
	if got := ofe(7, 0); got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("OffsetForLeaderEpoch with a future current epoch: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	freq := kmsg.NewPtrFetchRequest()
	freq.SetVersion(12)
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "m"
	if tp, ok := c.brokers[leader-1].reg.Get("m"); ok {
		ft.TopicID = tp.ID() // kgo sends v13, by topic id
	}
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.CurrentLeaderEpoch, fp.PartitionMaxBytes = 0, 3, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	fraw, err := sb.Request(ctx, freq)
	if err != nil {
		t.Fatal(err)
	}
	if code := fraw.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("Fetch with a future leader epoch: %v", kerr.ErrorForCode(code))
	}

	// One follower down: the ISR shrinks to 2 < 3.
	follower := leader%3 + 1
	c.nodes.Stop(follower)
	eventually(t, 15*time.Second, "NOT_ENOUGH_REPLICAS", func() error {
		if code := rawProduce(t, c.brokers[leader-1].Addr(), "m", 0, "b", 1000); code != kerr.NotEnoughReplicas.Code {
			return fmt.Errorf("produce: %v", kerr.ErrorForCode(code))
		}
		return nil
	})
	before := partitionLog(c.brokers[leader-1], "m", 0).LogEndOffset()
	if code := rawProduce(t, c.brokers[leader-1].Addr(), "m", 0, "c", 1000); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("produce with 2 in sync: %v", kerr.ErrorForCode(code))
	}
	if after := partitionLog(c.brokers[leader-1], "m", 0).LogEndOffset(); after != before {
		t.Fatalf("a refused produce was written: end %d -> %d", before, after)
	}
	c.nodes.Restart(follower)
	c.brokers[follower-1] = c.nodes.Node(follower)
	eventually(t, 20*time.Second, "the follower back in the ISR, acks=all accepted", func() error {
		if code := rawProduce(t, c.brokers[leader-1].Addr(), "m", 0, "d", 2000); code != 0 {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
}
