package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// faultSeed returns the seed of a fault test, WEIR_FAULT_SEED when set,
// and logs it.
func faultSeed(t *testing.T) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("WEIR_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WEIR_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (WEIR_FAULT_SEED=%d replays it)", seed, seed)
	return seed
}

// mkdirSynced creates dir on fs with every directory entry on its path
// synced, as a data directory that existed before the broker started.
func mkdirSynced(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		f, err := fs.OpenDir(d)
		if err != nil {
			t.Fatal(err)
		}
		err = f.Sync()
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if d == filepath.Dir(d) {
			return
		}
	}
}

// plAck is one record the power-loss producer had acknowledged.
type plAck struct {
	p     int32
	seq   int
	phase int32 // plBefore, plCrashing, plDark or plAfter
}

// Phases of TestClusterReplicationPowerLoss, as its producer sees them
// when an acknowledgement arrives. Every record acknowledged before the
// power loss (the crash clone) or after the restarts must survive. In
// between, the victims are without power in the simulation, but their
// processes run on until stopped and clients still reach them: a victim
// leader's own fsync finishing then can raise its high watermark to what
// its follower had reported and acknowledge records whose synced copy on
// the leader the clone does not have. No machine without power
// acknowledges anything, so those may be lost; the test counts them.
const (
	plBefore   int32 = iota // before the victims were cut off
	plCrashing              // from the cut to the power loss
	plDark                  // from the power loss to the restarts
	plAfter                 // after both restarts
)

