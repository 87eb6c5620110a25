package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/base"
	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// Log is what replication needs of a partition log beyond topics.Log (the
// storage engine's log provides it; see broker/replication.go).
type Log interface {
	topics.Log
	// AppendReplica appends a leader's batches as they are.
	AppendReplica(batches []byte) error
	// DropSyncedCache lets the page cache go of what an fsync covers: a
	// follower's log is read by nobody while it follows.
	DropSyncedCache()
	// TruncateTo drops every batch ending at or past off; it returns the
	// new log end offset.
	TruncateTo(off base.Offset) (base.Offset, error)
	// ReadReplica reads up to the log end offset, past the high watermark.
	ReadReplica(from base.Offset, maxBytes int) ([]byte, error)
	// ReadReplicaInto and ReadReplicaRange are ReadReplica into the
	// caller's buffer and as a file range (topics.BufferReader and
	// topics.RangeReader past the high watermark).
	ReadReplicaInto(dst []byte, from base.Offset, maxBytes int) ([]byte, error)
	ReadReplicaRange(from base.Offset, maxBytes, minBytes int) (topics.FileRange, bool, error)
	// SetHighWatermarkLimit caps the high watermark; ClearHighWatermarkLimit
	// lifts the cap.
	SetHighWatermarkLimit(limit base.Offset)
	ClearHighWatermarkLimit()
	// SetFollowerHighWatermark takes a leader's high watermark, lowering
	// this log's if need be.
	SetFollowerHighWatermark(leaderHW base.Offset)
	// DurableEnd is the end of what an fsync covers.
	DurableEnd() base.Offset
	// Appended is closed when the log end offset next advances.
	Appended() <-chan struct{}
	// LatestEpoch is the leader epoch of the last batch, -1 if none.
	LatestEpoch() base.Epoch
	// EndOffsetForEpoch answers OffsetForLeaderEpoch (KIP-101).
	EndOffsetForEpoch(e base.Epoch) (base.Epoch, base.Offset, bool)
	// WaitHighWatermark waits until the high watermark reaches end.
	WaitHighWatermark(ctx context.Context, end base.Offset, stop <-chan struct{}) error
}

