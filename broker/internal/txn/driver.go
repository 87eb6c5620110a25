package txn

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

// Log is the internal topic __transaction_state as the Driver needs it.
type Log interface {
	// Append durably appends recs, all for partition, in order.
	Append(ctx context.Context, partition int32, recs []Record) error
	// Replay calls fn for every record stored in partition, oldest first.
	Replay(ctx context.Context, partition int32, fn func(Record) error) error
}

// MarkerWriter writes a transaction's markers to its partitions. It
// returns the partitions whose marker is written (or that no longer exist,
// so that there is nothing to mark); the driver retries the others.
type MarkerWriter func(ctx context.Context, m Marker) ([]TopicPartition, error)

// DriverOptions configure a Driver.
type DriverOptions struct {
	// Coordinator configures the state machine.
	Coordinator Options
	// Log stores the coordinator's records. Required.
	Log Log
	// Markers writes markers. Required.
	Markers MarkerWriter
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives load, persistence and marker errors. Default
	// slog.Default().
	Logger *slog.Logger
	// MarkerRetry is the first wait before a marker that could not be
	// written is tried again; it doubles up to 5s. Default 100ms.
	MarkerRetry time.Duration
	// Unowned starts the driver serving no partition of
	// __transaction_state and replaying none: Load and Unload then say
	// which to serve (a broker of a cluster serves the partitions it
	// leads, under their leader epochs). Default false: every partition is
	// replayed at open and served under coordinator epoch 0.
	Unowned bool
}

// maxMarkerRetry caps the wait between tries of a marker that cannot be
// written (it doubles from MarkerRetry).
const maxMarkerRetry = 5 * time.Second

// ErrClosed is returned by Handle once the driver is closed.
var ErrClosed = errors.New("txn: coordinator closed")

// Stats counts what the coordinator did since the driver opened.
type Stats struct {
	// Open is the number of transactions open now (Ongoing or preparing).
	Open int
	// Committed and Aborted count transactions whose markers are all
	// written; TimedOut counts those aborted by their timeout.
	Committed, Aborted, TimedOut int64
}

// Driver runs a Coordinator on one node: it serialises requests into it,
// stores its records in Log before releasing the answers and markers that
// depend on them, writes markers through Markers (retrying until they are
// written), and ticks it at its deadlines (timeouts abort hung
// transactions). At open it loads every partition of __transaction_state,
// which sends again the markers of transactions left in PrepareCommit or
// PrepareAbort.
//
// Lock order: persistMu, then mu. A Ready is taken under mu and persisted
// under persistMu alone, so records reach the log in the order the
// coordinator produced them while Steps go on.
type Driver struct {
	opts DriverOptions
	log  *slog.Logger

	persistMu sync.Mutex

	mu       sync.Mutex
	c        *Coordinator                 // guarded by mu
	nextTok  Token                        // guarded by mu
	waiters  map[Token]chan kmsg.Response // guarded by mu
	deadline time.Time                    // guarded by mu
	closed   bool                         // guarded by mu
	stats    Stats                        // guarded by mu; Open computed on read

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	wg     sync.WaitGroup
}

