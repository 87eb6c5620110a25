package metadata

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Controller is the active controller's decision logic: a pure state
// machine with no goroutines, no I/O and no clock (every call that needs
// the time takes it). The driver on the raft leader feeds it requests and
// ticks; each call returns the records to propose, as one entry (see
// EncodeEntry), and the reply to send once that entry commits. A request
// that changes nothing returns no records: its reply can go at once.
//
// The controller applies the records it hands out to its own image at
// once, so that the next request sees them before they commit (two
// CreateTopics for one name: the second is refused). If a proposal fails
// (leadership lost, entry refused), the driver must call Reset with the
// committed image: records handed out after the failed ones were decided on
// a state that will not be. An entry whose proposal the driver gave up on
// may still commit after the Reset; entries decided after it then no
// longer fit in some cases (the same topic name twice), and Image.Apply
// refuses them on every node alike (IsInvalid): the driver answers their
// requests with a retriable error and Resets again.
//
// A Controller is not safe for concurrent use.
type Controller struct {
	opts Options

	// img is the committed image plus every record handed out since.
	img *Image

	// sessions holds the time of each registered broker's last heartbeat
	// (or registration). It is not replicated: a new controller gives every
	// broker a fresh session.
	sessions map[NodeID]time.Time
	// committed is the offset up to which the metadata log is known to be
	// committed (Reset, Committed).
	committed uint64
	// registeredAt is the committed offset when a broker last registered:
	// a broker whose metadata offset reached it has seen everything that
	// was committed before it registered.
	registeredAt map[NodeID]uint64
	// nextRebalance is when Tick next moves leaderships back to preferred
	// replicas; zero when Options.LeaderRebalanceInterval is negative.
	nextRebalance time.Time
	// suspect holds the brokers to probe whatever the age of their last
	// heartbeat (liveness.go): their connection to this controller closed,
	// or this controller has not heard from them since it started. A
	// heartbeat or registration clears it.
	suspect map[NodeID]bool
	// probed is when each broker was last probed.
	probed map[NodeID]time.Time
}

// NewController returns a controller deciding on top of committed (which it
// clones, so the caller keeps applying to its own image). Every registered
// broker's session starts at now.
func NewController(committed *Image, now time.Time, opts Options) (*Controller, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Controller{opts: opts, sessions: map[NodeID]time.Time{}, registeredAt: map[NodeID]uint64{},
		suspect: map[NodeID]bool{}, probed: map[NodeID]time.Time{}}
	if opts.LeaderRebalanceInterval > 0 {
		c.nextRebalance = now.Add(opts.LeaderRebalanceInterval)
	}
	c.Reset(committed, now)
	// NB: a new controller has heard from nobody: a broker that died with
	// the previous one (the same process) would otherwise keep its
	// leaderships for a whole fresh session.
	for n, b := range c.img.brokers {
		if !b.Fenced {
			c.suspect[n] = true
		}
	}
	return c, nil
}

// Reset drops every record handed out that did not commit: the controller
// continues from a clone of committed. Sessions of brokers it already knew
// keep their last heartbeat; brokers it did not know start one at now.
func (c *Controller) Reset(committed *Image, now time.Time) {
	c.img = committed.Clone()
	c.committed = committed.Applied()
	for n := range c.sessions {
		if _, ok := c.img.brokers[n]; !ok {
			c.forget(n)
		}
	}
	for n := range c.img.brokers {
		if _, ok := c.sessions[n]; !ok {
			c.sessions[n] = now
		}
	}
}

// forget drops what the controller keeps of broker n's session.
func (c *Controller) forget(n NodeID) {
	delete(c.sessions, n)
	delete(c.registeredAt, n)
	delete(c.suspect, n)
	delete(c.probed, n)
}

// Committed tells the controller that the metadata log is committed up to
// index (the driver calls it as entries commit). A broker is unfenced only
// once its metadata offset has reached the committed offset of the moment
// it registered.
func (c *Controller) Committed(index uint64) {
	c.committed = max(c.committed, index)
}

// Image returns the controller's view: the committed image plus the records
// handed out since. The caller must not apply anything to it.
func (c *Controller) Image() *Image { return c.img }

