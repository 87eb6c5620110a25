package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// TestClusterReplicationRandomSchedule: three in-process brokers, each with
// its data directory (topic registry, metadata raft log, partition logs) on
// its own crashable memory filesystem, a partition with replication factor
// 3, an idempotent acks=all producer running throughout with up to 64
// records in flight, and a seeded random schedule of steps: produce (wait
// for more acknowledgements), consume (poll a consumer that stays open),
// crash a node, stop one gracefully, restart it, cut a node from every
// other node and heal it. A crash cuts the node off (a node without power
// says nothing more), takes a crash clone of its filesystem that keeps what
// was synced and a seeded share of what was not, 4 KiB block by block, then
// stops it: nothing it writes after the clone survives, and it restarts on
// the clone. At most one node is down or cut at a time, and a restart (once
// the node's new incarnation is registered) or heal waits for the ISR to be
// whole again before the schedule goes on, so the partition always has
// min.insync.replicas of it. After a final heal and restart every replica
// holds the same log, and the consumer that ran throughout, then a fresh
// one, read every acknowledged record exactly once, in order.
// WEIR_FAULT_SEED replays the schedule and each clone's random choices (not
// the timing, so not which bytes were unsynced at the crash);
// WEIR_CLUSTER_SEED the fault layer's own choices.
func TestClusterReplicationRandomSchedule(t *testing.T) {
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	const steps = 40
	// Each node keeps its client address across restarts, as a restarted
	// process would: clients know no other.
	addrs := make([]string, 3)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		_ = ln.Close()
	}
	// fsOf[i] is node i+1's filesystem at its next open: a crash replaces
	// it with the clone the node restarts on.
	fsOf := make([]*vfs.MemFS, 3)
	for i := range fsOf {
		fsOf[i] = vfs.NewCrashableMem()
	}
	c := startTestClusterWith(t, make([]string, 3), func(i int, o *Options) {
		o.ReplicaLagTime, o.Listen, o.dataFS = time.Second, addrs[i], fsOf[i]
		mkdirSynced(t, fsOf[i], o.DataDir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := newClusterClient(t, c)
	createTopicEventually(t, ctx, kadm.NewClient(cl), "rr", 1, nil, 15*time.Second)
	// fullISR asks each node for the partition's leader and ISR.
	fullISR := func() error {
		for i, b := range c.brokers {
			one, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
			if err != nil {
				return err
			}
			req := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr("rr")
			req.Topics = append(req.Topics, mt)
			m, err := req.RequestWith(ctx, one)
			one.Close()
			if err != nil {
				return fmt.Errorf("node %d: %w", i+1, err)
			}
			if len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 1 {
				return fmt.Errorf("node %d: metadata %+v", i+1, m.Topics)
			}
			if mp := m.Topics[0].Partitions[0]; mp.Leader < 1 || len(mp.ISR) != 3 {
				return fmt.Errorf("node %d: leader %d isr %v", i+1, mp.Leader, mp.ISR)
			}
		}
		return nil
	}
	eventually(t, 20*time.Second, "a leader with an ISR of 3", fullISR)
	// rejoined waits until node id's new incarnation is registered and
	// unfenced in every running node's image, then for the ISR to be
	// whole. NB: a node restarted before the controller noticed its crash
	// finds the ISR as it left it; only its registration (which takes it
	// out of every ISR and moves its leaderships away) makes a whole ISR
	// mean it has caught up again.
	rejoined := func(k int, id int32) {
		t.Helper()
		eventually(t, 40*time.Second, fmt.Sprintf("step %d: node %d registered again", k, id), func() error {
			e := c.brokers[id-1].cn.BrokerEpoch()
			if e < 0 {
				return fmt.Errorf("node %d not registered", id)
			}
			for i, b := range c.brokers {
				if !c.nodes.Running(int32(i + 1)) {
					continue
				}
				r, ok := b.cn.Image().Broker(metadata.NodeID(id))
				if !ok || int64(r.Epoch) != e || r.Fenced {
					return fmt.Errorf("node %d's image: %+v (registered %v), want epoch %d unfenced", i+1, r, ok, e)
				}
			}
			return nil
		})
		eventually(t, 40*time.Second, fmt.Sprintf("step %d: the ISR whole again", k), fullISR)
	}

	acks, stopProducer := producePipelined(t, c, "rr")
	defer stopProducer()
	waitAcks := func(n int, what string) {
		t.Helper()
		eventually(t, 40*time.Second, what, func() error {
			if got := acks.count(); got < n {
				return fmt.Errorf("%d acknowledged", got)
			}
			return nil
		})
	}

	// The consumer stays open across the schedule: each offset once, in
	// order.
	cons := newClusterClient(t, c, kgo.ConsumeTopics("rr"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond))
	var read []string
	last := int64(-1)
	poll := func(d time.Duration) {
		t.Helper()
		pctx, pcancel := context.WithTimeout(ctx, d)
		defer pcancel()
		for pctx.Err() == nil {
			fs := cons.PollFetches(pctx)
			fs.EachError(func(_ string, _ int32, err error) {
				if pctx.Err() == nil {
					t.Logf("consumer: %v", err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != last+1 {
					t.Fatalf("consumer: offset %d after %d", r.Offset, last)
				}
				last = r.Offset
				read = append(read, string(r.Value))
			})
		}
	}

	waitAcks(20, "first acknowledgements")
	down, cut := int32(0), int32(0) // the node stopped or cut, 0 if none
	for k := range steps {
		kind := rng.IntN(6)
		switch {
		case kind == 0:
			n := acks.count() + 10 + rng.IntN(40)
			t.Logf("step %d: produce to %d acknowledgements", k+1, n)
			waitAcks(n, fmt.Sprintf("step %d: %d acknowledgements", k+1, n))
		case kind == 1:
			d := time.Duration(200+rng.IntN(1000)) * time.Millisecond
			poll(d)
			t.Logf("step %d: consume for %v, to offset %d", k+1, d, last+1)
		case down != 0:
			t.Logf("step %d: restart node %d", k+1, down)
			c.restartNode(down)
			rejoined(k+1, down)
			down = 0
		case cut != 0:
			t.Logf("step %d: heal node %d", k+1, cut)
			c.net.HealAll()
			cut = 0
			eventually(t, 40*time.Second, fmt.Sprintf("step %d: the ISR whole again", k+1), fullISR)
		case kind <= 3:
			down = int32(1 + rng.IntN(3))
			unsynced := 0 // share of unsynced 4 KiB blocks and entries the clone keeps
			if rng.IntN(3) > 0 {
				unsynced = 1 + rng.IntN(90)
			}
			// NB: the clone draws from its own generator, seeded from the
			// schedule's, so that the steps after it do not depend on how
			// many files and blocks it drew for.
			cloneSeed := rng.Uint64()
			t.Logf("step %d: crash node %d, keeping %d%% of its unsynced blocks (clone seed %d; seed %d)",
				k+1, down, unsynced, cloneSeed, seed)
			c.net.Isolate(faultnet.NodeID(down))
			fsOf[down-1] = fsOf[down-1].CrashClone(vfs.CrashCloneCfg{
				UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(cloneSeed, cloneSeed)),
			})
			c.nodes.Stop(down)
			c.net.HealAll() // no other node was cut: the crash's own cut
		case kind == 4:
			down = int32(1 + rng.IntN(3))
			t.Logf("step %d: stop node %d", k+1, down)
			c.nodes.Stop(down)
		default:
			cut = int32(1 + rng.IntN(3))
			t.Logf("step %d: cut node %d from the others", k+1, cut)
			c.net.Isolate(faultnet.NodeID(cut))
		}
	}

	// The final heal: every node back, every ISR whole, then more
	// acknowledgements.
	c.net.HealAll()
	if down != 0 {
		c.restartNode(down)
		rejoined(steps+1, down)
	}
	eventually(t, 40*time.Second, "a leader with an ISR of 3 after the final heal", fullISR)
	waitAcks(acks.count()+20, "acknowledgements after the final heal")
	stopProducer()
	var end base.Offset
	eventually(t, 20*time.Second, "rr/0 replicated everywhere", func() error {
		for i, b := range c.brokers {
			l := partitionLog(b, "rr", 0)
			if l == nil {
				return fmt.Errorf("node %d has no log", i+1)
			}
			if i == 0 {
				end = l.LogEndOffset()
			}
			if l.LogEndOffset() != end || l.HighWatermark() != end {
				return fmt.Errorf("node %d: end %d hw %d, node 1's end %d", i+1, l.LogEndOffset(), l.HighWatermark(), end)
			}
		}
		return nil
	})
	checkReplicasAgree(t, c, "rr", 0)

	eventually(t, 30*time.Second, "the running consumer at the end", func() error {
		poll(200 * time.Millisecond)
		if last+1 < int64(end) {
			return fmt.Errorf("read to %d of %d", last+1, end)
		}
		return nil
	})
	fresh := consumeAll(t, c, "rr", int(end))
	if !slices.Equal(fresh, read) {
		t.Fatalf("the running consumer read %d records, a fresh one %d, not the same", len(read), len(fresh))
	}
	acks.mu.Lock()
	acked := slices.Clone(acks.acked)
	acks.mu.Unlock()
	seen := map[string]bool{}
	prev := -1
	for _, v := range read {
		if seen[v] {
			t.Fatalf("record %q read twice", v)
		}
		seen[v] = true
		n, _ := strconv.Atoi(v)
		if n <= prev {
			t.Fatalf("record %d after %d: out of order", n, prev)
		}
		prev = n
	}
	for _, a := range acked {
		if !seen[strconv.Itoa(a)] {
			t.Fatalf("acknowledged record %d lost", a)
		}
	}
	t.Logf("%d acknowledged, %d failed, %d in the log (seed %d)", len(acked), acks.errs, len(read), seed)
}

// producePipelined produces "0", "1", ... to topic/0 with an idempotent
// acks=all client that keeps up to 64 records in flight (several batches
// a request, several requests a connection), 5,000 a second at most, until the returned stop is
// called; stop closes the client (failing what it still holds) and waits
// for the loop. Unlike produceInBackground's one record at a time, a
// leader that crashes then holds unsynced batches its followers may have
// fetched, and what the client sends again after a failure need not be
// batched as it was the first time.
func producePipelined(t *testing.T, c *testCluster, topic string) (*ackLog, func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(20*time.Second), kgo.ProduceRequestTimeout(3*time.Second),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MaxBufferedRecords(64), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	a := &ackLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// At most 5,000 records a second: on memory filesystems the
		// cluster takes far more, and every record stays in memory on
		// three nodes and in the consumers.
		tick := time.NewTicker(200 * time.Microsecond) // a rate, not synchronization
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// NB: Produce blocks while 64 records are buffered; the
			// callbacks of one partition run in order.
			cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				a.mu.Lock()
				defer a.mu.Unlock()
				if err == nil {
					a.acked = append(a.acked, i)
				} else {
					a.errs++
				}
			})
		}
	}()
	var once sync.Once
	return a, func() {
		once.Do(func() {
			cancel()
			cl.Close() // fails what it still holds
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("the pipelined producer did not stop within 30s of its client closing")
			}
		})
	}
}
