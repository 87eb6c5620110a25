package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/quorum/faultnet"
)

// spreadTopic creates topic with parts partitions and replication factor
// 3 on c and waits until every broker's metadata shows it with leaders on
// two or more brokers; it returns each partition's leader.
func spreadTopic(ctx context.Context, t *testing.T, c *testCluster, adm *kadm.Client, topic string, parts int32) map[int32]int32 {
	t.Helper()
	eventually(t, 15*time.Second, "create "+topic+" with replication factor 3", func() error {
		r, err := adm.CreateTopic(ctx, parts, 3, nil, topic)
		if err == nil && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			err = r.Err
		}
		return err
	})
	leaders := map[int32]int32{}
	eventually(t, 10*time.Second, topic+"'s leaders on 2 or more brokers", func() error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		clear(leaders)
		on := map[int32]bool{}
		for _, p := range md.Topics[topic].Partitions {
			if p.Leader >= 0 {
				leaders[p.Partition], on[p.Leader] = p.Leader, true
			}
		}
		if int32(len(leaders)) != parts || len(on) < 2 {
			return fmt.Errorf("leaders %v", leaders)
		}
		return nil
	})
	t.Logf("%s leaders: %v", topic, leaders)
	return leaders
}

// directClients returns a client per broker that talks to that broker
// only (requests through SeedBrokers()[0]).
func directClients(t *testing.T, c *testCluster) map[int32]*kgo.Client {
	t.Helper()
	out := map[int32]*kgo.Client{}
	for _, b := range c.brokers {
		out[b.opts.NodeID] = newClient(t, b)
	}
	return out
}

// findCoordinator asks broker cl's seed for group's coordinator, at the
// highest version both support (v4 and up carry the key in a list).
func findCoordinator(ctx context.Context, cl *kgo.Client, g string) (int32, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey, req.CoordinatorKeys = g, []string{g}
	raw, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return -1, err
	}
	resp := raw.(*kmsg.FindCoordinatorResponse)
	code, id := resp.ErrorCode, resp.NodeID
	if resp.Version >= 4 {
		if len(resp.Coordinators) != 1 {
			return -1, fmt.Errorf("FindCoordinator v%d: %d coordinators for one key", resp.Version, len(resp.Coordinators))
		}
		code, id = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return -1, err
	}
	return id, nil
}

// offsetsLeader returns the leader of group g's __consumer_offsets
// partition as Metadata reports it.
func offsetsLeader(ctx context.Context, adm *kadm.Client, g string) (int32, error) {
	md, err := adm.Metadata(ctx, group.OffsetsTopic)
	if err != nil {
		return -1, err
	}
	ps := md.Topics[group.OffsetsTopic].Partitions
	if len(ps) == 0 {
		return -1, fmt.Errorf("no %s in metadata", group.OffsetsTopic)
	}
	p := group.Partition(group.GroupID(g), int32(len(ps)))
	return ps[p].Leader, nil
}

// agreedCoordinator polls until every live broker names one coordinator
// for g and it is the leader of g's offsets partition, and returns it.
func agreedCoordinator(ctx context.Context, t *testing.T, direct map[int32]*kgo.Client, adm *kadm.Client, g string) int32 {
	t.Helper()
	return agreedCoordinatorNot(ctx, t, direct, adm, g, -1)
}

// agreedCoordinatorNot is agreedCoordinator waiting for a coordinator
// other than not (a broker killed: the others name it until the
// controller fences it).
func agreedCoordinatorNot(ctx context.Context, t *testing.T, direct map[int32]*kgo.Client, adm *kadm.Client, g string, not int32) int32 {
	t.Helper()
	var coord int32
	eventually(t, 15*time.Second, "every broker names the offsets partition leader as "+g+"'s coordinator", func() error {
		var got []int32
		for _, id := range slices.Sorted(maps.Keys(direct)) {
			n, err := findCoordinator(ctx, direct[id], g)
			if err != nil {
				return fmt.Errorf("node %d: %w", id, err)
			}
			got = append(got, n)
		}
		leader, err := offsetsLeader(ctx, adm, g)
		if err != nil {
			return err
		}
		for _, n := range got {
			if n != leader {
				return fmt.Errorf("coordinators %v, offsets partition leader %d", got, leader)
			}
		}
		if leader == not {
			return fmt.Errorf("the coordinator is still node %d", not)
		}
		coord = leader
		return nil
	})
	return coord
}