// OpenDriver replays __transaction_state and starts the driver.
func OpenDriver(ctx context.Context, opts DriverOptions) (*Driver, error) {
	if opts.Log == nil || opts.Markers == nil {
		return nil, errors.New("txn: DriverOptions.Log and Markers are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MarkerRetry <= 0 {
		opts.MarkerRetry = 100 * time.Millisecond
	}
	c, err := New(opts.Coordinator)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancel(context.Background())
	d := &Driver{
		opts: opts, log: opts.Logger, c: c,
		waiters: make(map[Token]chan kmsg.Response),
		ctx:     dctx, cancel: cancel, wake: make(chan struct{}, 1),
	}
	if !opts.Unowned {
		for p := range c.opts.StatePartitions {
			if err := d.load(ctx, p, 0); err != nil {
				cancel()
				return nil, err
			}
		}
	}
	d.wg.Add(1)
	go d.run()
	d.mu.Lock()
	d.deliverLocked(d.c.Ready(), false)
	return d, nil
}

// load replays partition p into the coordinator, which then serves it
// under coordinator epoch epoch. Caller holds neither mu nor persistMu:
// the replay holds persistMu, so that records of p still being stored are
// read too.
func (d *Driver) load(ctx context.Context, p int32, epoch CoordinatorEpoch) error {
	var recs []Record
	d.persistMu.Lock()
	err := d.opts.Log.Replay(ctx, p, func(r Record) error {
		recs = append(recs, r)
		return nil
	})
	d.persistMu.Unlock()
	if err != nil {
		return fmt.Errorf("txn: replay __transaction_state partition %d: %w", p, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.BeginLoad(p)
	bad := 0
	for _, r := range recs {
		if d.c.Load(r) != nil {
			bad++
		}
	}
	d.c.FinishLoad(d.opts.Now(), p, epoch)
	if bad > 0 {
		d.log.Warn("txn: skipped undecodable __transaction_state records", "partition", p, "count", bad)
	}
	return nil
}

// Handle steps one transaction request and waits for its answer.
func (d *Driver) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrClosed
	}
	d.nextTok++
	tok := d.nextTok
	ch := make(chan kmsg.Response, 1)
	d.waiters[tok] = ch
	d.c.Step(d.opts.Now(), Request{Token: tok, Msg: req})
	d.deliverLocked(d.c.Ready(), false)
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
	case resp := <-ch:
		return resp, nil
	default:
	}
	if d.ctx.Err() != nil {
		return nil, ErrClosed
	}
	return nil, ctx.Err()
}

// Verify asks whether parts are in the open transaction of id under
// producer pid and epoch (KIP-890's check of a transactional produce); it
// returns the error code of each partition (0: in the transaction).
func (d *Driver) Verify(ctx context.Context, id string, pid int64, epoch int16, parts []TopicPartition) (map[TopicPartition]int16, error) {
	return d.partitions(ctx, id, pid, epoch, parts, true)
}

// Add adds parts to the open transaction of id under producer pid and
// epoch, opening one if none is: what a partition leader does for a
// transaction.version 2 client's produce (KIP-890 part 2, Produce v12),
// which does not add its partitions itself. It returns the error code of
// each partition (0: in the transaction).
func (d *Driver) Add(ctx context.Context, id string, pid int64, epoch int16, parts []TopicPartition) (map[TopicPartition]int16, error) {
	return d.partitions(ctx, id, pid, epoch, parts, false)
}

// partitions is Verify (verify) or Add.
func (d *Driver) partitions(ctx context.Context, id string, pid int64, epoch int16, parts []TopicPartition, verify bool) (map[TopicPartition]int16, error) {
	resp, err := d.Handle(ctx, PartitionsRequest(id, pid, epoch, parts, verify))
	if err != nil {
		return nil, err
	}
	return PartitionCodes(resp.(*kmsg.AddPartitionsToTxnResponse), len(parts)), nil
}

// PartitionsRequest is the AddPartitionsToTxn a partition leader sends the
// coordinator of transactional id id for parts under producer pid and
// epoch: v4 with VerifyOnly when verify (KIP-890 part 1's check), else v5
// adding them (part 2: the leader adds a Produce v12's partitions). Parts
// of one topic that stand next to each other share its entry.
func PartitionsRequest(id string, pid int64, epoch int16, parts []TopicPartition, verify bool) *kmsg.AddPartitionsToTxnRequest {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 4
	if !verify {
		req.Version = 5
	}
	x := kmsg.NewAddPartitionsToTxnRequestTransaction()
	x.TransactionalID, x.ProducerID, x.ProducerEpoch, x.VerifyOnly = id, pid, epoch, verify
	for _, tp := range parts {
		if n := len(x.Topics); n == 0 || x.Topics[n-1].Topic != tp.Topic {
			x.Topics = append(x.Topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: tp.Topic})
		}
		x.Topics[len(x.Topics)-1].Partitions = append(x.Topics[len(x.Topics)-1].Partitions, tp.Partition)
	}
	req.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{x}
	return req
}

