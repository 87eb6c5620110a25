package replica

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/weir-dev/weir/broker/internal/base"
)

// NodeID is a broker's node id.
type NodeID = int32

// Offset is the broker's one log offset type (base.Offset), named here
// for the leader's bookkeeping.
type Offset = base.Offset

// NoLimit is the high-watermark limit of a leader with no follower in its
// ISR: the leader's own durable end alone decides.
const NoLimit Offset = math.MaxInt64

// LeaderState is what a broker knows of a partition when it becomes its
// leader.
type LeaderState struct {
	Epoch          int32
	PartitionEpoch int32
	Replicas       []NodeID
	ISR            []NodeID
	// LEO is the leader's log end offset at the moment it becomes leader:
	// the first offset of its epoch.
	LEO Offset
	// HW is the leader's high watermark then.
	HW Offset
}

// follower is what the leader knows of one other replica.
type follower struct {
	// offset is the follower's durable end as its last fetch reported it;
	// -1 until it fetches in this epoch.
	offset Offset
	// lastCaughtUp is the last time the follower had reached the leader's
	// end offset (Kafka's lastCaughtUpTimeMs).
	lastCaughtUp time.Time
	// lastFetchLEO and lastFetchTime: the leader's end offset at the
	// follower's previous fetch, and when it was.
	lastFetchLEO  Offset
	lastFetchTime time.Time
}

// Leader is a partition leader's replication state: its followers' fetch
// offsets, the ISR (committed and proposed) and the high watermark. It is a
// pure state machine: no goroutines, no I/O, no clock (calls that need the
// time take it). The driver (manager.go) feeds it follower fetches and the
// log's end, sets the log's high-watermark limit from Limit, and sends the
// ISR changes ProposeISR returns to the controller (AlterPartition).
//
// A follower leaves the ISR when it has not caught up with the leader's end
// offset for lagMax; it rejoins once its durable end reaches the high
// watermark and the start of the leader's epoch. While a change is in
// flight the high watermark counts the larger of the two sets (the union),
// so that it never counts on a set the controller has not accepted.
//
// A Leader is not safe for concurrent use.
type Leader struct {
	self       NodeID
	lagMax     time.Duration
	epoch      int32
	pEpoch     int32
	epochStart Offset
	replicas   []NodeID
	isr        []NodeID // committed
	pending    []NodeID // proposed, nil when no change is in flight
	followers  map[NodeID]*follower
	leo        Offset
	durable    Offset // the leader's own durable end
	hw         Offset
}

// NewLeader returns the state of a leader that starts now with st.
// Followers in the ISR get a full lagMax to fetch before they are dropped.
func NewLeader(self NodeID, lagMax time.Duration, now time.Time, st LeaderState) *Leader {
	l := &Leader{
		self: self, lagMax: lagMax, epoch: st.Epoch, pEpoch: st.PartitionEpoch,
		epochStart: st.LEO, replicas: slices.Clone(st.Replicas), isr: slices.Clone(st.ISR),
		followers: map[NodeID]*follower{}, leo: st.LEO, durable: st.HW, hw: st.HW,
	}
	for _, r := range st.Replicas {
		if r == self {
			continue
		}
		f := &follower{offset: -1, lastFetchLEO: -1}
		if slices.Contains(st.ISR, r) {
			f.lastCaughtUp = now
		}
		l.followers[r] = f
	}
	return l
}

// SetReplicas takes the partition's replicas as the metadata now has them
// (a reassignment adds and removes replicas within a leader epoch): a new
// replica is a follower that has not fetched yet; a removed one is
// forgotten.
func (l *Leader) SetReplicas(replicas []NodeID) {
	if slices.Equal(replicas, l.replicas) {
		return
	}
	l.replicas = slices.Clone(replicas)
	for _, r := range replicas {
		if _, ok := l.followers[r]; !ok && r != l.self {
			l.followers[r] = &follower{offset: -1, lastFetchLEO: -1}
		}
	}
	for r := range l.followers {
		if !slices.Contains(replicas, r) {
			delete(l.followers, r)
		}
	}
}

// Epoch returns the leader epoch this state is for.
func (l *Leader) Epoch() int32 { return l.epoch }

// Fetched records a fetch by replica r from offset (its durable end) at
// now, when the leader's log ends at leo. It returns false if r is not a
// replica of the partition.
func (l *Leader) Fetched(now time.Time, r NodeID, offset, leo Offset) bool {
	f, ok := l.followers[r]
	if !ok {
		return false
	}
	l.leo = max(l.leo, leo)
	switch {
	case offset >= l.leo:
		f.lastCaughtUp = now
	case f.lastFetchLEO >= 0 && offset >= f.lastFetchLEO && f.lastFetchTime.After(f.lastCaughtUp):
		f.lastCaughtUp = f.lastFetchTime
	}
	f.offset = offset
	f.lastFetchLEO, f.lastFetchTime = l.leo, now
	l.updateHW()
	return true
}

