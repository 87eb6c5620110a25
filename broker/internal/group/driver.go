package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/ownership"
)

// Log is the internal topic __consumer_offsets as the Driver needs it.
type Log interface {
	// Append durably appends recs, all for partition, in order.
	Append(ctx context.Context, partition int32, recs []Record) error
	// Write appends recs, all for partition, in order with Append's, and
	// returns once they are written, without waiting for them to be
	// durable; a later Append's durability covers them.
	Write(ctx context.Context, partition int32, recs []Record) error
	// Replay calls fn for every record stored in partition, oldest first.
	Replay(ctx context.Context, partition int32, fn func(Record) error) error
}

// DriverOptions configure a Driver.
type DriverOptions struct {
	// Coordinator configures the state machine.
	Coordinator Options
	// Log stores the coordinator's records. Required.
	Log Log
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives load and persistence errors. Default slog.Default().
	Logger *slog.Logger
	// Unowned starts the driver serving no partition of __consumer_offsets
	// and replaying none: Own then says which to serve (a broker of a
	// cluster serves the partitions it leads). Default false: every
	// partition is replayed at open and served.
	Unowned bool
}

// ErrClosed is returned by Handle once the driver is closed.
var ErrClosed = errors.New("group: coordinator closed")

// Driver runs a Coordinator: it serialises requests into it, persists what
// it produces before releasing the answers that depend on it, and ticks it
// at its deadlines from one goroutine of its own.
//
// Lock order: mu, then partMu[p] in increasing p. deliver takes the
// partition locks while holding mu and releases mu before appending, so
// records reach each partition in the order the coordinator produced them
// while appends to different partitions, and Steps, overlap.
type Driver struct {
	opts DriverOptions
	log  *slog.Logger

	mu       sync.Mutex
	c        *Coordinator                 // guarded by mu
	nextTok  Token                        // guarded by mu
	waiters  map[Token]chan kmsg.Response // guarded by mu
	deadline time.Time                    // guarded by mu; the coordinator's next wanted Tick
	closed   bool                         // guarded by mu

	partMu []sync.Mutex // one per __consumer_offsets partition
	// ownMu serialises Load and Unload calls; taken before mu, never
	// while holding it.
	ownMu sync.Mutex

	ctx    context.Context // for appends: outlives any one request
	cancel context.CancelFunc
	wake   chan struct{} // buffered(1): the deadline changed
	wg     sync.WaitGroup
}