// Options configure a Manager.
type Options struct {
	// Self is this broker's node id.
	Self int32
	// Topics is the local topic registry. Required.
	Topics *topics.Registry
	// Dial connects to another broker's client listener. Default: TCP.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// AlterPartition sends an ISR change to the active controller.
	// Required.
	AlterPartition func(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error)
	// BrokerEpoch returns this broker's current registration epoch (-1
	// when unregistered). Required.
	BrokerEpoch func() int64
	// LagTime is replica.lag.time.max.ms: a follower that has not caught
	// up with its leader's end for this long leaves the ISR. Default 10s.
	LagTime time.Duration
	// FetchMaxWait is how long a follower's fetch waits at the leader for
	// new data. Default 500ms.
	FetchMaxWait time.Duration
	// DurableWait is how long a follower waits for the fsync of what a
	// fetch brought before it fetches again; a partition whose appends
	// are still not durable then is left out of its fetches until they
	// are, since a fetch's offset is what the leader counts toward the
	// high watermark. Default 10s.
	DurableWait time.Duration
	// SessionLapsed reports whether the controller has answered none of
	// this broker's heartbeats for its session timeout, so that it has
	// most likely fenced this broker and moved its leaderships. A leader
	// then, while a follower in its ISR lags (an ISR change it cannot get),
	// answers produces, consumers' fetches and ListOffsets
	// NOT_LEADER_OR_FOLLOWER and fails its acks=all waiters so: clients
	// look for the leader elsewhere rather than wait out their request
	// timeouts here. Default: never.
	SessionLapsed func() bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// AfterCommitWait, when set, is called by WaitCommitted once its wait
	// for the high watermark has ended and before it decides the answer,
	// with no lock held: tests change the ISR there to drive the race
	// between an ISR shrink and its growing back. Default nil.
	AfterCommitWait func()
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills the zero fields.
func (o *Options) EnsureDefaults() {
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if o.LagTime <= 0 {
		o.LagTime = 10 * time.Second
	}
	if o.FetchMaxWait <= 0 {
		o.FetchMaxWait = 500 * time.Millisecond
	}
	if o.DurableWait <= 0 {
		o.DurableWait = 10 * time.Second
	}
	if o.SessionLapsed == nil {
		o.SessionLapsed = func() bool { return false }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

type role uint8

const (
	roleNone role = iota
	roleLeader
	roleFollower
)

type key struct {
	id [16]byte
	p  int32
}

// partition is one partition this broker replicates.
type partition struct {
	key  key
	name string
	log  Log

	// mu guards the fields below. Lock order: Manager.mu, then mu.
	mu       sync.Mutex
	role     role
	epoch    int32 // leader epoch of the current role
	leaderID int32
	leader   *Leader // when role is roleLeader
	// epochStart is the log end offset when this broker became leader in
	// epoch: the first offset of the epoch. Valid when role is roleLeader.
	epochStart base.Offset
	minISR     int
	isrLen     int // committed ISR size
	// throttled: this broker is a replica a reassignment is adding and
	// not yet in the ISR; its fetches are throttled (throttle.go).
	throttled bool
	// retryAt: no ISR change is proposed before it (after a refusal).
	retryAt time.Time
	// stop is closed when the current role (and epoch) ends: waiters for
	// acks=all give up.
	stop chan struct{}
	// waiters are the acks=all produces waiting for the high watermark in
	// the current role. Invariant: each waiter's end was above the high
	// watermark every time the committed ISR was below minISR since it
	// registered (else it was failed and removed).
	waiters map[*waiter]struct{}
}

// waiter is one acks=all produce waiting for the high watermark to reach
// end. done is closed when it must stop waiting: the role ended, or the
// ISR shrank below min.insync.replicas before the high watermark covered
// end (shrunk set).
type waiter struct {
	end    base.Offset
	done   chan struct{}
	shrunk bool
	cutOff bool // failed by releaseCutOff
}

func (ps *partition) endRoleLocked() {
	if ps.stop != nil {
		close(ps.stop)
	}
	ps.stop = make(chan struct{})
	ps.leader = nil
	for w := range ps.waiters {
		close(w.done)
	}
	ps.waiters = nil
}

// setISRLocked records the committed ISR's size. Called before the high
// watermark limit is recomputed for that ISR: when the ISR is below
// min.insync.replicas, every waiter whose records the high watermark does
// not cover yet is failed (NOT_ENOUGH_REPLICAS_AFTER_APPEND), so that the
// smaller ISR covering them afterwards never acknowledges them. Caller
// holds ps.mu.
func (ps *partition) setISRLocked(n int) {
	ps.isrLen = n
	if n >= ps.minISR || len(ps.waiters) == 0 {
		return
	}
	hw := ps.log.HighWatermark()
	for w := range ps.waiters {
		if w.end > hw {
			w.shrunk = true
			close(w.done)
			delete(ps.waiters, w)
		}
	}
}

// cutOffLocked reports whether this broker leads ps but has lost the
// controller (Options.SessionLapsed) while a follower in the ISR lags:
// it can neither commit nor learn that another broker leads now. Caller
// holds ps.mu. The session is asked first: one clock read, false on
// a healthy broker, so a produce pays no walk of the ISR.
func (m *Manager) cutOffLocked(ps *partition) bool {
	return ps.role == roleLeader && ps.leader != nil && m.opts.SessionLapsed() && ps.leader.Lagging(m.opts.Now())
}

// Manager makes this broker the leader or a follower of the partitions the
// metadata image assigns it, serves its followers' fetches, runs one
// fetcher per broker it follows, and proposes ISR changes.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	parts    map[key]*partition
	byName   map[string][16]byte
	addrs    map[int32]string
	fetchers map[int32]*fetcher
	alter    bool // an AlterPartition is in flight
	// synced is the applied offset of the image last synced, and
	// incomplete whether that sync skipped a partition whose local log did
	// not exist yet: only then does an unchanged image need another look.
	synced     uint64
	incomplete bool
	// roles is the loop's hand-off to requests waiting for a role
	// (await.go).
	roles roleWaits
	// peers are the idle connections of SendToBroker (peer.go).
	peers peerConns

	// thrMu guards throttle, the bucket every fetch of a throttled
	// partition draws from (ThrottleRateConfig). Taken alone.
	thrMu    sync.Mutex
	throttle Throttle

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewManager returns a manager; Run drives it.
func NewManager(opts Options) *Manager {
	opts.EnsureDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		opts: opts, log: opts.Logger.With("node", opts.Self),
		parts: map[key]*partition{}, byName: map[string][16]byte{}, addrs: map[int32]string{},
		fetchers: map[int32]*fetcher{}, ctx: ctx, cancel: cancel,
		roles: newRoleWaits(),
	}
}

// Run applies images from images() whenever changed() fires (and every
// tick, since local logs may appear after the image that names them), and
// proposes ISR changes, until Close. Nothing is applied before ready()
// reports the image whole (a restarted node replaying its metadata log
// must not take the roles of an old state).
func (m *Manager) Run(images func() *metadata.Image, changed func() <-chan struct{}, ready func() bool) {
	m.roles.setImages(images)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		// NB: a topic's local logs appear after the image that names it
		// (the cluster's reconciler creates them), so the manager also
		// looks again at every tick.
		tick := time.NewTicker(min(max(m.opts.LagTime/8, 20*time.Millisecond), 50*time.Millisecond))
		defer tick.Stop()
		whole := false
		for {
			ch := changed()
			if !whole {
				whole = ready()
				m.roles.whole.Store(whole)
			}
			if whole {
				m.Sync(images())
				m.roles.synced()
				m.proposeISR()
				m.releaseCutOff()
			}
			select {
			case <-m.ctx.Done():
				return
			case <-ch:
			case <-tick.C:
			case <-m.roles.kick:
			}
		}
	}()
}

// Close stops the fetchers and the manager's loop; waiters for acks=all
// are released.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
	m.peers.close()
	m.mu.Lock()
	fs := m.fetchers
	m.fetchers = map[int32]*fetcher{}
	m.mu.Unlock()
	for _, f := range fs {
		f.close()
	}
	m.mu.Lock()
	for _, ps := range m.parts {
		ps.mu.Lock()
		ps.role = roleNone
		ps.endRoleLocked()
		ps.mu.Unlock()
	}
	m.mu.Unlock()
}

