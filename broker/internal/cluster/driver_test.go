package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/quorum"
)

// fakeQuorum is a single-process quorum: Propose applies the entry to the
// state machine at once, at the next index, unless the test arranged for
// the next proposal to fail or for another entry to commit first.
type fakeQuorum struct {
	sm      *imageSM
	leaderc chan quorum.LeaderChange

	mu     sync.Mutex
	index  uint64
	leader bool
	// failNext fails the next proposal with this error (not committed).
	failNext error
	// before is committed just before the next proposal.
	before []byte
	// proposals counts the entries committed through Propose.
	proposals int
}

func newFakeQuorum(sm *imageSM) *fakeQuorum {
	return &fakeQuorum{sm: sm, leaderc: make(chan quorum.LeaderChange, 1), leader: true}
}

func (f *fakeQuorum) Propose(_ context.Context, data []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return 0, &quorum.NotLeaderError{}
	}
	if err := f.failNext; err != nil {
		f.failNext = nil
		return 0, err
	}
	if f.before != nil {
		f.index++
		if err := f.sm.Apply(f.index, f.before); err != nil {
			return 0, err
		}
		f.before = nil
	}
	f.index++
	if err := f.sm.Apply(f.index, data); err != nil {
		return 0, err
	}
	f.proposals++
	return f.index, nil
}

func (f *fakeQuorum) Status() quorum.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	role := quorum.RoleFollower
	if f.leader {
		role = quorum.RoleLeader
	}
	return quorum.Status{ID: 1, Role: role, Leader: 1, Commit: f.index, Applied: f.index}
}

func (f *fakeQuorum) LeaderChanges() <-chan quorum.LeaderChange { return f.leaderc }

func (f *fakeQuorum) setLeader(leader bool) {
	f.mu.Lock()
	f.leader = leader
	f.mu.Unlock()
	select {
	case <-f.leaderc:
	default:
	}
	f.leaderc <- quorum.LeaderChange{Leader: 1, IsLeader: leader}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type driverHarness struct {
	t     *testing.T
	sm    *imageSM
	q     *fakeQuorum
	d     *driver
	clock *fakeClock

	// probeMu guards refused and probed: the liveness probes the
	// driver makes find the addresses in refused refused, and count
	// in probed.
	probeMu sync.Mutex
	refused map[string]bool
	probed  map[string]int
}

func newDriverHarness(t *testing.T) *driverHarness {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sm := newImageSM(log)
	q := newFakeQuorum(sm)
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	n := 0
	d := newDriver(q, sm, metadata.Options{
		SessionTimeout: 5 * time.Second,
		NewTopicID: func() metadata.TopicID {
			n++
			return metadata.TopicID{byte(n)}
		},
	}, clock.Now, log)
	h := &driverHarness{t: t, sm: sm, q: q, d: d, clock: clock, refused: map[string]bool{}, probed: map[string]int{}}
	d.probe = func(_ context.Context, addr string) bool {
		h.probeMu.Lock()
		defer h.probeMu.Unlock()
		h.probed[addr]++
		return h.refused[addr]
	}
	d.start()
	t.Cleanup(func() {
		d.stop()
		goleak.VerifyNone(t, ignore)
	})
	return h
}

func (h *driverHarness) call(req kmsg.Request) (kmsg.Response, uint64, error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.d.handle(ctx, req)
}

func (h *driverHarness) register(id int32) int64 {
	h.t.Helper()
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = id
	req.IncarnationID = [16]byte{byte(id)}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", uint16(9000+id)
	req.Listeners = append(req.Listeners, l)
	resp, _, err := h.call(req)
	if err != nil {
		h.t.Fatalf("register %d: %v", id, err)
	}
	r := resp.(*kmsg.BrokerRegistrationResponse)
	if r.ErrorCode != 0 {
		h.t.Fatalf("register %d: %v", id, kerr.ErrorForCode(r.ErrorCode))
	}
	return r.BrokerEpoch
}

func (h *driverHarness) heartbeat(id int32, epoch int64) *kmsg.BrokerHeartbeatResponse {
	h.t.Helper()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = id, epoch
	req.CurrentMetadataOffset = int64(h.sm.Image().Applied())
	resp, applied, err := h.call(req)
	if err != nil {
		h.t.Fatalf("heartbeat %d: %v", id, err)
	}
	if h.sm.Image().Applied() < applied {
		h.t.Fatalf("heartbeat reply at offset %d, image only at %d", applied, h.sm.Image().Applied())
	}
	return resp.(*kmsg.BrokerHeartbeatResponse)
}

func (h *driverHarness) createTopic(name string, partitions int32, rf int16) (*kmsg.CreateTopicsResponse, error) {
	h.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	req.Topics = append(req.Topics, t)
	resp, _, err := h.call(req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.CreateTopicsResponse), nil
}

// unfencedBrokers registers and unfences brokers 1..n.
func (h *driverHarness) unfencedBrokers(n int32) map[int32]int64 {
	epochs := map[int32]int64{}
	for id := int32(1); id <= n; id++ {
		epochs[id] = h.register(id)
	}
	for id := int32(1); id <= n; id++ {
		if r := h.heartbeat(id, epochs[id]); r.IsFenced {
			h.t.Fatalf("broker %d still fenced after a caught-up heartbeat", id)
		}
	}
	return epochs
}

// TestDriverRegisterHeartbeatCreate: brokers register (fenced), a caught-up
// heartbeat unfences them, and a topic is created on them; every reply
// comes once its entry is in the image.
func TestDriverRegisterHeartbeatCreate(t *testing.T) {
	h := newDriverHarness(t)
	h.unfencedBrokers(3)
	resp, err := h.createTopic("orders", 6, 3)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}
	img := h.sm.Image()
	top, ok := img.Topic("orders")
	if !ok || top.Partitions != 6 {
		t.Fatalf("image topic: %+v %v", top, ok)
	}
	leaders := map[metadata.NodeID]int{}
	for _, p := range img.Partitions(top.ID) {
		leaders[p.Leader]++
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders not spread: %v", leaders)
	}
	// A heartbeat that changes nothing proposes nothing.
	before := h.q.proposals
	h.heartbeat(1, 1)
	if h.q.proposals != before {
		t.Fatalf("a plain heartbeat proposed %d entries", h.q.proposals-before)
	}
}