// PartitionCodes returns the error code resp (the answer to a
// PartitionsRequest) gives each partition it names; n sizes the map.
func PartitionCodes(resp *kmsg.AddPartitionsToTxnResponse, n int) map[TopicPartition]int16 {
	codes := make(map[TopicPartition]int16, n)
	for _, rx := range resp.Transactions {
		for _, t := range rx.Topics {
			for _, p := range t.Partitions {
				codes[TopicPartition{t.Topic, p.Partition}] = p.ErrorCode
			}
		}
	}
	return codes
}

// deliverLocked persists rd's records, then hands out its responses and
// starts its markers. Called with mu held; returns with mu released.
// timeouts says rd comes from a Tick: its abort markers are timeouts.
func (d *Driver) deliverLocked(rd Ready, timeouts bool) {
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
	if len(rd.Records) == 0 {
		d.mu.Unlock()
	} else {
		// Take persistMu before releasing mu, so that Readys are stored
		// in the order they were produced.
		d.mu.Unlock()
		d.persistMu.Lock()
		failed := d.persist(rd.Records)
		d.persistMu.Unlock()
		if failed != nil {
			d.log.Error("txn: persisting to __transaction_state failed", "err", failed)
			// The coordinator moved ahead of its log: reload the touched
			// partitions from what is stored, and tell the callers to
			// retry (NOT_COORDINATOR when this broker no longer leads the
			// partition: the client finds the new coordinator). Markers
			// are not sent for decisions not stored; the reload sends
			// those of decisions that are.
			code := kerr.CoordinatorNotAvailable.Code
			if ownership.IsNotLeader(failed) {
				code = kerr.NotCoordinator.Code
			}
			for _, a := range answers {
				a.ch <- retriable(a.resp, code)
			}
			parts := map[int32]bool{}
			for _, r := range rd.Records {
				parts[r.Partition] = true
			}
			for _, p := range slices.Sorted(mapsKeys(parts)) {
				d.mu.Lock()
				epoch, owned := d.c.Owned(p)
				d.mu.Unlock()
				if !owned {
					continue // unloaded meanwhile: its next owner loads it
				}
				if err := d.load(d.ctx, p, epoch); err != nil {
					d.log.Error("txn: reloading __transaction_state partition", "partition", p, "err", err)
				}
			}
			d.mu.Lock()
			d.deliverLocked(d.c.Ready(), false)
			return
		}
	}
	for _, a := range answers {
		a.ch <- a.resp
	}
	if len(rd.Markers) == 0 {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return // a restart sends them again
	}
	d.wg.Add(len(rd.Markers))
	d.mu.Unlock()
	for _, m := range rd.Markers {
		go d.writeMarkers(m, timeouts && !m.Commit)
	}
}