// OpenDriver replays the coordinator's records from opts.Log and starts the
// driver.
func OpenDriver(ctx context.Context, opts DriverOptions) (*Driver, error) {
	if opts.Log == nil {
		return nil, errors.New("group: DriverOptions.Log is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c, err := New(opts.Coordinator)
	if err != nil {
		return nil, err
	}
	n := c.opts.OffsetsPartitions
	bad := 0
	if opts.Unowned {
		for p := range n {
			c.Unload(opts.Now(), p)
		}
		n = 0 // replay nothing
	}
	for p := int32(0); p < n; p++ {
		err := opts.Log.Replay(ctx, p, func(rec Record) error {
			if err := c.Load(rec); err != nil {
				if IsBadRecord(err) {
					bad++
					return nil // skip it, as compaction would keep it: log once below
				}
				return err
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("group: replay __consumer_offsets partition %d: %w", p, err)
		}
	}
	if bad > 0 {
		opts.Logger.Warn("group: skipped undecodable __consumer_offsets records", "count", bad)
	}
	c.FinishLoad(opts.Now())
	dctx, cancel := context.WithCancel(context.Background())
	d := &Driver{
		opts: opts, log: opts.Logger, c: c,
		waiters: make(map[Token]chan kmsg.Response),
		partMu:  make([]sync.Mutex, c.opts.OffsetsPartitions),
		ctx:     dctx, cancel: cancel,
		wake: make(chan struct{}, 1),
	}
	d.mu.Lock()
	d.deliverLocked(c.Ready())
	d.wg.Add(1)
	go d.run()
	return d, nil
}

// Handle steps one group request and waits for its answer, which for
// JoinGroup and SyncGroup may come only when the rebalance completes. It
// returns ctx's error if ctx ends first (the answer is then dropped), and
// ErrClosed once the driver is closed.
func (d *Driver) Handle(ctx context.Context, clientID, clientHost string, req kmsg.Request) (kmsg.Response, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.nextTok++
	tok := d.nextTok
	ch := make(chan kmsg.Response, 1)
	d.waiters[tok] = ch
	d.c.Step(d.opts.Now(), Request{Token: tok, ClientID: clientID, ClientHost: clientHost, Msg: req})
	d.deliverLocked(d.c.Ready())

	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
	case <-d.ctx.Done():
	}
	d.mu.Lock()
	delete(d.waiters, tok)
	d.mu.Unlock()
	select {
	case resp := <-ch: // answered meanwhile
		return resp, nil
	default:
	}
	if d.ctx.Err() != nil {
		return nil, ErrClosed
	}
	return nil, ctx.Err()
}

// DropTopics forgets every group's committed offsets for the named
// (deleted) topics and waits until their tombstones are stored in
// __consumer_offsets. A tombstone that fails to be stored is logged; the
// offsets stay forgotten, and the next start drops them again if the topic
// is still missing.
func (d *Driver) DropTopics(topics []string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.c.DropTopics(d.opts.Now(), topics)
	d.deliverLocked(d.c.Ready())
	return nil
}

// deliverLocked persists rd's records and then hands out its responses. It
// is called with mu held and returns with mu released.
func (d *Driver) deliverLocked(rd Ready) {
	type answer struct {
		ch   chan kmsg.Response
		resp kmsg.Response
	}
	answers := make([]answer, 0, len(rd.Responses))
	for _, r := range rd.Responses {
		if ch, ok := d.waiters[r.Token]; ok {
			delete(d.waiters, r.Token)
			answers = append(answers, answer{ch, r.Msg})
		}
	}
	if !rd.Deadline.Equal(d.deadline) {
		d.deadline = rd.Deadline
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	if len(rd.Records) == 0 { // heartbeats, fetches, joins: nothing to store
		d.mu.Unlock()
		for _, a := range answers {
			a.ch <- a.resp // buffered: never blocks
		}
		return
	}
	byPart := make(map[int32][]Record)
	for _, rec := range rd.Records {
		byPart[rec.Partition] = append(byPart[rec.Partition], rec)
	}
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		d.partMu[p].Lock()
	}
	d.mu.Unlock()

	var failed error
	var lost []Record
	for _, p := range parts {
		if err := d.persist(p, byPart[p]); err != nil {
			if failed == nil {
				failed = err
			}
			lost = append(lost, byPart[p]...)
		}
		d.partMu[p].Unlock()
	}
	if failed != nil {
		d.log.Error("group: persisting to __consumer_offsets failed", "err", failed)
		// Take back the commits that were not stored before anyone is
		// told about them.
		d.mu.Lock()
		d.c.Revert(d.opts.Now(), lost)
		d.deliverLocked(d.c.Ready())
	}
	code := kerr.CoordinatorNotAvailable.Code
	if ownership.IsNotLeader(failed) {
		// This broker no longer leads the partition: the client finds
		// the new coordinator.
		code = kerr.NotCoordinator.Code
	}
	for _, a := range answers {
		if failed != nil {
			failCommit(a.resp, code)
		}
		a.ch <- a.resp // buffered: never blocks
	}
}

// persist stores recs, all for partition p, as the answers that wait for
// them need: durably if any is an offset record (a commit's answer promises
// it is stored), else only written. Group metadata is acknowledged, as
// Kafka acknowledges it, once appended: the leader's SyncGroup does not wait
// for an fsync, which under a loaded disk would delay every member's next
// heartbeat and so the group's next rebalance. The record becomes durable
// with the partition's next fsync (the next commit stored there, or the
// log's close). A generation lost to a crash before that is safe: its
// members are fenced with ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID and
// rejoin, as when storing the record fails.
func (d *Driver) persist(p int32, recs []Record) error {
	for _, r := range recs {
		if !r.metadata {
			return d.opts.Log.Append(d.ctx, p, recs)
		}
	}
	return d.opts.Log.Write(d.ctx, p, recs)
}

// failCommit turns an offset commit answer into a retriable failure (code)
// when its records could not be stored.
func failCommit(resp kmsg.Response, code int16) {
	if r, ok := resp.(*kmsg.TxnOffsetCommitResponse); ok {
		failTxnCommit(r, code)
		return
	}
	r, ok := resp.(*kmsg.OffsetCommitResponse)
	if !ok {
		return
	}
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			if r.Topics[i].Partitions[j].ErrorCode == 0 {
				r.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	}
}

// run ticks the coordinator at its deadlines until Close.
func (d *Driver) run() {
	defer d.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.mu.Lock()
		next := d.deadline
		d.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(d.opts.Now()), 0)
		}
		t.Reset(wait)
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
			continue
		case <-t.C:
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return
		}
		d.c.Tick(d.opts.Now())
		d.deliverLocked(d.c.Ready())
	}
}