// TestDriverResetAfterFailedProposal: a proposal that fails must not leave
// its records in the controller's view: the same topic can be created
// again at once (without the Reset it would be TOPIC_ALREADY_EXISTS).
func TestDriverResetAfterFailedProposal(t *testing.T) {
	h := newDriverHarness(t)
	h.unfencedBrokers(1)
	h.q.mu.Lock()
	h.q.failNext = quorum.ErrProposalDropped
	h.q.mu.Unlock()
	if _, err := h.createTopic("a", 1, 1); !errors.Is(err, quorum.ErrProposalDropped) {
		t.Fatalf("failed proposal: got %v", err)
	}
	resp, err := h.createTopic("a", 1, 1)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("retry after a failed proposal: %v %+v", err, resp)
	}
}

// TestDriverRefusedEntry: an entry of another proposer commits first and
// makes this one not fit (same topic name): the image refuses it on every
// node, the caller gets an error, and the controller, Reset, answers from
// the committed state: the retry finds the topic, and deleting it removes
// the committed topic (a controller still holding its own refused topic
// would delete that id, and the image would refuse it again).
func TestDriverRefusedEntry(t *testing.T) {
	h := newDriverHarness(t)
	h.unfencedBrokers(1)
	other := metadata.EncodeEntry([]metadata.Record{
		metadata.TopicRecord{ID: metadata.TopicID{0xee}, Name: "a"},
		metadata.PartitionRecord{Topic: metadata.TopicID{0xee}, Partition: 0, Replicas: []metadata.NodeID{1}, ISR: []metadata.NodeID{1}, Leader: 1},
	})
	h.q.mu.Lock()
	h.q.before = other
	h.q.mu.Unlock()
	if _, err := h.createTopic("a", 1, 1); err == nil || !metadata.IsInvalid(err) {
		t.Fatalf("refused entry: got %v, want an IsInvalid error", err)
	}
	if top, _ := h.sm.Image().Topic("a"); top.ID != (metadata.TopicID{0xee}) {
		t.Fatalf("image holds topic a with id %v, want the other proposer's", top.ID)
	}
	resp, err := h.createTopic("a", 1, 1)
	if err != nil || resp.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("retry: %v %+v, want TOPIC_ALREADY_EXISTS", err, resp)
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TopicNames = []string{"a"}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("a")
	del.Topics = append(del.Topics, dt)
	if _, _, err := h.call(del); err != nil {
		t.Fatalf("delete after the refusal: %v", err)
	}
	if _, ok := h.sm.Image().Topic("a"); ok {
		t.Fatal("topic a still in the image after its deletion")
	}
}

