package txn

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator is the transaction state machine. It is not safe for
// concurrent use: its owner (the driver) serialises calls.
type Coordinator struct {
	opts Options
	txns map[TransactionalID]*txn

	// owned holds the __transaction_state partitions this coordinator
	// serves, with the coordinator epoch each was loaded under; loading
	// those between BeginLoad and FinishLoad. Requests for a transactional
	// id of another partition get NOT_COORDINATOR (or
	// COORDINATOR_LOAD_IN_PROGRESS). Invariant: every txn's partition is in
	// owned or loading, never both.
	owned   map[int32]CoordinatorEpoch
	loading map[int32]bool

	// timers holds (deadline, id) entries, earliest first. Entries go stale
	// when a transaction's deadline moves; Tick re-examines an id whose entry
	// fires and pushes its true next deadline, so stale entries cost one
	// look. Invariant: every txn with a deadline has an entry at or before
	// it (txn.scheduled).
	timers timerHeap

	records   []Record
	responses []Response
	markers   []Marker
}

// txn is one transactional id's state.
type txn struct {
	persisted
	// partition is the __transaction_state partition of the id.
	partition int32
	// pending holds the partitions whose marker is not yet reported
	// written. Invariant: non-nil exactly in PrepareCommit and PrepareAbort,
	// and a subset of Partitions.
	pending map[TopicPartition]bool
	// groups are the consumer groups AddOffsetsToTxn added to the open
	// transaction. The record carries each as its __consumer_offsets
	// partition only, so a restart forgets the names (not the partitions).
	groups []string
	// lastEpoch is the epoch before the last InitProducerId that named its
	// expected epoch (KIP-360), so that a retry of that call gets the same
	// answer instead of a fence. Not persisted, as in Kafka: a retry across
	// a coordinator restart is fenced.
	lastEpoch Epoch
	// scheduled is the time of the earliest timer entry pushed for this
	// id; zero if none.
	scheduled time.Time
}

// New returns a coordinator that serves no partition yet: the driver loads
// each partition it leads with BeginLoad, Load and FinishLoad. opts is
// copied before defaults are filled in.
func New(opts Options) (*Coordinator, error) {
	o := opts
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Coordinator{
		opts: o, txns: make(map[TransactionalID]*txn),
		owned: make(map[int32]CoordinatorEpoch), loading: make(map[int32]bool),
	}, nil
}

// Step feeds one request to the coordinator. Its response, and anything else
// it causes, is collected by the next call to Ready.
func (c *Coordinator) Step(now time.Time, r Request) {
	now = ms(now)
	switch m := r.Msg.(type) {
	case *kmsg.InitProducerIDRequest:
		c.initProducerID(now, r.Token, m)
	case *kmsg.AddPartitionsToTxnRequest:
		c.addPartitions(now, r.Token, m)
	case *kmsg.AddOffsetsToTxnRequest:
		c.addOffsets(now, r.Token, m)
	case *kmsg.EndTxnRequest:
		c.endTxn(now, r.Token, m)
	default:
		panic(fmt.Sprintf("txn: Step given %T, not a transaction coordinator request", r.Msg))
	}
}

// Tick tells the coordinator that time is now: transactions open longer than
// their timeout are aborted (their producer fenced), and transactional ids
// idle longer than TransactionalIDExpiration are dropped.
func (c *Coordinator) Tick(now time.Time) {
	now = ms(now)
	for len(c.timers) > 0 && !c.timers[0].at.After(now) {
		e := heap.Pop(&c.timers).(timer)
		t := c.txns[e.id]
		if t == nil || t.scheduled.After(now) {
			continue // stale entry: the id is gone or has a later one
		}
		t.scheduled = time.Time{}
		switch d := c.deadline(t); {
		case d.IsZero() || d.After(now):
		case t.State == StateOngoing:
			c.abort(now, t)
		case t.State.idle():
			c.records = append(c.records, Record{Partition: t.partition, Key: encodeKey(t.ID)})
			delete(c.txns, t.ID)
			continue
		}
		c.settle(t)
	}
}

