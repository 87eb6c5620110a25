package protocol

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// keptLogs keeps in-memory partition logs across broker restarts, keyed by
// directory, so a test can stop a broker and start another on the same
// "disk".
type keptLogs struct {
	mu   sync.Mutex
	logs map[string]topics.Log
	// fsync, if positive, is how long each wait for durability takes on
	// the __consumer_offsets logs (slowFsyncLog).
	fsync time.Duration
}

// keptLog survives Close (a restart) but not Remove (topic deletion).
type keptLog struct {
	topics.Log
	owner *keptLogs
	dir   string
}

func (l keptLog) Close() error { return nil }

func (l keptLog) Remove() error {
	l.owner.mu.Lock()
	delete(l.owner.logs, l.dir)
	l.owner.mu.Unlock()
	return l.Log.Remove()
}

func (k *keptLogs) open(dir string, cfg topics.LogConfig) (topics.Log, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.logs == nil {
		k.logs = map[string]topics.Log{}
	}
	l, ok := k.logs[dir]
	if !ok {
		var err error
		if l, err = topics.OpenMemLog(dir, cfg); err != nil {
			return nil, err
		}
		k.logs[dir] = l
	}
	if k.fsync > 0 && strings.Contains(dir, group.OffsetsTopic) {
		return slowFsyncLog{keptLog{Log: l, owner: k, dir: dir}, k.fsync}, nil
	}
	return keptLog{Log: l, owner: k, dir: dir}, nil
}

// slowFsyncLog writes at once and takes fsync for every wait for
// durability: a disk under load, for benchmarks.
type slowFsyncLog struct {
	keptLog
	fsync time.Duration
}

func (l slowFsyncLog) Append(ctx context.Context, batches []byte, epoch topics.Epoch) (topics.AppendResult, error) {
	res, err := l.AppendNoWait(batches, epoch)
	if err != nil {
		return res, err
	}
	return res, l.WaitDurable(ctx, res.LastOffset+1)
}

func (l slowFsyncLog) WaitDurable(ctx context.Context, _ topics.Offset) error {
	t := time.NewTimer(l.fsync)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// testGroupOptions are coordinator options that keep integration tests
// quick: a short initial rebalance delay and short sessions allowed.
func testGroupOptions() group.Options {
	return group.Options{
		InitialRebalanceDelay: 200 * time.Millisecond,
		MinSessionTimeout:     200 * time.Millisecond,
		OffsetsPartitions:     5,
	}
}

// groupBroker is a broker (topic registry and protocol server) for group
// tests, restartable on the same logs.
type groupBroker struct {
	t     testing.TB
	dir   string
	logs  *keptLogs
	gopts group.Options

	Addr string
	reg  *topics.Registry
	srv  *Server
	done chan struct{}
}

func startGroupBroker(t testing.TB, gopts group.Options) *groupBroker {
	t.Helper()
	b := &groupBroker{t: t, dir: t.TempDir(), logs: &keptLogs{}, gopts: gopts}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *groupBroker) start() {
	b.t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	reg, err := topics.Open(topics.Options{Dir: b.dir, OpenLog: b.logs.open, Logger: quiet})
	if err != nil {
		b.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	srv, err := New(Config{Node: Node{ID: 0, Host: host, Port: int32(p)}, Topics: reg, AutoCreateTopics: true, Groups: b.gopts, Logger: quiet})
	if err != nil {
		b.t.Fatal(err)
	}
	b.Addr, b.reg, b.srv, b.done = ln.Addr().String(), reg, srv, make(chan struct{})
	go func() {
		defer close(b.done)
		_ = srv.Serve(ln)
	}()
}

func (b *groupBroker) stop() {
	if b.srv == nil {
		return
	}
	_ = b.srv.Close()
	<-b.done
	_ = b.reg.Close()
	b.srv = nil
}

// restart stops the broker and starts another on the same logs and address
// family (a new port: clients are given the new address).
func (b *groupBroker) restart() {
	b.t.Helper()
	b.stop()
	b.start()
}

func (b *groupBroker) createTopic(name string, partitions int32) {
	b.t.Helper()
	if _, err := b.reg.Create(context.Background(), name, topics.Spec{Partitions: partitions}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *groupBroker) client(opts ...kgo.Opt) *kgo.Client {
	b.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr)}, opts...)...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(cl.Close)
	return cl
}