// minISR returns a topic's min.insync.replicas: its explicit config, else
// 2 for a replication factor of 3 or more, else 1.
func minISR(img *metadata.Image, name string, rf int) int {
	cfg := img.Config(metadata.ConfigResource{Type: metadata.ConfigTopic, Name: name})
	if v, ok := cfg["min.insync.replicas"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	if rf >= 3 {
		return 2
	}
	return 1
}

// Sync makes the local roles match img.
func (m *Manager) Sync(img *metadata.Image) {
	self := metadata.NodeID(m.opts.Self)
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if img.Applied() == m.synced && !m.incomplete && m.synced != 0 {
		return
	}
	m.synced, m.incomplete = img.Applied(), false
	m.setThrottle(img, now)
	for _, b := range img.Brokers() {
		if len(b.Listeners) > 0 {
			m.addrs[int32(b.ID)] = net.JoinHostPort(b.Listeners[0].Host, strconv.Itoa(int(b.Listeners[0].Port)))
		}
	}
	seen := map[key]bool{}
	for _, t := range img.Topics() {
		name := string(t.Name)
		// NB: internal topics of the image (__consumer_offsets) are
		// replicated like any other; the coordinators follow their
		// leadership (broker/internal/ownership).
		local, ok := m.opts.Topics.Get(name)
		if !ok || local.ID() != [16]byte(t.ID) {
			m.incomplete = true // the reconciler has not created it yet
			continue
		}
		m.byName[name] = t.ID
		for _, p := range img.Partitions(t.ID) {
			if !slices.Contains(p.Replicas, self) {
				continue
			}
			lp, ok := local.Partition(p.Partition)
			if !ok {
				m.incomplete = true
				continue
			}
			rl, ok := lp.Log().(Log)
			if !ok {
				continue // a log that cannot replicate (tests' memory logs)
			}
			k := key{t.ID, p.Partition}
			seen[k] = true
			ps := m.parts[k]
			if ps == nil || ps.log != rl {
				if ps != nil {
					m.dropLocked(ps)
				}
				ps = &partition{key: k, name: name, log: rl, leaderID: -1, stop: make(chan struct{})}
				m.parts[k] = ps
			}
			rf := len(p.Replicas)
			if p.Original != nil {
				rf = len(p.Original) // a reassignment's union is not the replication factor
			}
			m.syncPartitionLocked(ps, p, minISR(img, name, rf), now)
		}
	}
	for k, ps := range m.parts {
		if !seen[k] {
			m.dropLocked(ps)
			delete(m.parts, k)
			if p, ok := img.Partition(metadata.TopicID(k.id), k.p); ok && !slices.Contains(p.Replicas, self) {
				m.removeDataLocked(ps)
			}
		}
	}
	for name, id := range m.byName {
		if t, ok := img.Topic(metadata.TopicName(name)); !ok || t.ID != id {
			delete(m.byName, name)
		}
	}
}

// removeDataLocked empties the log of a partition this broker no longer
// replicates (a reassignment moved it away): its records are dropped, its
// end goes back to its start. Caller holds m.mu; ps's role has ended, so
// no fetcher appends to it (they check the role under ps.mu).
func (m *Manager) removeDataLocked(ps *partition) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	start := ps.log.LogStartOffset()
	if ps.log.LogEndOffset() == start {
		return
	}
	if _, err := ps.log.TruncateTo(start); err != nil {
		m.log.Warn("replica: dropping the data of a partition moved away", "topic", ps.name, "partition", ps.key.p, "err", err)
		return
	}
	m.log.Info("replica: no longer a replica; data dropped", "topic", ps.name, "partition", ps.key.p)
}