// tally counts the records a group's members consume, by value.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *tally) count(v string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[v]
}

// members runs n franz-go group members of g consuming topic, each polling
// in its own goroutine until stop; the returned clients commit on demand.
type members struct {
	clients []*kgo.Client
	tally   tally
	errs    chan error
	// dataLoss counts the fetches franz-go reported as data loss (a
	// consumer's offset past a new leader's end).
	dataLoss atomic.Int64
	// unknownMember counts the polls that reported the coordinator did not
	// know a member (a new coordinator that loaded no group state): the
	// member rejoins by itself.
	unknownMember atomic.Int64
	// log is the members' franz-go log, shown when the test fails.
	log    syncBuffer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startMembers(t *testing.T, c *testCluster, g, topic string, n int) *members {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &members{tally: tally{seen: map[string]int{}}, errs: make(chan error, 100), cancel: cancel}
	for i := range n {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics(topic),
			kgo.ConsumerGroup(g), kgo.DisableAutoCommit(), kgo.ClientID(fmt.Sprintf("member-%d", i)),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
			kgo.RetryTimeout(20*time.Second),
			kgo.WithLogger(kgo.BasicLogger(&m.log, kgo.LogLevelInfo, func() string { return fmt.Sprintf("member-%d ", i) })))
		if err != nil {
			t.Fatal(err)
		}
		m.clients = append(m.clients, cl)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachError(func(topic string, p int32, err error) {
					if dl := (*kgo.ErrDataLoss)(nil); errors.As(err, &dl) {
						m.dataLoss.Add(1)
						return
					}
					if errors.Is(err, kerr.UnknownMemberID) {
						m.unknownMember.Add(1)
						return
					}
					if !errors.Is(err, context.Canceled) {
						select {
						case m.errs <- fmt.Errorf("member %d: fetch %s/%d: %w", i, topic, p, err):
						default:
						}
					}
				})
				fs.EachRecord(func(r *kgo.Record) {
					m.tally.mu.Lock()
					m.tally.seen[string(r.Value)]++
					m.tally.mu.Unlock()
				})
			}
		}()
	}
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			t.Logf("the members' client log:\n%s", m.log.String())
		}
	})
	return m
}

// syncBuffer is a bytes.Buffer for several writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stop ends the members' polling and closes them (each leaves the group).
func (m *members) stop() {
	m.cancel()
	m.wg.Wait()
	for _, cl := range m.clients {
		cl.Close()
	}
	m.clients = nil
}

// waitStable waits until g is Stable with n members, each assigned
// something, as its coordinator describes it.
func waitStable(ctx context.Context, t *testing.T, adm *kadm.Client, g string, n int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%s Stable with %d members", g, n), func() error {
		ds, err := adm.DescribeGroups(ctx, g)
		if err != nil {
			return err
		}
		d := ds[g]
		if d.Err != nil {
			return d.Err
		}
		if d.State != "Stable" || len(d.Members) != n {
			return fmt.Errorf("state %s with %d members", d.State, len(d.Members))
		}
		for _, mb := range d.Members {
			if ca, ok := mb.Assigned.AsConsumer(); !ok || len(ca.Topics) == 0 {
				return fmt.Errorf("member %s has no assignment yet", mb.MemberID)
			}
		}
		return nil
	})
}

// newProducer returns a client of c that produces to the partition each
// record names.
func newProducer(t *testing.T, c *testCluster) *kgo.Client {
	t.Helper()
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pcl.Close)
	return pcl
}