func TestFindCoordinator(t *testing.T) {
	b := startGroupBroker(t, testGroupOptions())
	cl := b.client()
	ctx := context.Background()
	host, port, _ := net.SplitHostPort(b.Addr)
	p, _ := strconv.Atoi(port)

	v3 := kmsg.NewPtrFindCoordinatorRequest()
	v3.Version, v3.CoordinatorKey = 3, "g"
	resp, err := v3.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{int16(0), int32(0), host, int32(p)}, []any{resp.ErrorCode, resp.NodeID, resp.Host, resp.Port}); diff != "" {
		t.Errorf("v3 answer (-want +got):\n%s", diff)
	}

	v4 := kmsg.NewPtrFindCoordinatorRequest()
	v4.Version, v4.CoordinatorKeys = 4, []string{"a", "b"}
	resp, err = v4.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range resp.Coordinators {
		if c.ErrorCode != 0 || c.Host != host || c.Port != int32(p) {
			t.Errorf("v4 coordinator for %q: %+v", c.Key, c)
		}
		keys = append(keys, c.Key)
	}
	// NB: the client may split a multi-key request and merge the answers,
	// so their order is not the request's.
	slices.Sort(keys)
	if diff := cmp.Diff([]string{"a", "b"}, keys); diff != "" {
		t.Errorf("v4 keys (-want +got):\n%s", diff)
	}

	txn := kmsg.NewPtrFindCoordinatorRequest()
	txn.Version, txn.CoordinatorKey, txn.CoordinatorType = 3, "tx", 1
	if resp, err = txn.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	// This node runs the transaction coordinator.
	if resp.ErrorCode != 0 || resp.Port <= 0 {
		t.Errorf("transaction coordinator: %v at port %d, want this broker", kerr.ErrorForCode(resp.ErrorCode), resp.Port)
	}
	txn4 := kmsg.NewPtrFindCoordinatorRequest()
	txn4.Version, txn4.CoordinatorKeys, txn4.CoordinatorType = 4, []string{"tx"}, 1
	resp4, err := txn4.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp4.Coordinators) != 1 || resp4.Coordinators[0].ErrorCode != 0 || resp4.Coordinators[0].NodeID != resp.NodeID {
		t.Errorf("v4 transaction coordinator: %+v, want node %d", resp4.Coordinators, resp.NodeID)
	}
}

// Bad group input over the wire gets Kafka's codes, and the connection
// keeps working.
func TestGroupBadInput(t *testing.T) {
	b := startGroupBroker(t, testGroupOptions())
	b.createTopic("orders", 2)
	cl := b.client()
	ctx := context.Background()

	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType = 9, "", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
	jr, err := join.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 8, "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{
		{Topic: "nope", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}},
		{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 5, Offset: 1}, {Partition: 1, Offset: 7}}},
	}
	cr, err := commit.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", "who", 3
	hr, err := hb.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := []int16{jr.ErrorCode, cr.Topics[0].Partitions[0].ErrorCode, cr.Topics[1].Partitions[0].ErrorCode, cr.Topics[1].Partitions[1].ErrorCode, hr.ErrorCode}
	want := []int16{kerr.InvalidGroupID.Code, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code, 0, kerr.UnknownMemberID.Code}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error codes (-want +got):\n%s", diff)
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Group = 7, "g"
	fr, err := fetch.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(fr.Topics) != 1 || fr.Topics[0].Topic != "orders" || fr.Topics[0].Partitions[0].Offset != 7 {
		t.Errorf("only the valid commit is stored: %+v", fr.Topics)
	}
}

// A flood of joins with fresh group and member ids is bounded by the
// coordinator's caps, answered with Kafka's codes, and leaves nothing behind
// once the unused member ids expire; a real consumer then works.
func TestGroupJoinFlood(t *testing.T) {
	gopts := testGroupOptions()
	gopts.MaxGroups, gopts.MaxMembers = 20, 5
	b := startGroupBroker(t, gopts)
	b.createTopic("orders", 1)
	cl := b.client()
	ctx := context.Background()
	// Straight to the broker: kgo's sharded requests would retry
	// COORDINATOR_NOT_AVAILABLE.
	node := cl.Broker(0)
	codes := map[int16]int{}
	for i := 0; i < 300; i++ {
		join := kmsg.NewPtrJoinGroupRequest()
		join.Version, join.ProtocolType = 9, "consumer"
		join.Group = "flood-" + strconv.Itoa(i%40)
		join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 5000, 5000
		join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: make([]byte, 1000)}}
		resp, err := node.Request(ctx, join)
		if err != nil {
			t.Fatal(err)
		}
		codes[resp.(*kmsg.JoinGroupResponse).ErrorCode]++
	}
	// Groups flood-0..19 are created first and get 8 joins each: 5 ids
	// handed out, then GROUP_MAX_SIZE_REACHED; flood-20..39 (7 joins each)
	// find the coordinator full.
	want := map[int16]int{
		kerr.MemberIDRequired.Code:        20 * 5,
		kerr.GroupMaxSizeReached.Code:     20 * 3,
		kerr.CoordinatorNotAvailable.Code: 20 * 7,
	}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("flood answers (-want +got):\n%s", diff)
	}
	list := func() int {
		t.Helper()
		resp, err := kmsg.NewPtrListGroupsRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Groups)
	}
	if n := list(); n > 20 {
		t.Fatalf("%d groups held, cap 20", n)
	}
	waitFor(t, "the flood's pending members to expire", 20*time.Second, func() bool { return list() == 0 })

	c := newConsumption()
	m := startMember(t, b, "real", "real", "orders", c)
	waitFor(t, "a real consumer to get the partition", 10*time.Second, func() bool { return len(m.owned()) == 1 })
	m.leave(t)
}