// dropLocked stops replicating ps. Caller holds m.mu.
func (m *Manager) dropLocked(ps *partition) {
	ps.mu.Lock()
	from := ps.leaderID
	wasFollower := ps.role == roleFollower
	ps.role = roleNone
	ps.endRoleLocked()
	ps.mu.Unlock()
	if wasFollower {
		if f := m.fetchers[from]; f != nil {
			f.remove(ps.key)
		}
	}
}

// syncPartitionLocked applies one partition's image state. Caller holds
// m.mu.
func (m *Manager) syncPartitionLocked(ps *partition, p metadata.Partition, minISR int, now time.Time) {
	self := metadata.NodeID(m.opts.Self)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.minISR = minISR
	ps.setISRLocked(len(p.ISR))
	ps.throttled = p.Original != nil && !slices.Contains(p.Original, self) && !slices.Contains(p.ISR, self)
	oldRole, oldLeader := ps.role, ps.leaderID
	switch {
	case p.Leader == self:
		if ps.role == roleLeader && ps.epoch == int32(p.LeaderEpoch) {
			ps.leader.SetReplicas(toIDs(p.Replicas))
			ps.leader.ISRCommitted(now, toIDs(p.ISR), int32(p.PartitionEpoch))
			m.applyLimitLocked(ps)
			return
		}
		ps.endRoleLocked()
		ps.role, ps.epoch, ps.leaderID = roleLeader, int32(p.LeaderEpoch), int32(self)
		ps.epochStart = ps.log.LogEndOffset()
		ps.leader = NewLeader(int32(self), m.opts.LagTime, now, LeaderState{
			Epoch: int32(p.LeaderEpoch), PartitionEpoch: int32(p.PartitionEpoch),
			Replicas: toIDs(p.Replicas), ISR: toIDs(p.ISR),
			LEO: ps.log.LogEndOffset(), HW: ps.log.HighWatermark(),
		})
		m.applyLimitLocked(ps)
		m.log.Info("replica: leading", "topic", ps.name, "partition", ps.key.p, "epoch", p.LeaderEpoch, "isr", p.ISR, "leo", ps.log.LogEndOffset())
	case p.Leader == metadata.NoLeader:
		if ps.role != roleNone {
			ps.endRoleLocked()
		}
		ps.role, ps.epoch, ps.leaderID = roleNone, int32(p.LeaderEpoch), -1
	default:
		if ps.role == roleFollower && ps.epoch == int32(p.LeaderEpoch) && ps.leaderID == int32(p.Leader) {
			return
		}
		ps.endRoleLocked()
		// Freeze the high watermark until the new leader tells it.
		ps.log.SetHighWatermarkLimit(ps.log.HighWatermark())
		ps.role, ps.epoch, ps.leaderID = roleFollower, int32(p.LeaderEpoch), int32(p.Leader)
	}
	if oldRole == roleFollower && (ps.role != roleFollower || oldLeader != ps.leaderID) {
		if f := m.fetchers[oldLeader]; f != nil {
			f.remove(ps.key)
		}
	}
	if ps.role == roleFollower {
		f := m.fetchers[ps.leaderID]
		if f == nil {
			f = newFetcher(m, ps.leaderID)
			m.fetchers[ps.leaderID] = f
		}
		f.add(ps)
	}
}