// produceSpread produces per records to each partition of topic, values
// "<prefix>-p<partition>-<i>", and returns the values.
func produceSpread(ctx context.Context, t *testing.T, pcl *kgo.Client, topic, prefix string, parts int32, per int) []string {
	t.Helper()
	var recs []*kgo.Record
	var vals []string
	for p := range parts {
		for i := range per {
			v := fmt.Sprintf("%s-p%d-%d", prefix, p, i)
			vals = append(vals, v)
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
		}
	}
	if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", prefix, err)
	}
	return vals
}

// waitConsumed waits until every value has been consumed at least once,
// failing on a member's fetch error.
func (m *members) waitConsumed(t *testing.T, d time.Duration, vals []string) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("the group consumes %d records", len(vals)), func() error {
		select {
		case err := <-m.errs:
			t.Fatal(err)
		default:
		}
		missing := 0
		for _, v := range vals {
			if m.tally.count(v) == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d not consumed yet", missing, len(vals))
		}
		return nil
	})
}

// commitAll commits every member's consumed offsets, retrying the
// retriable refusals a moving coordinator causes.
func (m *members) commitAll(ctx context.Context, t *testing.T) {
	t.Helper()
	for i, cl := range m.clients {
		eventually(t, 20*time.Second, fmt.Sprintf("member %d commits", i), func() error {
			return cl.CommitUncommittedOffsets(ctx)
		})
	}
}

