package protocol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cuttableDialer dials normally until cut, then closes every connection it
// made and refuses new ones: a consumer abandoned without leaving (its
// process frozen or its network gone).
type cuttableDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cuttableDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("network cut")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cuttableDialer) cutAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		_ = c.Close()
	}
}

// consumption records what a set of group consumers polled.
type consumption struct {
	mu sync.Mutex
	// seen counts each produced value consumed.
	seen map[string]int
	// total counts every record consumed; first and last are when the
	// first and the latest were polled.
	total       int
	first, last time.Time
	// owners maps (generation, partition) to the members that consumed it
	// in that generation.
	owners map[[2]int32]map[string]bool
}

func newConsumption() *consumption {
	return &consumption{seen: map[string]int{}, owners: map[[2]int32]map[string]bool{}}
}

// member is one consumer of the group under test.
type member struct {
	name   string
	cl     *kgo.Client
	dialer *cuttableDialer
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	assigned map[int32]bool
}

func (m *member) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.assigned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func startMember(t testing.TB, b *groupBroker, name, groupID, topic string, c *consumption, extra ...kgo.Opt) *member {
	t.Helper()
	return startMemberAt(t, b.Addr, name, groupID, topic, c, extra...)
}

// startMemberAt starts a member against the cluster at addr.
func startMemberAt(t testing.TB, addr, name, groupID, topic string, c *consumption, extra ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, dialer: &cuttableDialer{}, stop: make(chan struct{}), done: make(chan struct{}), assigned: map[int32]bool{}}
	onAssigned := func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range a[topic] {
			m.assigned[p] = true
		}
	}
	onRevoked := func(_ context.Context, cl *kgo.Client, r map[string][]int32) {
		m.mu.Lock()
		for _, p := range r[topic] {
			delete(m.assigned, p)
		}
		m.mu.Unlock()
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID(name),
		kgo.Dialer(m.dialer.dial),
		kgo.ConsumerGroup(groupID),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(1500 * time.Millisecond),
		kgo.HeartbeatInterval(150 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.AutoCommitInterval(200 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(onAssigned),
		kgo.OnPartitionsRevoked(onRevoked),
		kgo.OnPartitionsLost(onRevoked),
		kgo.RetryTimeout(3 * time.Second),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			if cl.Context().Err() != nil {
				return
			}
			memberID, gen := cl.GroupMetadata()
			c.mu.Lock()
			if n := fs.NumRecords(); n > 0 {
				if c.total == 0 {
					c.first = time.Now()
				}
				c.last = time.Now()
			}
			fs.EachRecord(func(r *kgo.Record) {
				c.seen[string(r.Value)]++
				c.total++
				k := [2]int32{gen, r.Partition}
				if c.owners[k] == nil {
					c.owners[k] = map[string]bool{}
				}
				c.owners[k][memberID] = true
			})
			c.mu.Unlock()
			cl.AllowRebalance()
		}
	}()
	return m
}

// leave stops polling and closes the client cleanly (LeaveGroup).
func (m *member) leave(t testing.TB) {
	t.Helper()
	close(m.stop)
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Logf("%s: final commit: %v", m.name, err)
	}
	m.cl.Close()
}

// abandon stops polling and cuts the member's network without leaving.
func (m *member) abandon() {
	close(m.stop)
	<-m.done
	m.dialer.cutAll()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// partitionsSplit reports whether the members together own every one of n
// partitions, each exactly once, and each member owns at least one.
func partitionsSplit(n int, ms ...*member) bool {
	count := map[int32]int{}
	for _, m := range ms {
		ps := m.owned()
		if len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			count[p]++
		}
	}
	if len(count) != n {
		return false
	}
	for _, c := range count {
		if c != 1 {
			return false
		}
	}
	return true
}