// TestClusterReplicationPowerLoss: three brokers keep their whole data
// directories (topic registry, metadata raft log, partition logs) on one
// crashable memory filesystem; an idempotent acks=all producer writes to
// three partitions with replication factor 3 (min.insync.replicas 2).
// Under that load two brokers (chosen by the seed) are cut off from every
// node and lose power at the same moment: one crash clone of the
// filesystem, keeping what was synced and a seeded share of what was not,
// 4 KiB block by block. They restart on the clone while the third runs
// on. Then every replica holds the same batches, and a consumer reads
// every acknowledged record exactly once, in order per partition. With the
// seed's "lagging", the survivor is cut off first and has left every ISR
// when the power fails, so the records acknowledged since are on the
// victims' disks only.
//
// Every record acknowledged before the power loss must survive, those
// acknowledged between the cut and the power loss too: the high watermark
// counts only what every ISR replica has fsynced and acks=all is answered
// at the high watermark, so an acknowledged record is on the synced part
// of every ISR replica's disk when its answer leaves, which the crash
// clone keeps. An ISR of one (where two crashes could take a record's only
// synced copy) acknowledges nothing: min.insync.replicas is 2. The victims
// are cut off before the clone so that nothing they do after the moment of
// the power loss (a follower's fetch reporting an end the clone then
// loses) reaches another node; what they still answer clients until they
// are stopped is counted apart (plDark).
func TestClusterReplicationPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("power-loss cluster test: not in -short")
	}
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	victims := []int32{1, 2, 3}
	rng.Shuffle(3, func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	survivor := victims[2]
	victims = victims[:2]
	unsynced := 0 // share of unsynced 4 KiB blocks and entries the clone keeps
	if rng.IntN(3) > 0 {
		unsynced = 1 + rng.IntN(90)
	}
	crashAt := 1000 + rng.IntN(2000) // acknowledgements before the power loss
	// lagging: the survivor is cut off first and leaves the ISRs, so that
	// what is acknowledged next is on the two victims only.
	lagging := rng.IntN(2) == 0
	t.Logf("power loss on nodes %v at %d acknowledgements, keeping %d%% of unsynced blocks; node %d runs on (out of the ISR before: %v)",
		victims, crashAt, unsynced, survivor, lagging)

	mem := vfs.NewCrashableMem()
	fsOf := []vfs.FS{mem, mem, mem} // node i+1's filesystem at its next open
	c := startTestClusterWith(t, make([]string, 3), func(i int, o *Options) {
		o.ReplicaLagTime, o.dataFS = time.Second, fsOf[i]
		mkdirSynced(t, fsOf[i], o.DataDir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const topic, parts = "pl", 3

	acl := newClusterClient(t, c)
	adm := kadm.NewClient(acl)
	createTopicEventually(t, ctx, adm, topic, parts, nil, 20*time.Second)
	for p := range int32(parts) {
		eventually(t, 20*time.Second, fmt.Sprintf("%s/%d with an ISR of 3", topic, p), func() error {
			l, _, isr, err := partitionLeader(ctx, acl, survivor, topic, p)
			if err == nil && (l < 1 || len(isr) != 3) {
				err = fmt.Errorf("leader %d isr %v", l, isr)
			}
			return err
		})
	}

	// The producer: three records a millisecond at most, one a partition,
	// each value the partition's next sequence number.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(45*time.Second), kgo.ProduceRequestTimeout(3*time.Second),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MaxBufferedRecords(3000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var (
		phase   atomic.Int32
		mu      sync.Mutex
		acked   []plAck
		failed  int
		stopped = make(chan struct{})
		done    = make(chan struct{})
	)
	ackCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond) // a rate, not synchronization
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-stopped:
				return
			case <-tick.C:
			}
			for p := range int32(parts) {
				r := &kgo.Record{Partition: p, Value: []byte(strconv.Itoa(seq))}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed++
						return
					}
					acked = append(acked, plAck{p: r.Partition, seq: seq, phase: phase.Load()})
				})
			}
		}
	}()
	stopProducer := sync.OnceFunc(func() {
		close(stopped)
		<-done
		fctx, fcancel := context.WithTimeout(ctx, 50*time.Second)
		defer fcancel()
		if err := cl.Flush(fctx); err != nil {
			t.Errorf("flushing the producer: %v", err)
		}
	})
	defer stopProducer()
	waitAcks := func(n int, what string) {
		t.Helper()
		eventually(t, 45*time.Second, what, func() error {
			if got := ackCount(); got < n {
				return fmt.Errorf("%d acknowledged", got)
			}
			return nil
		})
	}
	waitAcks(crashAt, "acknowledgements before the power loss")
	if lagging {
		c.net.Isolate(faultnet.NodeID(survivor))
		for p := range int32(parts) {
			eventually(t, 20*time.Second, fmt.Sprintf("node %d out of the ISR of %s/%d", survivor, topic, p), func() error {
				_, _, isr, err := partitionLeader(ctx, acl, victims[0], topic, p)
				if err == nil && (len(isr) != 2 || slices.Contains(isr, survivor)) {
					err = fmt.Errorf("isr %v", isr)
				}
				return err
			})
		}
		waitAcks(ackCount()+crashAt/2, "acknowledgements by the two victims alone")
	}

	// Power loss: the victims first stop hearing and being heard (a node
	// without power sends nothing more), then both lose what they had not
	// synced in one clone. What they do after it is forgotten.
	for _, v := range victims {
		c.net.Isolate(faultnet.NodeID(v))
	}
	phase.Store(plCrashing)
	clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rng})
	phase.Store(plDark)
	for _, v := range victims {
		c.nodes.Stop(v)
	}
	c.net.HealAll()
	for _, v := range victims {
		fsOf[v-1] = clone
		c.nodes.Restart(v)
		c.brokers[v-1] = c.nodes.Node(v)
	}
	phase.Store(plAfter)
	waitAcks(ackCount()+1000, "acknowledgements after the restarts")
	stopProducer()

	// Every replica of every partition catches up with its leader's end;
	// the replicas agree batch by batch.
	ends := make([]base.Offset, parts)
	for p := range int32(parts) {
		eventually(t, 30*time.Second, fmt.Sprintf("%s/%d replicated everywhere", topic, p), func() error {
			var end base.Offset = -1
			for i, b := range c.brokers {
				l := partitionLog(b, topic, p)
				if l == nil {
					return fmt.Errorf("node %d has no log", i+1)
				}
				if end < 0 {
					end = l.LogEndOffset()
				}
				if l.LogEndOffset() != end || l.HighWatermark() != end {
					return fmt.Errorf("node %d: end %d hw %d, node 1's end %d", i+1, l.LogEndOffset(), l.HighWatermark(), end)
				}
			}
			ends[p] = end
			return nil
		})
		checkReplicasAgree(t, c, topic, p)
	}

	// Read everything back.
	total := 0
	for _, e := range ends {
		total += int(e)
	}
	cons := newClusterClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	got := make([][]int, parts)
	for n := 0; n < total; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", n, total, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("consume: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil {
				t.Fatalf("%s/%d@%d: value %q", topic, r.Partition, r.Offset, r.Value)
			}
			got[r.Partition] = append(got[r.Partition], v)
			n++
		})
	}
	seen := make([]map[int]bool, parts)
	for p, vs := range got {
		seen[p] = map[int]bool{}
		last := -1
		for _, v := range vs {
			if v <= last {
				t.Fatalf("%s/%d: record %d read after %d (duplicate or out of order)", topic, p, v, last)
			}
			last = v
			seen[p][v] = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var byPhase [4]int
	darkLost := 0
	for _, a := range acked {
		byPhase[a.phase]++
		if seen[a.p][a.seq] {
			continue
		}
		if a.phase == plDark {
			darkLost++
			continue
		}
		t.Fatalf("%s/%d: record %d acknowledged %s and lost", topic, a.p, a.seq,
			[]string{"before the cut", "between the cut and the power loss", "", "after the restarts"}[a.phase])
	}
	t.Logf("%d acknowledged before the cut, %d between the cut and the power loss, %d by powerless victims (%d of them lost), %d after the restarts; %d failed; %d records in the log",
		byPhase[plBefore], byPhase[plCrashing], byPhase[plDark], darkLost, byPhase[plAfter], failed, total)
}

// newClusterClient is a client of every broker of c, closed at the end of
// the test.
func newClusterClient(t *testing.T, c *testCluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