// TestClusterGroupConsumer: on a 3-node cluster with a 6-partition topic
// whose leaders sit on different brokers, two franz-go members of one group
// read every record exactly once and commit. Every broker names the same
// coordinator, the leader of the group's __consumer_offsets partition (a
// topic of the cluster's metadata, replication factor 3); a group request
// sent to another broker is answered NOT_COORDINATOR, and only the
// coordinator lists the group.
func TestClusterGroupConsumer(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const parts, per, g = 6, 20, "franz-readers"
	spreadTopic(ctx, t, c, adm, "gc", parts)

	m := startMembers(t, c, g, "gc", 2)
	waitStable(ctx, t, adm, g, 2)
	direct := directClients(t, c)
	coord := agreedCoordinator(ctx, t, direct, adm, g)
	t.Logf("coordinator of %s: node %d", g, coord)

	// __consumer_offsets is a metadata topic with replication factor 3 and
	// the brokers' offsets partition count (Kafka's default, 50).
	md, err := adm.Metadata(ctx, group.OffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	ot := md.Topics[group.OffsetsTopic]
	if len(ot.Partitions) != 50 || !ot.IsInternal {
		t.Fatalf("%s: %d partitions, internal %v; want 50, internal", group.OffsetsTopic, len(ot.Partitions), ot.IsInternal)
	}
	offLeaders := map[int32]bool{}
	for _, p := range ot.Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("%s/%d replicas %v, want 3", group.OffsetsTopic, p.Partition, p.Replicas)
		}
		offLeaders[p.Leader] = true
	}
	if len(offLeaders) != 3 {
		t.Fatalf("%s leaders on %v, want all 3 brokers", group.OffsetsTopic, offLeaders)
	}

	vals := produceSpread(ctx, t, newProducer(t, c), "gc", "a", parts, per)
	m.waitConsumed(t, 30*time.Second, vals)
	m.commitAll(ctx, t)
	for _, v := range vals {
		if n := m.tally.count(v); n != 1 {
			t.Errorf("record %q consumed %d times, want once", v, n)
		}
	}
	offs, err := adm.FetchOffsets(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(parts) {
		if o, ok := offs.Lookup("gc", p); !ok || o.At != per {
			t.Errorf("committed offset of gc/%d: %+v %v, want %d", p, o, ok, per)
		}
	}

	// Group requests to a broker that does not coordinate the group.
	for id, dcl := range direct {
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Group, fetch.Groups = g, []kmsg.OffsetFetchRequestGroup{{Group: g}} // v8+ carry a list
		raw, err := dcl.SeedBrokers()[0].Request(ctx, fetch)
		if err != nil {
			t.Fatal(err)
		}
		fr := raw.(*kmsg.OffsetFetchResponse)
		fetchCode := fr.ErrorCode
		if fr.Version >= 8 {
			fetchCode = fr.Groups[0].ErrorCode
		}
		desc := kmsg.NewPtrDescribeGroupsRequest()
		desc.Groups = []string{g}
		raw, err = dcl.SeedBrokers()[0].Request(ctx, desc)
		if err != nil {
			t.Fatal(err)
		}
		dr := raw.(*kmsg.DescribeGroupsResponse)
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = g, "someone", 1
		raw, err = dcl.SeedBrokers()[0].Request(ctx, hb)
		if err != nil {
			t.Fatal(err)
		}
		hr := raw.(*kmsg.HeartbeatResponse)
		raw, err = dcl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrListGroupsRequest())
		if err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, lg := range raw.(*kmsg.ListGroupsResponse).Groups {
			listed = append(listed, lg.Group)
		}
		got := []string{codeName(fetchCode), codeName(dr.Groups[0].ErrorCode), codeName(hr.ErrorCode)}
		want := []string{"NOT_COORDINATOR", "NOT_COORDINATOR", "NOT_COORDINATOR"}
		wantListed := []string(nil)
		if id == coord {
			// The coordinator answers: offsets, a description, and a
			// heartbeat of an unknown member.
			want = []string{"NONE", "NONE", "UNKNOWN_MEMBER_ID"}
			wantListed = []string{g}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("node %d (coordinator %d): OffsetFetch, DescribeGroups, Heartbeat errors (-want +got):\n%s", id, coord, diff)
		}
		if diff := cmp.Diff(wantListed, listed); diff != "" {
			t.Errorf("node %d (coordinator %d): ListGroups (-want +got):\n%s", id, coord, diff)
		}
	}
	// Every FindCoordinator version, batched keys included, agrees.
	other, err := offsetsLeader(ctx, adm, g+"-other")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range c.brokers {
		for v := int16(0); v <= 4; v++ {
			vs := kversion.Stable()
			vs.SetMaxKeyVersion(kmsg.FindCoordinator.Int16(), v)
			vcl := newClient(t, b, kgo.MaxVersions(vs))
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey, req.CoordinatorKeys = g, []string{g, g + "-other"}
			raw, err := vcl.SeedBrokers()[0].Request(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			resp := raw.(*kmsg.FindCoordinatorResponse)
			if resp.Version != v {
				t.Fatalf("asked for FindCoordinator v%d, sent v%d", v, resp.Version)
			}
			got := []int32{resp.NodeID}
			want := []int32{coord}
			if v >= 4 {
				got = nil
				for _, rc := range resp.Coordinators {
					if rc.ErrorCode != 0 {
						t.Fatalf("FindCoordinator v4 %s: %v", rc.Key, kerr.ErrorForCode(rc.ErrorCode))
					}
					got = append(got, rc.NodeID)
				}
				want = []int32{coord, other}
			} else if resp.ErrorCode != 0 {
				t.Fatalf("FindCoordinator v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("node %d FindCoordinator v%d (-want +got):\n%s", b.opts.NodeID, v, diff)
			}
		}
	}
}

// TestClusterGroupCoordinatorMoves: the broker coordinating a group of two
// franz-go members goes away, by controlled shutdown or killed (cut from
// every other node first, so that the controller learns of it only when
// its session expires, then closed). __consumer_offsets is replicated
// (replication factor 3), so the new leader of the group's offsets
// partition loads the group's committed offsets from its replica: an idle
// group's single commit is read back from the new coordinator, the
// members, rejoining there, resume from their commits (no record committed
// before the move is read again), and what they commit after the move is
// stored too. Fails on the code before offsets partitions were
// replicated: the new coordinator knew nothing of the old one's commits.
func TestClusterGroupCoordinatorMoves(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "shutdown"
		if kill {
			name = "kill"
		}
		t.Run(name, func(t *testing.T) { testGroupCoordinatorMoves(t, kill) })
	}
}

