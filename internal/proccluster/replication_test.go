package proccluster_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/proccluster"
)

// acked is one acknowledged record.
type acked struct {
	offset int64
	value  string
}

// replHarness runs an idempotent acks=all producer and a consumer against
// a replicated topic on a process cluster while a test's faults play out,
// then checks that every acknowledged record is read exactly once, at its
// offset, in order (by that consumer and by a fresh one), and that every
// replica's log is identical below the high watermark.
type replHarness struct {
	t     *testing.T
	ctx   context.Context
	c     *proccluster.Cluster
	topic string
	parts int

	mu      sync.Mutex
	ackedBy [][]acked
	failed  int
}

// leaderOf returns partition p's leader and ISR as every running node
// says them (an error while they disagree: a restarted node replays an old
// state of the metadata first).
func (h *replHarness) leaderOf(p int32) (int32, []int32, error) {
	var leader int32 = -2
	var isr []int32
	for _, n := range h.c.Nodes() {
		if !n.Running() {
			continue
		}
		m, err := n.Metadata(h.ctx)
		if err != nil {
			return 0, nil, err
		}
		found := false
		for _, tp := range m.Topics {
			if tp.Topic != nil && *tp.Topic == h.topic && int(p) < len(tp.Partitions) {
				l, i := tp.Partitions[p].Leader, slices.Sorted(slices.Values(tp.Partitions[p].ISR))
				if leader != -2 && (l != leader || !slices.Equal(i, isr)) {
					return 0, nil, fmt.Errorf("node %d: leader %d isr %v; another node: leader %d isr %v", n.ID, l, i, leader, isr)
				}
				leader, isr, found = l, i, true
			}
		}
		if !found {
			return 0, nil, fmt.Errorf("node %d does not show %s/%d", n.ID, h.topic, p)
		}
	}
	if leader == -2 {
		return 0, nil, fmt.Errorf("no running node")
	}
	return leader, isr, nil
}

// fullISR is nil once every partition has a leader and an ISR of 3 on
// every running node.
func (h *replHarness) fullISR() error {
	for p := range int32(h.parts) {
		l, isr, err := h.leaderOf(p)
		if err != nil {
			return err
		}
		if l < 1 || len(isr) != 3 {
			return fmt.Errorf("partition %d: leader %d isr %v", p, l, isr)
		}
	}
	return nil
}

func (h *replHarness) count(p int32) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ackedBy[p])
}

// waitAcks waits until partition p has n acknowledgements.
func (h *replHarness) waitAcks(p int32, n int, what string) {
	h.t.Helper()
	eventually(h.t, 45*time.Second, what, func() error {
		if got := h.count(p); got < n {
			return fmt.Errorf("%d acknowledged on partition %d", got, p)
		}
		return nil
	})
}

