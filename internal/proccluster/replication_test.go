package proccluster_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/proccluster"
)

// acked is one acknowledged record.
type acked struct {
	offset int64
	value  string
}

// TestFaultLeaderKilledReplicated: three brokers as processes, a topic of
// 3 partitions with replication factor 3 (min.insync.replicas 2, the
// default for it), an idempotent acks=all franz-go producer and, at the
// end, a consumer. The leader of a partition chosen by the seed is
// SIGKILLed four times, a few seconds apart, and restarted each time once
// a new leader acknowledges produces. Every acknowledged record is read
// exactly once, at the offset it was acknowledged at, in order; every
// replica's log is identical, batch by batch, below the high watermark.
func TestFaultLeaderKilledReplicated(t *testing.T) {
	rng := faultTest(t)
	const topic, parts, kills = "rk", 3, 4
	c := proccluster.Start(t, proccluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitBrokers(t, ctx, c, 3)
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if r, err := kadm.NewClient(admin).CreateTopic(ctx, parts, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	// leaderOf returns partition p's leader and ISR as a running node says.
	leaderOf := func(p int32) (int32, []int32, error) {
		for _, n := range c.Nodes() {
			if !n.Running() {
				continue
			}
			m, err := n.Metadata(ctx)
			if err != nil {
				continue
			}
			for _, tp := range m.Topics {
				if tp.Topic != nil && *tp.Topic == topic && int(p) < len(tp.Partitions) {
					return tp.Partitions[p].Leader, tp.Partitions[p].ISR, nil
				}
			}
		}
		return 0, nil, fmt.Errorf("no running node shows %s/%d", topic, p)
	}
	fullISR := func() error {
		for p := range int32(parts) {
			l, isr, err := leaderOf(p)
			if err != nil {
				return err
			}
			if l < 1 || len(isr) != 3 {
				return fmt.Errorf("partition %d: leader %d isr %v", p, l, isr)
			}
		}
		return nil
	}
	eventually(t, 20*time.Second, "every partition led, with an ISR of 3", fullISR)

	// The producer: records "p-i" to partition p, in order per partition.
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(90*time.Second), kgo.MaxBufferedRecords(2000),
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ackedBy := make([][]acked, parts)
	var failed int
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
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				ackedBy[r.Partition] = append(ackedBy[r.Partition], acked{r.Offset, string(r.Value)})
			})
		}
	}()
	count := func(p int32) int {
		mu.Lock()
		defer mu.Unlock()
		return len(ackedBy[p])
	}
	waitAcks := func(p int32, n int, what string) {
		t.Helper()
		eventually(t, 45*time.Second, what, func() error {
			if got := count(p); got < n {
				return fmt.Errorf("%d acknowledged on partition %d", got, p)
			}
			return nil
		})
	}
	busy := int32(rng.IntN(parts))
	waitAcks(busy, 200, "first acknowledgements")
	for k := range kills {
		var victim int32
		eventually(t, 20*time.Second, "the busy partition's leader", func() error {
			l, _, err := leaderOf(busy)
			if err == nil && l < 1 {
				err = fmt.Errorf("no leader")
			}
			victim = l
			return err
		})
		before := count(busy)
		t.Logf("kill %d: SIGKILL of node %d, leader of partition %d, after %d acknowledgements", k+1, victim, busy, before)
		c.Node(victim).Kill()
		waitAcks(busy, before+100, "acknowledgements from a new leader")
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond) // a random spacing of the faults, not synchronization
		c.Node(victim).Restart()
		eventually(t, 45*time.Second, "the restarted broker back in every ISR", fullISR)
		waitAcks(busy, count(busy)+50, "acknowledgements with the restarted broker in the ISR")
	}
	close(stop)
	<-done
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	if err := prod.Flush(fctx); err != nil {
		t.Logf("flush: %v", err)
	}
	fcancel()
	prod.Close()
	mu.Lock()
	t.Logf("acknowledged per partition %d %d %d, failed %d", len(ackedBy[0]), len(ackedBy[1]), len(ackedBy[2]), failed)
	mu.Unlock()

	// Every acknowledged record, exactly once, in order.
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	read := make([]map[int64]string, parts)
	for p := range read {
		read[p] = map[int64]string{}
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
	lastOff := []int64{-1, -1, -1}
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
	for p := range parts {
		seen := map[string]int64{}
		for off, v := range read[p] {
			if prev, dup := seen[v]; dup {
				t.Fatalf("partition %d: %q at offsets %d and %d", p, v, prev, off)
			}
			seen[v] = off
		}
		mu.Lock()
		as := slices.Clone(ackedBy[p])
		mu.Unlock()
		lastSeq := -1
		for _, a := range as {
			if got, ok := read[p][a.offset]; !ok || got != a.value {
				t.Fatalf("partition %d: acknowledged %q at offset %d, read %q (present %t)", p, a.value, a.offset, got, ok)
			}
		}
		offs := slices.Sorted(func(yield func(int64) bool) {
			for o := range read[p] {
				if !yield(o) {
					return
				}
			}
		})
		for _, o := range offs {
			seq, _ := strconv.Atoi(strings.SplitN(read[p][o], "-", 2)[1])
			if seq <= lastSeq {
				t.Fatalf("partition %d: record %q at offset %d after sequence %d: out of order", p, read[p][o], o, lastSeq)
			}
			lastSeq = seq
		}
	}

	// Every replica's log, batch by batch, below the high watermark.
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