func testGroupCoordinatorMoves(t *testing.T, kill bool) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const parts, per, g = 6, 20, "movers"
	spreadTopic(ctx, t, c, adm, "gm", parts)

	m := startMembers(t, c, g, "gm", 2)
	waitStable(ctx, t, adm, g, 2)
	direct := directClients(t, c)
	coord := agreedCoordinator(ctx, t, direct, adm, g)

	// An idle group in the same offsets partition commits once.
	idle := ""
	for i := 0; idle == ""; i++ {
		if n := fmt.Sprintf("idle-%d", i); group.Partition(group.GroupID(n), 50) == group.Partition(g, 50) {
			idle = n
		}
	}
	var idleOffs kadm.Offsets
	idleOffs.Add(kadm.Offset{Topic: "gm", Partition: 0, At: 3, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, idle, idleOffs); err != nil || r.Error() != nil {
		t.Fatalf("commit %s: %v %v", idle, err, r.Error())
	}

	pcl := newProducer(t, c) // for both batches
	before := produceSpread(ctx, t, pcl, "gm", "a", parts, per)
	m.waitConsumed(t, 30*time.Second, before)
	m.commitAll(ctx, t)
	for _, v := range before {
		if n := m.tally.count(v); n != 1 {
			t.Errorf("record %q consumed %d times before the move, want once", v, n)
		}
	}

	if kill {
		t.Logf("killing node %d, coordinator of %s", coord, g)
		c.net.Isolate(faultnet.NodeID(coord))
	} else {
		t.Logf("stopping node %d, coordinator of %s", coord, g)
	}
	if err := c.brokers[coord-1].Close(); err != nil {
		t.Fatal(err)
	}
	delete(direct, coord)
	coord2 := agreedCoordinatorNot(ctx, t, direct, adm, g, coord)
	t.Logf("new coordinator of %s: node %d", g, coord2)

	// The idle group's commit is on the new coordinator.
	eventually(t, 20*time.Second, idle+"'s offset on the new coordinator", func() error {
		offs, err := adm.FetchOffsets(ctx, idle)
		if err != nil {
			return err
		}
		if o, ok := offs.Lookup("gm", 0); !ok || o.Err != nil || o.At != 3 {
			return fmt.Errorf("%s's offset of gm/0: %+v (found %v), want 3", idle, o, ok)
		}
		return nil
	})

	after := produceSpread(ctx, t, pcl, "gm", "b", parts, per)
	m.waitConsumed(t, 45*time.Second, after)
	m.commitAll(ctx, t)
	waitStable(ctx, t, adm, g, 2)
	offs, err := adm.FetchOffsets(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(parts) {
		if o, ok := offs.Lookup("gm", p); !ok || o.At != 2*per {
			t.Errorf("committed offset of gm/%d on the new coordinator: %+v %v, want %d", p, o, ok, 2*per)
		}
	}
	for _, v := range before {
		if n := m.tally.count(v); n != 1 {
			t.Errorf("record %q, committed before the move, consumed %d times: the new coordinator lost the commit", v, n)
		}
	}
	t.Logf("franz-go reported %d data-loss resets and %d UNKNOWN_MEMBER_ID rejoins", m.dataLoss.Load(), m.unknownMember.Load())
}

// codeName names a Kafka error code as Kafka does ("NONE" for 0).
func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return fmt.Sprint(code)
}