// MarkersWritten reports that the markers of the transaction of id with
// producer id pid and epoch epoch are written to parts (or that a partition
// no longer exists, so that there is nothing to mark). Once every partition
// of the transaction is reported, it completes: its CompleteCommit or
// CompleteAbort record is in the next Ready. Reports for a transaction that
// is no longer preparing with that id and epoch are ignored: they are
// duplicates or come from before a restart.
func (c *Coordinator) MarkersWritten(now time.Time, id TransactionalID, pid ProducerID, epoch Epoch, parts []TopicPartition) {
	t := c.txns[id]
	if t == nil || !t.State.preparing() || t.ProducerID != pid || t.Epoch != epoch {
		return
	}
	for _, tp := range parts {
		delete(t.pending, tp)
	}
	if len(t.pending) == 0 {
		c.complete(ms(now), t)
		c.settle(t)
	}
}

// Ready returns and clears what the coordinator produced since the last call.
func (c *Coordinator) Ready() Ready {
	rd := Ready{Records: c.records, Responses: c.responses, Markers: c.markers}
	c.records, c.responses, c.markers = nil, nil, nil
	if len(c.timers) > 0 {
		rd.Deadline = c.timers[0].at
	}
	return rd
}

// BeginLoad starts loading __transaction_state partition p: whatever the
// coordinator held of it is dropped, requests for its ids are answered
// COORDINATOR_LOAD_IN_PROGRESS, and Load accepts its records until
// FinishLoad.
func (c *Coordinator) BeginLoad(p int32) {
	c.Unload(p)
	c.loading[p] = true
}

// Load applies one record of a partition being loaded, oldest first. A
// record that does not decode, or that belongs to no partition being loaded,
// is reported (wrapping ErrBadRecord) and changes nothing.
func (c *Coordinator) Load(rec Record) error {
	if !c.loading[rec.Partition] {
		return fmt.Errorf("%w: partition %d is not being loaded", ErrBadRecord, rec.Partition)
	}
	id, p, err := decodeRecord(rec, c.opts.StatePartitions)
	if err != nil {
		return err
	}
	if p == nil {
		delete(c.txns, id)
		return nil
	}
	c.txns[id] = &txn{persisted: *p, partition: rec.Partition, lastEpoch: NoEpoch}
	return nil
}

// FinishLoad ends the load of partition p at time now: the coordinator
// serves its transactional ids from now on under coordinator epoch epoch.
// Transactions left in PrepareCommit or PrepareAbort send their markers
// again (to every partition: a marker written twice is harmless), open
// transactions time out from when they started, as recorded.
func (c *Coordinator) FinishLoad(now time.Time, p int32, epoch CoordinatorEpoch) {
	if !c.loading[p] {
		return
	}
	delete(c.loading, p)
	c.owned[p] = epoch
	for _, id := range slices.Sorted(maps.Keys(c.txns)) {
		t := c.txns[id]
		if t.partition != p {
			continue
		}
		if t.State.preparing() {
			t.pending = make(map[TopicPartition]bool, len(t.Partitions))
			for _, tp := range t.Partitions {
				t.pending[tp] = true
			}
			if len(t.pending) == 0 {
				c.complete(ms(now), t)
			} else {
				c.markers = append(c.markers, c.marker(t))
			}
		}
		c.settle(t)
	}
}

// Unload stops serving partition p (its leadership moved, or the driver
// failed to persist records of it and must load it again) and forgets its
// transactional ids.
func (c *Coordinator) Unload(p int32) {
	delete(c.owned, p)
	delete(c.loading, p)
	for id, t := range c.txns {
		if t.partition == p {
			delete(c.txns, id)
		}
	}
}