// emit applies records the controller decided on to its image. A refusal
// is a bug in the controller: it decided on this very image.
func (c *Controller) emit(out *[]Record, records ...Record) error {
	if len(records) == 0 {
		return nil
	}
	if err := c.img.applyRecords(records); err != nil {
		return fmt.Errorf("metadata: controller: its own records do not apply to its image: %w", err)
	}
	*out = append(*out, records...)
	return nil
}

// Deadline returns when the controller next wants a Tick: the earliest
// moment an unfenced broker's session expires, or the next leader
// rebalance. Zero if none is due.
func (c *Controller) Deadline() time.Time {
	d := c.nextRebalance
	for n, b := range c.img.brokers {
		if b.Fenced {
			continue
		}
		if t := c.sessions[n].Add(c.opts.SessionTimeout); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d
}

// Tick fences every unfenced broker whose last heartbeat is a session
// timeout or more before now, moving its leaderships to other in-sync
// replicas, and, when the rebalance interval has passed, moves leaderships
// back to preferred replicas (rebalance). It returns the records to
// propose.
func (c *Controller) Tick(now time.Time) ([]Record, error) {
	var out []Record
	for _, n := range slices.Sorted(maps.Keys(c.img.brokers)) {
		b := c.img.brokers[n]
		if b.Fenced || now.Before(c.sessions[n].Add(c.opts.SessionTimeout)) {
			continue
		}
		if err := c.fence(&out, b); err != nil {
			return nil, err
		}
	}
	if !c.nextRebalance.IsZero() && !now.Before(c.nextRebalance) {
		c.nextRebalance = now.Add(c.opts.LeaderRebalanceInterval)
		if err := c.rebalance(&out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fence fences b and moves its leaderships away, in one set of records.
func (c *Controller) fence(out *[]Record, b Broker) error {
	moves := c.moveAway(b.ID)
	return c.emit(out, append(moves, FenceBrokerRecord{Node: b.ID, Epoch: b.Epoch})...)
}

// moveAway returns the changes that take node n out of every ISR it is in
// (unless it is the last member: the ISR then stays, so that n is elected
// again when it comes back) and hand each partition it leads to the first
// other in-sync replica that is unfenced, in replica order; if there is
// none, to the first other unfenced replica when the topic allows unclean
// election (its ISR then that replica alone), else NoLeader.
func (c *Controller) moveAway(n NodeID) []Record {
	var out []Record
	c.eachPartition(func(p *PartitionRecord) {
		inISR := slices.Contains(p.ISR, n)
		if !inISR {
			return // n is not the leader either: a leader is in its ISR
		}
		var ch PartitionChangeRecord
		isr := p.ISR
		if len(p.ISR) > 1 {
			isr = slices.DeleteFunc(slices.Clone(p.ISR), func(m NodeID) bool { return m == n })
			ch.ISR = isr
		}
		if p.Leader == n {
			l := c.elect(p.Replicas, isr, n)
			if l == NoLeader && c.unclean(p.Topic) {
				if u := c.electUnclean(p, n); u != NoLeader {
					l, ch.ISR = u, []NodeID{u}
				}
			}
			ch.Leader = &l
		}
		if ch.ISR != nil || ch.Leader != nil {
			ch.Topic, ch.Partition = p.Topic, p.Partition
			out = append(out, ch)
		}
	})
	return out
}

// elect returns the first replica, in preference order, that is in isr,
// registered and unfenced, and is not except; NoLeader if none is.
func (c *Controller) elect(replicas, isr []NodeID, except NodeID) NodeID {
	for _, r := range replicas {
		if r == except || !slices.Contains(isr, r) {
			continue
		}
		if b, ok := c.img.brokers[r]; ok && !b.Fenced {
			return r
		}
	}
	return NoLeader
}

// eachPartition calls f on every partition, topics by name, in partition
// order, so that the records the controller produces are deterministic.
func (c *Controller) eachPartition(f func(p *PartitionRecord)) {
	ids := slices.Collect(maps.Keys(c.img.topics))
	slices.SortFunc(ids, func(a, b TopicID) int { return cmp.Compare(c.img.topics[a].name, c.img.topics[b].name) })
	for _, id := range ids {
		t := c.img.topics[id]
		for i := range t.parts {
			f(&t.parts[i])
		}
	}
}