// runReplicated starts a 3-broker cluster, a topic of parts partitions
// with replication factor 3 (min.insync.replicas 2, the default for it),
// the producer and a consumer reading throughout; runs faults; then stops
// the producer and checks.
func runReplicated(t *testing.T, topic string, parts int, faults func(h *replHarness)) {
	f := startFaultCluster(t, 4*time.Minute)
	c, ctx := f.c, f.ctx
	h := f.createReplicated(parts, topic)

	// The producer: records "p-i" to partition p, in order per partition.
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(90*time.Second), kgo.MaxBufferedRecords(2000),
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// The consumer, reading throughout the faults: it must see every
	// offset once, in order, with the record the final read finds there.
	live, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var liveMu sync.Mutex
	liveRead := make([]map[int64]string, parts)
	liveLast := make([]int64, parts)
	var liveErrs []string
	for p := range liveRead {
		liveRead[p], liveLast[p] = map[int64]string{}, -1
	}
	liveCtx, liveCancel := context.WithCancel(ctx)
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		for liveCtx.Err() == nil {
			fs := live.PollFetches(liveCtx)
			liveMu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset <= liveLast[r.Partition] {
					liveErrs = append(liveErrs, fmt.Sprintf("partition %d: offset %d read after %d", r.Partition, r.Offset, liveLast[r.Partition]))
				}
				liveLast[r.Partition] = r.Offset
				liveRead[r.Partition][r.Offset] = string(r.Value)
			})
			liveMu.Unlock()
		}
	}()
	stopLive := sync.OnceFunc(func() {
		liveCancel()
		<-liveDone
		live.Close()
	})
	defer stopLive()

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			p := int32(i % parts)
			v := fmt.Sprintf("%d-%d", p, i/parts)
			prod.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(v)}, func(r *kgo.Record, err error) {
				h.mu.Lock()
				defer h.mu.Unlock()
				if err != nil {
					h.failed++
					return
				}
				h.ackedBy[r.Partition] = append(h.ackedBy[r.Partition], acked{r.Offset, string(r.Value)})
			})
		}
	}()
	stopProducer := sync.OnceFunc(func() {
		close(stop)
		<-done
		fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
		if err := prod.Flush(fctx); err != nil {
			t.Logf("flush: %v", err)
		}
		fcancel()
		prod.Close()
	})
	defer stopProducer()

	faults(h)

	stopProducer()
	h.mu.Lock()
	var counts []int
	for _, a := range h.ackedBy {
		counts = append(counts, len(a))
	}
	t.Logf("acknowledged per partition %v, failed %d", counts, h.failed)
	h.mu.Unlock()

	// Every acknowledged record, exactly once, in order.
	ends, err := f.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	read := make([]map[int64]string, parts)
	lastOff := make([]int64, parts)
	for p := range read {
		read[p], lastOff[p] = map[int64]string{}, -1
	}
	remaining := func() bool {
		for p := range int32(parts) {
			e, _ := ends.Lookup(topic, p)
			if int64(len(read[p])) < e.Offset {
				return true
			}
		}
		return false
	}
	for remaining() {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			cons.Close()
			t.Fatalf("consuming: %v", ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= lastOff[r.Partition] {
				t.Errorf("partition %d: offset %d read after %d", r.Partition, r.Offset, lastOff[r.Partition])
			}
			lastOff[r.Partition] = r.Offset
			read[r.Partition][r.Offset] = string(r.Value)
		})
	}
	cons.Close()

	// The consumer that ran throughout reaches the same ends, having read
	// each offset once, in order, and the same record at each.
	eventually(t, 60*time.Second, "the running consumer at the end offsets", func() error {
		liveMu.Lock()
		defer liveMu.Unlock()
		for p := range int32(parts) {
			if e, _ := ends.Lookup(topic, p); liveLast[p]+1 < e.Offset {
				return fmt.Errorf("partition %d: read to %d of %d", p, liveLast[p]+1, e.Offset)
			}
		}
		return nil
	})
	stopLive()
	for _, e := range liveErrs {
		t.Error("running consumer: " + e)
	}
	for p := range parts {
		if len(liveRead[p]) != len(read[p]) {
			t.Errorf("partition %d: the running consumer read %d records, the final read %d", p, len(liveRead[p]), len(read[p]))
		}
		for off, v := range read[p] {
			if got, ok := liveRead[p][off]; !ok || got != v {
				t.Fatalf("partition %d offset %d: the running consumer read %q (present %t), the final read %q", p, off, got, ok, v)
			}
		}
	}
	liveTotal := 0
	for _, r := range liveRead {
		liveTotal += len(r)
	}
	t.Logf("the running consumer read each of the %d offsets once, in order", liveTotal)
	for p := range parts {
		seen := map[string]int64{}
		for off, v := range read[p] {
			if prev, dup := seen[v]; dup {
				t.Fatalf("partition %d: %q at offsets %d and %d", p, v, prev, off)
			}
			seen[v] = off
		}
		h.mu.Lock()
		as := slices.Clone(h.ackedBy[p])
		h.mu.Unlock()
		for _, a := range as {
			if got, ok := read[p][a.offset]; !ok || got != a.value {
				t.Fatalf("partition %d: acknowledged %q at offset %d, read %q (present %t)", p, a.value, a.offset, got, ok)
			}
		}
		lastSeq := -1
		for _, o := range slices.Sorted(maps.Keys(read[p])) {
			seq, _ := strconv.Atoi(strings.SplitN(read[p][o], "-", 2)[1])
			if seq <= lastSeq {
				t.Fatalf("partition %d: record %q at offset %d after sequence %d: out of order", p, read[p][o], o, lastSeq)
			}
			lastSeq = seq
		}
	}

	// Every replica's log, batch by batch, below the high watermark. A
	// follower killed and restarted within the leader's lag time can look
	// in sync (its ISR membership not yet taken back) while it is still
	// registering and catching up: wait until every replica's files hold
	// the batches below the high watermark, then stop and compare them.
	eventually(t, 60*time.Second, "every replica caught up to the high watermark", func() error {
		for p := range int32(parts) {
			e, _ := ends.Lookup(topic, p)
			for _, n := range c.Nodes() {
				if _, err := batchesBelow(filepath.Join(n.DataDir, "topics", topic, strconv.Itoa(int(p))), e.Offset); err != nil {
					return fmt.Errorf("node %d partition %d: %w", n.ID, p, err)
				}
			}
		}
		return nil
	})
	c.Shutdown()
	for p := range int32(parts) {
		e, _ := ends.Lookup(topic, p)
		var want []byte
		for i, n := range c.Nodes() {
			got, err := batchesBelow(filepath.Join(n.DataDir, "topics", topic, strconv.Itoa(int(p))), e.Offset)
			if err != nil {
				t.Fatalf("node %d partition %d: %v", n.ID, p, err)
			}
			if i == 0 {
				want = got
			} else if !bytes.Equal(got, want) {
				t.Fatalf("partition %d: node %d's log differs from node 1's below the high watermark %d", p, n.ID, e.Offset)
			}
		}
	}
}