func mapsKeys(m map[int32]bool) func(func(int32) bool) {
	return func(yield func(int32) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// persist appends recs, by partition, in order.
func (d *Driver) persist(recs []Record) error {
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Partition == recs[i].Partition {
			j++
		}
		if err := d.opts.Log.Append(d.ctx, recs[i].Partition, recs[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// retriable turns a successful answer into the retriable code (
// COORDINATOR_NOT_AVAILABLE or NOT_COORDINATOR).
func retriable(resp kmsg.Response, code int16) kmsg.Response {
	switch r := resp.(type) {
	case *kmsg.InitProducerIDResponse:
		if r.ErrorCode == 0 {
			r.ErrorCode, r.ProducerID, r.ProducerEpoch = code, -1, -1
		}
	case *kmsg.EndTxnResponse:
		if r.ErrorCode == 0 {
			r.ErrorCode = code
		}
	case *kmsg.AddOffsetsToTxnResponse:
		if r.ErrorCode == 0 {
			r.ErrorCode = code
		}
	case *kmsg.AddPartitionsToTxnResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				if r.Topics[i].Partitions[j].ErrorCode == 0 {
					r.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
		for k := range r.Transactions {
			for i := range r.Transactions[k].Topics {
				for j := range r.Transactions[k].Topics[i].Partitions {
					if r.Transactions[k].Topics[i].Partitions[j].ErrorCode == 0 {
						r.Transactions[k].Topics[i].Partitions[j].ErrorCode = code
					}
				}
			}
		}
	}
	return resp
}

// writeMarkers writes m's markers until every partition is done or the
// driver closes, then reports them to the coordinator.
func (d *Driver) writeMarkers(m Marker, timedOut bool) {
	defer d.wg.Done()
	pending := slices.Clone(m.Partitions)
	wait := d.opts.MarkerRetry
	statePart := Partition(m.TransactionalID, d.Partitions())
	for len(pending) > 0 {
		d.mu.Lock()
		epoch, owned := d.c.Owned(statePart)
		d.mu.Unlock()
		if !owned || epoch != m.CoordinatorEpoch {
			// The partition moved (or is being reloaded): its next load
			// sends the markers again under its own epoch.
			return
		}
		mm := m
		mm.Partitions = pending
		done, err := d.opts.Markers(d.ctx, mm)
		if len(done) > 0 {
			d.mu.Lock()
			if d.closed {
				d.mu.Unlock()
				return
			}
			d.c.MarkersWritten(d.opts.Now(), m.TransactionalID, m.ProducerID, m.Epoch, done)
			d.deliverLocked(d.c.Ready(), false)
		}
		pending = slices.DeleteFunc(pending, func(tp TopicPartition) bool { return slices.Contains(done, tp) })
		if len(pending) == 0 {
			break
		}
		if errors.Is(err, kerr.TransactionCoordinatorFenced) {
			// A partition holds a marker of a newer coordinator epoch for
			// this producer: another broker coordinates the transactional
			// id now and ends the transaction itself. Not ours to finish,
			// nor to fail.
			d.log.Info("txn: a partition has a newer coordinator's marker; this coordinator stops writing the transaction's markers",
				"transactional_id", m.TransactionalID, "coordinator_epoch", m.CoordinatorEpoch, "err", err)
			return
		}
		if err != nil {
			d.log.Warn("txn: writing markers failed; retrying", "transactional_id", m.TransactionalID, "err", err)
		}
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxMarkerRetry)
	}
	d.mu.Lock()
	switch {
	case m.Commit:
		d.stats.Committed++
	case timedOut:
		d.stats.Aborted++
		d.stats.TimedOut++
	default:
		d.stats.Aborted++
	}
	d.mu.Unlock()
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
		d.deliverLocked(d.c.Ready(), true)
	}
}

// Close stops the driver and waits for its goroutines.
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

// Describe returns what the coordinator knows of id.
func (d *Driver) Describe(id string) (Info, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c.Describe(TransactionalID(id))
}

// IDs returns the transactional ids the coordinator holds, sorted.
func (d *Driver) IDs() []TransactionalID {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c.IDs()
}

// Stats returns the driver's counts.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	for _, id := range d.c.IDs() {
		if info, ok := d.c.Describe(id); ok && !info.State.idle() {
			s.Open++
		}
	}
	return s
}

// Partitions returns the partition count of __transaction_state.
func (d *Driver) Partitions() int32 { return d.c.opts.StatePartitions }

// Load starts serving partition p of __transaction_state under coordinator
// epoch epoch (in a cluster, the partition's leader epoch): it replays the
// partition (what lies below its high watermark) and then sends again the
// markers of transactions left in PrepareCommit or PrepareAbort; their
// timeouts run from their recorded start. Requests for p's transactional
// ids are answered NOT_COORDINATOR until it is loaded. A partition served
// already is loaded again.
func (d *Driver) Load(ctx context.Context, p int32, epoch CoordinatorEpoch) error {
	if p < 0 || p >= d.Partitions() {
		return fmt.Errorf("txn: %s has no partition %d", StateTopic, p)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.c.Unload(p)
	d.mu.Unlock()
	if err := d.load(ctx, p, epoch); err != nil {
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.deliverLocked(d.c.Ready(), false)
	return nil
}

// Unload stops serving the listed partitions of __transaction_state: their
// transactional ids are forgotten (the log keeps them for the next owner)
// and their requests are answered NOT_COORDINATOR. Markers being written
// for their transactions stop at their next try; the next owner sends them
// again.
func (d *Driver) Unload(ps []int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range ps {
		d.c.Unload(p)
	}
}

// Owned reports whether partition p of __transaction_state is served, and
// under which coordinator epoch.
func (d *Driver) Owned(p int32) (CoordinatorEpoch, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c.Owned(p)
}