// The scenario: three cooperative-sticky consumers share a
// 6-partition topic while a producer writes; one leaves cleanly, one is
// abandoned (its partitions move after its session timeout), one joins.
// Every record is consumed; within a generation no partition is consumed by
// two members; committed offsets survive a broker restart and consumption
// resumes after them.
func TestGroupCooperativeConsumers(t *testing.T) {
	b := startGroupBroker(t, testGroupOptions())
	const topic, groupID, parts = "orders", "analytics", 6
	b.createTopic(topic, parts)

	prod := b.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))
	var produced atomic.Int64
	stopProd := make(chan struct{})
	prodDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopProd:
				prodDone <- nil
				return
			default:
			}
			v := strconv.Itoa(i)
			if err := prod.ProduceSync(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
				prodDone <- err
				return
			}
			produced.Add(1)
		}
	}()

	c := newConsumption()
	m1 := startMember(t, b, "m1", groupID, topic, c)
	m2 := startMember(t, b, "m2", groupID, topic, c)
	m3 := startMember(t, b, "m3", groupID, topic, c)
	waitFor(t, "three members to share the partitions", 20*time.Second, func() bool { return partitionsSplit(parts, m1, m2, m3) })

	m1.leave(t)
	waitFor(t, "m2 and m3 to take over m1's partitions", 20*time.Second, func() bool { return partitionsSplit(parts, m2, m3) })

	m2.abandon()
	// m2 still believes it owns its partitions; m3 gets them once m2's
	// session has expired.
	waitFor(t, "m3 to take over the abandoned m2's partitions", 20*time.Second, func() bool { return partitionsSplit(parts, m3) })

	m4 := startMember(t, b, "m4", groupID, topic, c)
	waitFor(t, "m3 and m4 to share the partitions", 20*time.Second, func() bool { return partitionsSplit(parts, m3, m4) })

	close(stopProd)
	if err := <-prodDone; err != nil {
		t.Fatalf("producer: %v", err)
	}
	total := int(produced.Load())
	waitFor(t, fmt.Sprintf("all %d records to be consumed", total), 30*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i := 0; i < total; i++ {
			if c.seen[strconv.Itoa(i)] == 0 {
				return false
			}
		}
		return true
	})
	c.mu.Lock()
	for k, members := range c.owners {
		if len(members) > 1 {
			t.Errorf("generation %d partition %d consumed by %d members: %v", k[0], k[1], len(members), members)
		}
	}
	c.mu.Unlock()
	t.Logf("%d records produced and consumed", total)

	m3.leave(t)
	m4.leave(t)
	m2.cl.Close()

	// Restart: the committed offsets come back, and a new consumer reads
	// only what is produced afterwards.
	b.restart()
	adm := kadm.NewClient(b.client())
	ctx := context.Background()
	offs, err := adm.FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		o, ok := offs.Lookup(topic, e.Partition)
		if !ok || o.At != e.Offset {
			t.Errorf("partition %d: committed %v (found %v) after restart, want the log end %d", e.Partition, o.At, ok, e.Offset)
		}
	})

	prod2 := b.client(kgo.DefaultProduceTopic(topic))
	const more = 30
	for i := 0; i < more; i++ {
		v := "new-" + strconv.Itoa(i)
		if err := prod2.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c2 := newConsumption()
	m5 := startMember(t, b, "m5", groupID, topic, c2)
	waitFor(t, "the new records after the restart", 20*time.Second, func() bool {
		c2.mu.Lock()
		defer c2.mu.Unlock()
		return len(c2.seen) >= more
	})
	m5.leave(t)
	c2.mu.Lock()
	defer c2.mu.Unlock()
	for v := range c2.seen {
		if len(v) < 4 || v[:4] != "new-" {
			t.Errorf("after the restart the group re-read %q, committed before", v)
		}
	}
}

// TestGroupRegexConsumerPicksUpNewTopic: a lone franz-go consumer with a
// regex subscription rejoins when a new matching topic appears, and that
// join completes at once. Before, nothing ended the join phase that a lone
// leader's rejoin started: the new topic was read only after about a
// session timeout (10s here; 45s with franz-go's default).
func TestGroupRegexConsumerPicksUpNewTopic(t *testing.T) {
	b := startGroupBroker(t, testGroupOptions())
	b.createTopic("rx-a", 1)
	prod := b.client()
	produce := func(topic, v string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	produce("rx-a", "a1")

	cl := b.client(
		kgo.ConsumerGroup("rx"),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics("^rx-.*"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(30*time.Second),
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.MetadataMaxAge(200*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	var mu sync.Mutex
	seen := map[string]bool{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	has := func(v string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return seen[v] }
	}
	waitFor(t, "the first topic's record", 15*time.Second, has("a1"))

	start := time.Now()
	b.createTopic("rx-b", 1)
	produce("rx-b", "b1")
	// Well under the 10s session timeout the old code waited for.
	waitFor(t, "the new topic's record", 5*time.Second, has("b1"))
	t.Logf("new matching topic consumed after %v", time.Since(start))
}