// TestFaultLeaderKilledReplicated: three brokers as processes, a topic of
// 3 partitions with replication factor 3 (min.insync.replicas 2, the
// default for it), an idempotent acks=all franz-go producer and a
// consumer running throughout. The leader of a partition chosen by the
// seed is SIGKILLed ten times, a few seconds apart, and restarted each
// time once a new leader acknowledges produces. Every acknowledged record
// is read exactly once, at the offset it was acknowledged at, in order,
// by the running consumer and by a fresh one at the end; every replica's
// log is identical, batch by batch, below the high watermark.
func TestFaultLeaderKilledReplicated(t *testing.T) {
	rng := faultTest(t)
	const parts, kills = 3, 10
	runReplicated(t, "rk", parts, func(h *replHarness) {
		busy := int32(rng.IntN(parts))
		h.waitAcks(busy, 200, "first acknowledgements")
		for k := range kills {
			var victim int32
			eventually(t, 20*time.Second, "the busy partition's leader", func() error {
				l, _, err := h.leaderOf(busy)
				if err == nil && l < 1 {
					err = fmt.Errorf("no leader")
				}
				victim = l
				return err
			})
			before := h.count(busy)
			t.Logf("kill %d: SIGKILL of node %d, leader of partition %d, after %d acknowledgements", k+1, victim, busy, before)
			h.c.Node(victim).Kill()
			h.waitAcks(busy, before+100, "acknowledgements from a new leader")
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond) // a random spacing of the faults, not synchronization
			h.c.Node(victim).Restart()
			eventually(t, 45*time.Second, "the restarted broker back in every ISR", h.fullISR)
			h.waitAcks(busy, h.count(busy)+50, "acknowledgements with the restarted broker in the ISR")
		}
	})
}

// TestFaultRandomScheduleReplicated: the same producer and checks under a
// seeded random schedule of six faults, each followed by its repair: the
// SIGKILL of a partition's leader or of a follower (restarted after up to
// two seconds), or a SIGSTOP of any broker for up to 12 s (past the 9 s
// broker session: it is fenced, its leaderships move, and once continued
// it finds itself behind and follows). After every repair the ISRs must be
// whole again before the next fault.
func TestFaultRandomScheduleReplicated(t *testing.T) {
	rng := faultTest(t)
	const parts, steps = 2, 6
	runReplicated(t, "rs", parts, func(h *replHarness) {
		h.waitAcks(0, 100, "first acknowledgements")
		for k := range steps {
			p := int32(rng.IntN(parts))
			var leader int32
			var isr []int32
			eventually(t, 20*time.Second, "a partition's leader", func() error {
				var err error
				leader, isr, err = h.leaderOf(p)
				if err == nil && leader < 1 {
					err = fmt.Errorf("no leader")
				}
				return err
			})
			before := h.count(p)
			switch kind := rng.IntN(3); kind {
			case 0, 1:
				victim := leader
				what := "leader"
				if kind == 1 {
					others := slices.DeleteFunc(slices.Clone(isr), func(n int32) bool { return n == leader })
					victim, what = others[rng.IntN(len(others))], "follower"
				}
				t.Logf("step %d: SIGKILL of node %d, %s of partition %d", k+1, victim, what, p)
				h.c.Node(victim).Kill()
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond) // random fault spacing, not synchronization
				h.c.Node(victim).Restart()
			case 2:
				victim := int32(1 + rng.IntN(3))
				pause := time.Duration(4000+rng.IntN(8000)) * time.Millisecond
				t.Logf("step %d: SIGSTOP of node %d for %v", k+1, victim, pause)
				h.c.Node(victim).Stop()
				time.Sleep(pause) // the length of the fault, not synchronization
				h.c.Node(victim).Cont()
			}
			eventually(t, 60*time.Second, "every ISR whole again", h.fullISR)
			h.waitAcks(p, before+50, "acknowledgements after the repair")
		}
	})
}

// batchesBelow returns the bytes of the batches in a partition directory's
// segments whose base offset is below end, in offset order, and fails if
// they do not reach end.
func batchesBelow(dir string, end int64) ([]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names) // zero-padded base offsets
	var out []byte
	next := int64(-1)
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		for len(data) >= 12 {
			base := int64(binary.BigEndian.Uint64(data))
			size := 12 + int(binary.BigEndian.Uint32(data[8:]))
			if size > len(data) || base >= end {
				break
			}
			out = append(out, data[:size]...)
			// lastOffsetDelta is at byte 23 of the batch.
			next = base + int64(binary.BigEndian.Uint32(data[23:])) + 1
			data = data[size:]
		}
	}
	if next < end && end > 0 {
		return nil, fmt.Errorf("batches end at %d, before the high watermark %d", next, end)
	}
	return out, nil
}