// TestImageSMRefusedEntry: an entry the image refuses as not fitting is
// applied as a no-op (the node goes on, the offset advances) and
// remembered; one that does not decode stops the node.
func TestImageSMRefusedEntry(t *testing.T) {
	sm := newImageSM(slog.New(slog.NewTextHandler(io.Discard, nil)))
	bad := metadata.EncodeEntry([]metadata.Record{metadata.PartitionRecord{Topic: metadata.TopicID{9}, Replicas: []metadata.NodeID{1}, ISR: []metadata.NodeID{1}, Leader: 1}})
	if err := sm.Apply(1, bad); err != nil {
		t.Fatalf("refused entry stopped the node: %v", err)
	}
	if sm.Image().Applied() != 1 || !metadata.IsInvalid(sm.Refused(1)) {
		t.Fatalf("applied %d, refusal %v", sm.Image().Applied(), sm.Refused(1))
	}
	if err := sm.Apply(2, []byte{0xff, 0xff}); err == nil {
		t.Fatal("an undecodable entry was accepted")
	}
	if sm.Image().Applied() != 1 {
		t.Fatalf("undecodable entry moved the applied offset to %d", sm.Image().Applied())
	}
}

// TestDriverNotLeader: a node that does not lead answers nothing; once it
// leads again it builds a controller from the committed image.
func TestDriverNotLeader(t *testing.T) {
	h := newDriverHarness(t)
	h.unfencedBrokers(1)
	h.q.setLeader(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := h.createTopic("a", 1, 1)
		if errors.Is(err, ErrNotController) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower still answers: %v", err)
		}
	}
	h.q.setLeader(true)
	resp, err := h.createTopic("a", 1, 1)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create once leading again: %v %+v", err, resp)
	}
}

// TestDriverFencesExpiredSession: the driver ticks the controller at its
// deadline; a broker that stopped heartbeating is fenced and its
// leaderships move to the other in-sync replica.
func TestDriverFencesExpiredSession(t *testing.T) {
	h := newDriverHarness(t)
	epochs := h.unfencedBrokers(2)
	if resp, err := h.createTopic("a", 2, 2); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}
	// Broker 1 keeps heartbeating across the session timeout; broker 2 does not.
	for range 3 {
		h.clock.Add(2 * time.Second)
		h.heartbeat(1, epochs[1])
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := h.sm.Image().Broker(2); b.Fenced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("broker 2 not fenced after its session expired")
		}
		h.heartbeat(1, epochs[1]) // wakes the loop, which re-arms its timer
		time.Sleep(10 * time.Millisecond)
	}
	img := h.sm.Image()
	top, _ := img.Topic("a")
	for _, p := range img.Partitions(top.ID) {
		if p.Leader != 1 {
			t.Fatalf("partition %d led by %d after broker 2 was fenced", p.Partition, p.Leader)
		}
	}
	if b, _ := img.Broker(1); b.Fenced {
		t.Fatal("broker 1, which kept heartbeating, was fenced")
	}
}

// TestDriverFencesBrokerFoundGone: when a broker's controller connection
// ends, the driver probes its listener; a refusal fences it at once (the
// clock does not move: no session expires), one that is not refused
// changes nothing.
func TestDriverFencesBrokerFoundGone(t *testing.T) {
	h := newDriverHarness(t)
	h.unfencedBrokers(2)
	if resp, err := h.createTopic("a", 2, 2); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}
	probes := func(addr string) int {
		h.probeMu.Lock()
		defer h.probeMu.Unlock()
		return h.probed[addr]
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(5 * time.Millisecond) // polling interval with a deadline
		}
	}
	// Broker 1's connection ends, but its listener accepts (a broker that
	// reconnects, or a paused one): probed, not fenced.
	h.d.disconnected(1)
	waitFor("broker 1 is probed", func() bool { return probes("127.0.0.1:9001") > 0 })
	// Broker 2's process is gone.
	h.probeMu.Lock()
	h.refused["127.0.0.1:9002"] = true
	h.probeMu.Unlock()
	h.d.disconnected(2)
	waitFor("broker 2 is fenced", func() bool { b, _ := h.sm.Image().Broker(2); return b.Fenced })
	img := h.sm.Image()
	if b, _ := img.Broker(1); b.Fenced {
		t.Fatal("broker 1, whose listener accepts, was fenced")
	}
	top, _ := img.Topic("a")
	for _, p := range img.Partitions(top.ID) {
		if p.Leader != 1 {
			t.Fatalf("partition %d led by %d after broker 2 was found gone", p.Partition, p.Leader)
		}
	}
}