// applyLimitLocked sets the leader's high-watermark limit. Caller holds
// ps.mu.
func (m *Manager) applyLimitLocked(ps *partition) {
	l := ps.leader
	l.Appended(ps.log.LogEndOffset(), ps.log.DurableEnd())
	lim := l.Limit()
	if lim == NoLimit {
		ps.log.ClearHighWatermarkLimit()
		return
	}
	ps.log.SetHighWatermarkLimit(base.Offset(lim))
}

func toIDs(ns []metadata.NodeID) []NodeID {
	out := make([]NodeID, len(ns))
	for i, n := range ns {
		out[i] = NodeID(n)
	}
	return out
}

func (m *Manager) addr(id int32) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.addrs[id]
	return a, ok
}

// proposeISR sends the ISR changes the leaders want in one AlterPartition,
// unless one is in flight.
func (m *Manager) proposeISR() {
	now := m.opts.Now()
	m.mu.Lock()
	if m.alter {
		m.mu.Unlock()
		return
	}
	type prop struct {
		ps    *partition
		epoch int32
	}
	var props []prop
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 2
	req.BrokerID = m.opts.Self
	req.BrokerEpoch = m.opts.BrokerEpoch()
	topicsByID := map[[16]byte]int{}
	for _, ps := range m.parts {
		ps.mu.Lock()
		if ps.role != roleLeader {
			ps.mu.Unlock()
			continue
		}
		if now.Before(ps.retryAt) {
			ps.mu.Unlock()
			continue
		}
		ps.leader.Appended(ps.log.LogEndOffset(), ps.log.DurableEnd())
		isr, pe, ok := ps.leader.ProposeISR(now)
		epoch := ps.epoch
		ps.mu.Unlock()
		if !ok {
			continue
		}
		if req.BrokerEpoch < 0 {
			ps.mu.Lock()
			if ps.leader != nil {
				ps.leader.ISRRefused()
			}
			ps.mu.Unlock()
			continue
		}
		i, ok := topicsByID[ps.key.id]
		if !ok {
			t := kmsg.NewAlterPartitionRequestTopic()
			t.TopicID, t.Topic = ps.key.id, ps.name
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			topicsByID[ps.key.id] = i
		}
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, rp.NewISR = ps.key.p, epoch, pe, isr
		for _, id := range isr {
			// NB: the trip to the controller may go at v3, which carries
			// members with their broker epochs (-1: not checked).
			e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			e.BrokerID, e.BrokerEpoch = id, -1
			rp.NewEpochISR = append(rp.NewEpochISR, e)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		props = append(props, prop{ps, epoch})
		m.log.Info("replica: proposing an ISR change", "topic", ps.name, "partition", ps.key.p, "isr", isr, "epoch", epoch)
	}
	if len(props) == 0 {
		m.mu.Unlock()
		return
	}
	m.alter = true
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
		resp, err := m.opts.AlterPartition(ctx, req)
		cancel()
		results := map[key]kmsg.AlterPartitionResponseTopicPartition{}
		if err == nil && resp.ErrorCode == 0 {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					results[key{t.TopidID, p.Partition}] = p
				}
			}
		} else {
			if err == nil {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
			m.log.Warn("replica: AlterPartition failed", "err", err)
		}
		now := m.opts.Now()
		for _, pr := range props {
			ps := pr.ps
			ps.mu.Lock()
			if ps.role == roleLeader && ps.epoch == pr.epoch && ps.leader != nil {
				r, ok := results[ps.key]
				if ok && r.ErrorCode == 0 {
					ps.leader.ISRCommitted(now, r.ISR, r.PartitionEpoch)
					ps.setISRLocked(len(r.ISR))
					m.applyLimitLocked(ps)
				} else {
					if ok {
						m.log.Info("replica: ISR change refused", "topic", ps.name, "partition", ps.key.p, "err", kerr.ErrorForCode(r.ErrorCode))
					}
					ps.leader.ISRRefused()
					ps.retryAt = now.Add(max(m.opts.LagTime/4, 100*time.Millisecond))
				}
			}
			ps.mu.Unlock()
		}
		m.mu.Lock()
		m.alter = false
		m.mu.Unlock()
	}()
}

