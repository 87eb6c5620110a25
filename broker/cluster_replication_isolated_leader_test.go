package broker

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// TestClusterReplicationIsolatedLeaderSendsClientsAway: three nodes, a
// partition with replication factor 3 (min.insync.replicas 2),
// replica.lag.time.max.ms 1 s, the controller's session timeout 3 s. Its
// leader is cut from both other nodes, not from clients. The controller
// fences it and elects another leader; the old one cannot shrink its ISR,
// nor learn that it was replaced. An idempotent acks=all producer whose
// request timeout is 20 s, and a consumer, both talking to the old leader
// when the cut falls, must each go on within 12 s of the cut: the old
// leader, having heard nothing from the controller for its session
// timeout while a follower lags, answers NOT_LEADER_OR_FOLLOWER (the
// produce waiting there too), so clients look for the new leader, where
// before it held each produce until the client's request timeout and
// answered REQUEST_TIMED_OUT, which franz-go retries on the same broker
// (a produce stall of 20 s or more; the consumer read nothing new until
// the heal). After the heal every replica holds the same log, and every
// acknowledged record is in it once, in order.
func TestClusterReplicationIsolatedLeaderSendsClientsAway(t *testing.T) {
	c := startTestClusterWith(t, make([]string, 3), func(_ int, o *Options) { o.ReplicaLagTime = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	admin := newClusterClient(t, c)
	eventually(t, 15*time.Second, "topic iso created", func() error {
		r, err := kadm.NewClient(admin).CreateTopic(ctx, 1, 3, nil, "iso")
		if err == nil {
			err = r.Err
		}
		return err
	})
	// leader is partition 0's leader as every node says it, with an ISR of
	// want.
	leader := func(want int) (int32, error) {
		var agreed int32 = -1
		for i := range c.brokers {
			if !c.nodes.Running(int32(i + 1)) {
				continue
			}
			l, _, isr, err := partitionLeader(ctx, admin, int32(i+1), "iso", 0)
			if err != nil {
				return 0, err
			}
			if l < 1 || len(isr) != want || (agreed != -1 && l != agreed) {
				return 0, fmt.Errorf("node %d: leader %d isr %v", i+1, l, isr)
			}
			agreed = l
		}
		return agreed, nil
	}
	var old int32
	eventually(t, 20*time.Second, "a leader with an ISR of 3", func() (err error) {
		old, err = leader(3)
		return err
	})

	prod := newClusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("iso"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProduceRequestTimeout(20*time.Second),
		kgo.RecordDeliveryTimeout(80*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
	cons := newClusterClient(t, c, kgo.ConsumeTopics("iso"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.MetadataMinAge(100*time.Millisecond))

	// stamps records when each value was acknowledged or read.
	type stamps struct {
		mu     sync.Mutex
		values []int
		at     []time.Time
	}
	add := func(s *stamps, v int) {
		s.mu.Lock()
		s.values, s.at = append(s.values, v), append(s.at, time.Now())
		s.mu.Unlock()
	}
	// stall returns the longest s went without a value from t0 to its
	// k-th value after t0; false while it has fewer.
	stall := func(s *stamps, t0 time.Time, k int) (time.Duration, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		last, longest, n := t0, time.Duration(0), 0
		for _, at := range s.at {
			if !at.After(t0) {
				continue
			}
			longest, last, n = max(longest, at.Sub(last)), at, n+1
			if n == k {
				return longest, true
			}
		}
		return 0, false
	}
	var acked, read stamps
	pctx, pcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			if err := prod.ProduceSync(pctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err == nil {
				add(&acked, i)
			} else if pctx.Err() == nil {
				t.Errorf("record %d: %v", i, err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			fs := cons.PollFetches(pctx)
			fs.EachRecord(func(r *kgo.Record) {
				v, _ := strconv.Atoi(string(r.Value))
				add(&read, v)
			})
		}
	}()
	defer func() {
		pcancel()
		wg.Wait()
	}()
	count := func(s *stamps) int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.at)
	}
	eventually(t, 20*time.Second, "records acknowledged and read before the cut", func() error {
		if a, r := count(&acked), count(&read); a < 50 || r < 50 {
			return fmt.Errorf("%d acknowledged, %d read", a, r)
		}
		return nil
	})

	c.net.Isolate(faultnet.NodeID(old))
	cutAt := time.Now()
	t.Logf("leader %d cut from the other nodes", old)
	const within = 12 * time.Second
	for _, s := range []struct {
		what string
		st   *stamps
	}{{"acknowledged", &acked}, {"read", &read}} {
		eventually(t, 40*time.Second, "20 records "+s.what+" after the cut", func() error {
			if _, ok := stall(s.st, cutAt, 20); !ok {
				return fmt.Errorf("fewer since the cut %v ago", time.Since(cutAt).Round(time.Millisecond))
			}
			return nil
		})
		d, _ := stall(s.st, cutAt, 20)
		t.Logf("records %s: at most %v without one after the cut", s.what, d.Round(time.Millisecond))
		if d > within {
			t.Errorf("records %s: %v without one after the cut of the leader, want at most %v", s.what, d.Round(time.Millisecond), within)
		}
	}
	var now int32
	eventually(t, 10*time.Second, "a new leader", func() (err error) {
		l, _, _, err := partitionLeader(ctx, admin, int32(1+(old%3)), "iso", 0)
		if err == nil && (l < 1 || l == old) {
			err = fmt.Errorf("leader %d", l)
		}
		now = l
		return err
	})
	t.Logf("new leader %d", now)

	c.net.HealAll()
	eventually(t, 30*time.Second, "the ISR whole again after the heal", func() error {
		_, err := leader(3)
		return err
	})
	n := count(&acked)
	eventually(t, 20*time.Second, "acknowledgements after the heal", func() error {
		if a := count(&acked); a < n+20 {
			return fmt.Errorf("%d acknowledged since the heal", a-n)
		}
		return nil
	})
	pcancel()
	wg.Wait()
	end := checkReplicasAgree(t, c, "iso", 0)
	all := consumeAll(t, c, "iso", int(end))
	acked.mu.Lock()
	defer acked.mu.Unlock()
	got := make([]int, 0, len(all))
	for _, v := range all {
		i, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("record %q", v)
		}
		got = append(got, i)
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("the log holds records out of order or twice: %v", got)
	}
	for _, v := range acked.values {
		if _, ok := slices.BinarySearch(got, v); !ok {
			t.Fatalf("acknowledged record %d is not in the log", v)
		}
	}
	t.Logf("%d acknowledged, %d in the log", len(acked.values), len(got))
}