// confluentGroupRoundTrip produces per records to each partition of a
// topic with confluent-kafka's producer, then reads them back with a group
// consumer (subscribe, earliest, manual commit), commits synchronously and
// prints "partition value" per record.
const confluentGroupRoundTrip = `
import sys, time
from confluent_kafka import Producer, Consumer
boot, topic, parts, per, grp = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
p = Producer({'bootstrap.servers': boot, 'acks': 'all'})
errors = []
def cb(err, msg):
    if err is not None:
        errors.append(err)
for part in range(parts):
    for i in range(per):
        p.produce(topic, value=('p%d-r%d' % (part, i)).encode(), partition=part, on_delivery=cb)
left = p.flush(30)
if left or errors:
    sys.exit('undelivered %d, errors %s' % (left, errors))
c = Consumer({'bootstrap.servers': boot, 'group.id': grp, 'auto.offset.reset': 'earliest', 'enable.auto.commit': False})
c.subscribe([topic])
got, deadline = 0, time.time() + 40
while got < parts * per and time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        sys.exit('consume: %s' % m.error())
    print(m.partition(), m.value().decode())
    got += 1
c.commit(asynchronous=False)
c.close()
`

// TestClusterGroupConfluentKafka: confluent-kafka's producer and group
// consumer on a 3-node cluster whose topic's leaders sit on different
// brokers: every record is consumed once, from the partition it was
// produced to, and the group's commit is found on the coordinator every
// broker names.
func TestClusterGroupConfluentKafka(t *testing.T) {
	py := requireConfluentKafka(t)
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const parts, per, g = 6, 5, "confluent-readers"
	spreadTopic(ctx, t, c, adm, "cg3", parts)
	out := run(t, "", py, "-c", confluentGroupRoundTrip, c.brokers[1].Addr(), "cg3", fmt.Sprint(parts), fmt.Sprint(per), g)
	want, got := map[string][]string{}, map[string][]string{}
	for p := range parts {
		for i := range per {
			want[fmt.Sprint(p)] = append(want[fmt.Sprint(p)], fmt.Sprintf("p%d-r%d", p, i))
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		p, v, _ := strings.Cut(l, " ")
		got[p] = append(got[p], v)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("confluent-kafka group consumer read per partition (-want +got):\n%s", diff)
	}
	coord := agreedCoordinator(ctx, t, directClients(t, c), adm, g)
	offs, err := adm.FetchOffsets(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(parts) {
		if o, ok := offs.Lookup("cg3", p); !ok || o.At != per {
			t.Errorf("committed offset of cg3/%d on coordinator %d: %+v %v, want %d", p, coord, o, ok, per)
		}
	}
}

// TestClusterGroupKcat: kcat's balanced consumer (-G) reads every record
// of a topic whose leaders sit on different brokers, through the group's
// coordinator, and commits what it read when it exits.
func TestClusterGroupKcat(t *testing.T) {
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const parts, per, g = 6, 5, "kcat-readers"
	spreadTopic(ctx, t, c, adm, "kg3", parts)
	vals := produceSpread(ctx, t, newProducer(t, c), "kg3", "k", parts, per)
	out := run(t, "", kcat, "-b", c.brokers[2].Addr(), "-G", g, "-X", "auto.offset.reset=earliest",
		"-c", fmt.Sprint(len(vals)), "-q", "-f", "%p %s\n", "kg3")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		p, v, _ := strings.Cut(l, " ")
		if !strings.HasPrefix(v, "k-p"+p+"-") {
			t.Errorf("record %q read from partition %s", v, p)
		}
		got = append(got, v)
	}
	slices.Sort(got)
	slices.Sort(vals)
	if diff := cmp.Diff(vals, got); diff != "" {
		t.Fatalf("kcat -G read (-want +got):\n%s", diff)
	}
	agreedCoordinator(ctx, t, directClients(t, c), adm, g)
	offs, err := adm.FetchOffsets(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(parts) {
		if o, ok := offs.Lookup("kg3", p); !ok || o.At != per {
			t.Errorf("committed offset of kg3/%d: %+v %v, want %d", p, o, ok, per)
		}
	}
}