// releaseCutOff fails the acks=all waiters of every partition this
// broker leads cut off (cutOffLocked): NOT_LEADER_OR_FOLLOWER now rather
// than REQUEST_TIMED_OUT at the client's timeout.
func (m *Manager) releaseCutOff() {
	if !m.opts.SessionLapsed() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ps := range m.parts {
		ps.mu.Lock()
		if len(ps.waiters) > 0 && m.cutOffLocked(ps) {
			for w := range ps.waiters {
				w.cutOff = true
				close(w.done)
				delete(ps.waiters, w)
			}
		}
		ps.mu.Unlock()
	}
}

// lookup returns the partition a topic partition names.
func (m *Manager) lookup(p *topics.Partition) *partition {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.parts[key{p.Topic().ID(), p.Index()}]
}

func (m *Manager) lookupName(name string, id [16]byte, p int32) *partition {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name != "" {
		var ok bool
		if id, ok = m.byName[name]; !ok {
			return nil
		}
	}
	return m.parts[key{id, p}]
}

// AppendEpoch returns the leader epoch a produce to p appends with: the
// partition's leader epoch when this broker replicates it, else 0.
func (m *Manager) AppendEpoch(p *topics.Partition) base.Epoch {
	ps := m.lookup(p)
	if ps == nil {
		return 0
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return base.Epoch(ps.epoch)
}

// CheckProduce returns the error code refusing a produce to p before
// anything is written: NOT_LEADER_OR_FOLLOWER when this broker does not
// lead it in the leader epoch the client knows (FENCED_LEADER_EPOCH or
// UNKNOWN_LEADER_EPOCH when it names another), NOT_ENOUGH_REPLICAS for
// acks=all when the ISR is smaller than min.insync.replicas. 0: go on.
func (m *Manager) CheckProduce(p *topics.Partition, acks int16) int16 {
	ps := m.awaitLeading(p)
	if ps == nil {
		return m.untracked(p)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.role != roleLeader || m.cutOffLocked(ps) {
		return kerr.NotLeaderForPartition.Code
	}
	if acks == -1 && ps.isrLen < ps.minISR {
		return kerr.NotEnoughReplicas.Code
	}
	return 0
}

// CheckLeaderEpoch answers a client's CurrentLeaderEpoch (-1: none) on a
// partition as Kafka's Partition.getLocalLog does: the epoch first, on any
// replica (a follower, or a replica of a partition without a leader, knows
// the leader epoch from the metadata image), FENCED_LEADER_EPOCH if it is
// older than the partition's, UNKNOWN_LEADER_EPOCH if newer; then the role,
// NOT_LEADER_OR_FOLLOWER unless this broker leads it here; else 0. A
// broker that is not a replica has no epoch to compare:
// NOT_LEADER_OR_FOLLOWER.
func (m *Manager) CheckLeaderEpoch(p *topics.Partition, epoch int32) int16 {
	ps := m.awaitLeading(p)
	if ps == nil {
		return m.untracked(p)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if code := checkEpoch(ps.epoch, epoch); code != 0 {
		return code
	}
	if ps.role != roleLeader || m.cutOffLocked(ps) {
		return kerr.NotLeaderForPartition.Code
	}
	return 0
}

// untracked answers for a partition the manager does not replicate: an
// internal topic's that the metadata image does not hold (a broker-local
// one) is served as a single node's (0); any other's is not served until
// the manager has taken its role (NOT_LEADER_OR_FOLLOWER, which clients
// retry), so that nothing is written or read outside replication.
func (m *Manager) untracked(p *topics.Partition) int16 {
	if p.Topic().Internal() {
		m.mu.Lock()
		_, inImage := m.byName[p.Topic().Name()]
		m.mu.Unlock()
		if !inImage {
			return 0
		}
	}
	return kerr.NotLeaderForPartition.Code
}

func checkEpoch(mine, theirs int32) int16 {
	switch {
	case theirs < 0:
		return 0
	case theirs < mine:
		return kerr.FencedLeaderEpoch.Code
	case theirs > mine:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// WaitCommitted waits until the high watermark of p covers end (an acks=all
// produce whose records end at end were appended). It fails with
// NOT_LEADER_OR_FOLLOWER if this broker stops leading first,
// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the committed ISR is (or shrinks)
// below min.insync.replicas before the high watermark covers end (even if
// the smaller ISR covers it afterwards, or the ISR grows back: the records
// were not on min.insync.replicas brokers when committed), and
// REQUEST_TIMED_OUT when ctx ends first.
//
// epoch is the leader epoch the records were appended with: if this broker
// no longer leads in it (it lost the leadership after the append, and may
// have truncated the records before leading again), the produce fails
// NOT_LEADER_OR_FOLLOWER rather than wait for an end that other records
// may reach.
func (m *Manager) WaitCommitted(ctx context.Context, p *topics.Partition, end base.Offset, epoch base.Epoch) error {
	ps := m.lookup(p)
	if ps == nil {
		if m.untracked(p) != 0 {
			return kerr.NotLeaderForPartition
		}
		return p.Log().WaitDurable(ctx, end)
	}
	ps.mu.Lock()
	if ps.role != roleLeader || base.Epoch(ps.epoch) != epoch {
		ps.mu.Unlock()
		return kerr.NotLeaderForPartition
	}
	if ps.isrLen < ps.minISR {
		// NB: the ISR shrank after CheckProduce let the produce in; the
		// records may already be covered, but by the smaller ISR.
		err := ps.notEnoughLocked()
		ps.mu.Unlock()
		return err
	}
	stop := ps.stop
	w := &waiter{end: end, done: make(chan struct{})}
	if ps.waiters == nil {
		ps.waiters = map[*waiter]struct{}{}
	}
	ps.waiters[w] = struct{}{}
	ps.mu.Unlock()

	err := ps.log.WaitHighWatermark(ctx, end, w.done)
	if h := m.opts.AfterCommitWait; h != nil {
		h()
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.waiters, w)
	switch {
	case w.shrunk:
		return ps.notEnoughLocked()
	case w.cutOff:
		return fmt.Errorf("%w: this broker lost the controller with %s/%d's ISR behind; another broker may lead it now", kerr.NotLeaderForPartition, ps.name, ps.key.p)
	case ps.stop != stop || ps.role != roleLeader:
		return fmt.Errorf("%w: leadership of %s/%d moved before the records were replicated", kerr.NotLeaderForPartition, ps.name, ps.key.p)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: the records were not replicated to the ISR in time", kerr.RequestTimedOut)
	}
	return err
}

func (ps *partition) notEnoughLocked() error {
	return fmt.Errorf("%w: the ISR of %s/%d shrank to %d replicas before the records were committed; min.insync.replicas is %d", kerr.NotEnoughReplicasAfterAppend, ps.name, ps.key.p, ps.isrLen, ps.minISR)
}

// State describes a partition's replication state for tests and tools:
// role ("leader", "follower", "none" or "" when not replicated here),
// leader epoch and, on the leader, the committed ISR.
func (m *Manager) State(topic string, p int32) (string, int32, []int32) {
	ps := m.lookupName(topic, [16]byte{}, p)
	if ps == nil {
		return "", 0, nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var isr []int32
	if ps.leader != nil {
		isr = ps.leader.ISR()
	}
	return [...]string{"none", "leader", "follower"}[ps.role], ps.epoch, isr
}

// Leadership reports whether this broker leads p and in which leader
// epoch, and whether it is ready to serve a coordinator's reads of it: its
// high watermark has reached the first offset of that epoch, so every
// record an earlier leader acknowledged lies below the high watermark here
// (see broker/internal/ownership).
func (m *Manager) Leadership(p *topics.Partition) (epoch int32, leading, ready bool) {
	ps := m.lookup(p)
	if ps == nil {
		return 0, false, false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.role != roleLeader {
		return ps.epoch, false, false
	}
	return ps.epoch, true, ps.log.HighWatermark() >= ps.epochStart
}