// Close stops the driver and waits for its goroutine. Requests waiting in
// Handle return ErrClosed.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	return nil
}

// Partitions returns the partition count of __consumer_offsets the
// coordinator places groups with.
func (d *Driver) Partitions() int32 { return d.c.opts.OffsetsPartitions }

// Own makes the driver serve exactly the partitions of __consumer_offsets
// listed in want (out-of-range ones are ignored): it unloads those it
// stops serving and loads those it starts serving (Unload, Load). A
// partition whose replay fails stays unserved and the error is returned
// (the next Own retries it).
func (d *Driver) Own(ctx context.Context, want []int32) error {
	n := d.Partitions()
	wanted := make([]bool, n)
	for _, p := range want {
		if p >= 0 && p < n {
			wanted[p] = true
		}
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	var gain, lose []int32
	for p := range n {
		switch owns := d.c.Owns(p); {
		case owns && !wanted[p]:
			lose = append(lose, p)
		case !owns && wanted[p]:
			gain = append(gain, p)
		}
	}
	d.mu.Unlock()
	d.Unload(lose)
	var errs []error
	for _, p := range gain {
		if err := d.Load(ctx, p); err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Unload stops serving the listed partitions of __consumer_offsets (those
// not served and out-of-range ones are ignored): their groups are
// forgotten, their waiting joins and syncs are answered NOT_COORDINATOR,
// and so are later requests for them. Nothing is persisted: the next
// owner loads their state from the log.
func (d *Driver) Unload(ps []int32) {
	d.ownMu.Lock()
	defer d.ownMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	for _, p := range ps {
		if d.c.Owns(p) {
			d.c.Unload(d.opts.Now(), p)
			d.log.Info("group: unloaded __consumer_offsets partition", "partition", p)
		}
	}
	d.deliverLocked(d.c.Ready())
}

// Load starts serving partition p of __consumer_offsets: it replays the
// partition (what lies below its high watermark) without blocking
// requests for the other partitions; p's own groups are answered
// NOT_COORDINATOR until it is loaded. A partition served already is
// unloaded first, so that what another coordinator wrote since is read.
// On error p stays unserved.
func (d *Driver) Load(ctx context.Context, p int32) error {
	if p < 0 || p >= d.Partitions() {
		return fmt.Errorf("group: __consumer_offsets has no partition %d", p)
	}
	d.ownMu.Lock()
	defer d.ownMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	if d.c.Owns(p) {
		d.c.Unload(d.opts.Now(), p)
		d.deliverLocked(d.c.Ready())
	} else {
		d.mu.Unlock()
	}
	recs, err := d.replay(ctx, p)
	if err != nil {
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	bad := 0
	for _, rec := range recs {
		if err := d.c.Load(rec); err != nil {
			bad++ // Load reports only undecodable or misplaced records
		}
	}
	d.c.FinishLoadPartition(d.opts.Now(), p)
	d.deliverLocked(d.c.Ready())
	if bad > 0 {
		d.log.Warn("group: skipped undecodable __consumer_offsets records", "partition", p, "count", bad)
	}
	d.log.Info("group: loaded __consumer_offsets partition", "partition", p, "records", len(recs))
	return nil
}

// replay reads every record of partition p. It holds p's append lock, so
// that records produced before p was last unloaded and still being stored
// are read too.
func (d *Driver) replay(ctx context.Context, p int32) ([]Record, error) {
	d.partMu[p].Lock()
	defer d.partMu[p].Unlock()
	var recs []Record
	err := d.opts.Log.Replay(ctx, p, func(rec Record) error {
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("group: replay __consumer_offsets partition %d: %w", p, err)
	}
	return recs, nil
}