// Info is what the coordinator knows of one transactional id.
type Info struct {
	State      State
	ProducerID ProducerID
	Epoch      Epoch
	// PrevProducerID is the id used before the last rotation (an epoch that
	// ran out), or NoProducerID.
	PrevProducerID ProducerID
	Timeout        time.Duration
	// Partitions are the partitions of the open or finishing transaction,
	// sorted.
	Partitions []TopicPartition
	// Pending are the partitions whose marker is not yet written, sorted.
	Pending []TopicPartition
	// Groups are the groups AddOffsetsToTxn added, sorted (forgotten by a
	// restart: see Partitions for their __consumer_offsets partitions).
	Groups     []string
	Start      time.Time
	LastUpdate time.Time
	Version    TransactionVersion
}

// Describe returns what the coordinator knows of id.
func (c *Coordinator) Describe(id TransactionalID) (Info, bool) {
	t := c.txns[id]
	if t == nil {
		return Info{}, false
	}
	pending := slices.SortedFunc(maps.Keys(t.pending), cmpTP)
	return Info{
		State: t.State, ProducerID: t.ProducerID, Epoch: t.Epoch, PrevProducerID: t.PrevProducerID,
		Timeout: t.Timeout, Partitions: slices.Clone(t.Partitions), Pending: pending,
		Groups: slices.Sorted(slices.Values(t.groups)), Start: t.Start, LastUpdate: t.LastUpdate,
		Version: t.Version,
	}, true
}

// IDs returns the transactional ids the coordinator holds, sorted.
func (c *Coordinator) IDs() []TransactionalID { return slices.Sorted(maps.Keys(c.txns)) }

// serving returns the error code for a request about id that this
// coordinator cannot serve, or 0.
func (c *Coordinator) serving(id TransactionalID) int16 {
	p := Partition(id, c.opts.StatePartitions)
	if c.loading[p] {
		return coordinatorLoadInProgress
	}
	if _, ok := c.owned[p]; !ok {
		return notCoordinator
	}
	return 0
}

func (c *Coordinator) respond(tok Token, msg kmsg.Response) {
	c.responses = append(c.responses, Response{Token: tok, Msg: msg})
}

// persist appends t's record as it stands.
func (c *Coordinator) persist(t *txn) {
	c.records = append(c.records, t.persisted.record(c.opts.StatePartitions))
}

func (c *Coordinator) marker(t *txn) Marker {
	return Marker{
		TransactionalID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch,
		Commit: t.State == StatePrepareCommit, CoordinatorEpoch: c.owned[t.partition],
		TransactionVersion: t.Version, Partitions: slices.SortedFunc(maps.Keys(t.pending), cmpTP),
	}
}

// deadline is when something about t times out; zero if never.
func (c *Coordinator) deadline(t *txn) time.Time {
	switch {
	case t.State == StateOngoing:
		return t.Start.Add(t.Timeout)
	case t.State.idle():
		return t.LastUpdate.Add(c.opts.TransactionalIDExpiration)
	}
	return time.Time{}
}

// settle is called after anything touched t: it schedules t's next
// deadline.
func (c *Coordinator) settle(t *txn) {
	if c.txns[t.ID] != t {
		return
	}
	d := c.deadline(t)
	if d.IsZero() {
		return
	}
	if t.scheduled.IsZero() || d.Before(t.scheduled) {
		t.scheduled = d
		heap.Push(&c.timers, timer{at: d, id: t.ID})
	}
}

type timer struct {
	at time.Time
	id TransactionalID
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// ms drops what a record cannot carry (below a millisecond, the monotonic
// clock, the location), so that state read back from the log equals the
// state that wrote it.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()) }

// Owned reports whether the coordinator serves __transaction_state
// partition p, and under which coordinator epoch.
func (c *Coordinator) Owned(p int32) (CoordinatorEpoch, bool) {
	e, ok := c.owned[p]
	return e, ok
}