// Appended tells the leader its own log's end offset and durable end.
func (l *Leader) Appended(leo, durable Offset) {
	l.leo = max(l.leo, leo)
	l.durable = max(l.durable, durable)
	l.updateHW()
}

// maximal returns the ISR the high watermark counts: the committed one and,
// while a change is in flight, the proposed one too.
func (l *Leader) maximal() []NodeID {
	out := slices.Clone(l.isr)
	for _, r := range l.pending {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Limit returns the smallest durable end among the followers the high
// watermark counts, NoLimit if there is none: the cap the driver sets on the
// leader's log (which adds its own durable end).
func (l *Leader) Limit() Offset {
	lim := NoLimit
	for _, r := range l.maximal() {
		if r == l.self {
			continue
		}
		f := l.followers[r]
		if f == nil || f.offset < 0 {
			// NB: a follower in the ISR that has not fetched in this
			// epoch holds at least the committed records (the high
			// watermark); counting it there keeps the limit from
			// dropping below what is already committed.
			lim = min(lim, l.hw)
			continue
		}
		lim = min(lim, f.offset)
	}
	return lim
}

func (l *Leader) updateHW() {
	hw := min(l.Limit(), l.durable)
	if hw > l.hw {
		l.hw = hw
	}
}

// HighWatermark returns the high watermark as this state machine computes
// it: the smallest durable end among the ISR, leader included, never
// moving back.
func (l *Leader) HighWatermark() Offset { return l.hw }

// ISR returns the committed ISR.
func (l *Leader) ISR() []NodeID { return slices.Clone(l.isr) }

// Pending returns the ISR change in flight, nil if none.
func (l *Leader) Pending() []NodeID { return slices.Clone(l.pending) }

// Lagging reports whether a follower in the committed ISR has not caught
// up with the leader's end for lagMax: the ISR needs a change only the
// controller can make.
func (l *Leader) Lagging(now time.Time) bool {
	for _, r := range l.isr {
		if f := l.followers[r]; r != l.self && f != nil && now.Sub(f.lastCaughtUp) > l.lagMax {
			return true
		}
	}
	return false
}

// ProposeISR returns the ISR the leader wants now, and the partition epoch
// the change is based on, if it differs from the committed one and no
// change is in flight: the committed ISR without the followers that have
// not caught up for lagMax, plus the replicas whose durable end reached
// the high watermark and the start of this epoch, as of a fetch within
// lagMax (a replica that stopped fetching is not proposed). The change is then in
// flight until ISRCommitted or ISRRefused.
func (l *Leader) ProposeISR(now time.Time) ([]NodeID, int32, bool) {
	if l.pending != nil {
		return nil, 0, false
	}
	var want []NodeID
	for _, r := range l.isr {
		if r == l.self {
			want = append(want, r)
			continue
		}
		if f := l.followers[r]; f != nil && now.Sub(f.lastCaughtUp) <= l.lagMax {
			want = append(want, r)
		}
	}
	for _, r := range l.replicas {
		if r == l.self || slices.Contains(l.isr, r) {
			continue
		}
		if f := l.followers[r]; f != nil && f.offset >= 0 && f.offset >= l.hw && f.offset >= l.epochStart && now.Sub(f.lastFetchTime) <= l.lagMax {
			want = append(want, r)
		}
	}
	if !slices.Contains(want, l.self) {
		want = append([]NodeID{l.self}, want...)
	}
	if sameSet(want, l.isr) {
		return nil, 0, false
	}
	l.pending = want
	return slices.Clone(want), l.pEpoch, true
}

// ISRCommitted tells the leader the partition's committed ISR and epoch
// (from the metadata image or the controller's reply). A change in flight
// ends. Followers that join get a fresh lag allowance.
func (l *Leader) ISRCommitted(now time.Time, isr []NodeID, partitionEpoch int32) {
	if partitionEpoch < l.pEpoch {
		return // older than what is known
	}
	for _, r := range isr {
		if f := l.followers[r]; f != nil && !slices.Contains(l.isr, r) {
			f.lastCaughtUp = now
		}
	}
	l.isr, l.pEpoch = slices.Clone(isr), partitionEpoch
	l.pending = nil
	l.updateHW()
}

// ISRRefused ends a change in flight that the controller refused or that
// could not be sent; the next ProposeISR may propose again.
func (l *Leader) ISRRefused() {
	l.pending = nil
}

// String describes the state, for tests and logs.
func (l *Leader) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch=%d pepoch=%d leo=%d durable=%d hw=%d isr=%v", l.epoch, l.pEpoch, l.leo, l.durable, l.hw, l.isr)
	if l.pending != nil {
		fmt.Fprintf(&b, " pending=%v", l.pending)
	}
	if lim := l.Limit(); lim == NoLimit {
		b.WriteString(" limit=none")
	} else {
		fmt.Fprintf(&b, " limit=%d", lim)
	}
	return b.String()
}

func sameSet(a, b []NodeID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
