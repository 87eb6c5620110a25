package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/quorum"
)

// Quorum is what the driver and the member need of the raft node
// (*quorum.Node implements it); tests use a fake.
type Quorum interface {
	// Propose replicates data and returns its index once committed and
	// applied locally (see quorum.Node.Propose).
	Propose(ctx context.Context, data []byte) (uint64, error)
	Status() quorum.Status
	LeaderChanges() <-chan quorum.LeaderChange
}

// ErrNotController is returned by the driver on a node that is not the
// active controller (or not yet ready to decide).
var ErrNotController = errors.New("cluster: this node is not the active controller")

// proposeTimeout bounds one proposal of the controller's records.
const proposeTimeout = 10 * time.Second

// driverCall is one request handed to the driver's goroutine.
type driverCall struct {
	ctx  context.Context
	req  kmsg.Request
	done chan driverResult // cap 1
}

type driverResult struct {
	resp    kmsg.Response
	applied uint64
	err     error
}

// driver runs the metadata controller on the raft leader: one goroutine
// that owns the metadata.Controller, feeds it requests and ticks, proposes
// each call's records as one entry, and replies once that entry is
// committed and applied here. Proposals are made one at a time, so the
// controller's uncommitted state is at most one entry ahead.
//
// On becoming leader it first commits an empty entry (a barrier), so that
// the image it builds the controller from holds every entry of earlier
// terms. When a proposal fails, or its entry was refused by the image, the
// controller is Reset to the committed image and the caller gets an error
// (retriable: the forwarding broker answers NOT_CONTROLLER or retries).
type driver struct {
	q    Quorum
	sm   *imageSM
	opts metadata.Options
	now  func() time.Time
	log  *slog.Logger

	callc chan *driverCall
	stopc chan struct{}
	wg    sync.WaitGroup
	// ctx bounds the driver's own proposals (barrier, ticks); stop
	// cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	// probe tries to connect to a broker's listener (liveness probes,
	// metadata/liveness.go) and reports whether the connection was
	// refused.
	probe func(ctx context.Context, addr string) bool
	// probec carries refused probes back to the loop.
	probec chan metadata.Probe
	// gone holds the brokers whose RPC connection to this node ended
	// since the loop last looked (guarded by goneMu); gonec (cap 1) wakes
	// the loop.
	goneMu sync.Mutex
	gone   []metadata.NodeID
	gonec  chan struct{}

	// Loop state, touched only by run.
	ctl *metadata.Controller
}

// probeTimeout bounds one liveness probe: anything but a refusal within
// it counts as alive.
const probeTimeout = time.Second

// refusedProbe is the driver's default probe: a TCP connection to addr
// (no TLS handshake: whether something listens is the question), refused
// or not.
func refusedProbe(ctx context.Context, addr string) bool {
	var d net.Dialer // ctx bounds it (probeTimeout)
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		_ = c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func newDriver(q Quorum, sm *imageSM, opts metadata.Options, now func() time.Time, log *slog.Logger) *driver {
	ctx, cancel := context.WithCancel(context.Background())
	return &driver{q: q, sm: sm, opts: opts, now: now, log: log, probe: refusedProbe,
		callc: make(chan *driverCall), stopc: make(chan struct{}), ctx: ctx, cancel: cancel,
		probec: make(chan metadata.Probe), gonec: make(chan struct{}, 1)}
}

func (d *driver) start() {
	d.wg.Add(1)
	go d.run()
}

func (d *driver) stop() {
	d.cancel()
	close(d.stopc)
	d.wg.Wait()
}

// disconnected tells the loop that broker n's RPC connection to this node
// ended (the RPC server calls it; it never blocks).
func (d *driver) disconnected(n int32) {
	d.goneMu.Lock()
	d.gone = append(d.gone, metadata.NodeID(n))
	d.goneMu.Unlock()
	select {
	case d.gonec <- struct{}{}:
	default:
	}
}

// startProbes starts the probes the controller wants now, each in its own
// goroutine, which hands a refusal back to the loop.
func (d *driver) startProbes() {
	if d.ctl == nil {
		return
	}
	for _, p := range d.ctl.Probes(d.now()) {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			ctx, cancel := context.WithTimeout(d.ctx, probeTimeout)
			refused := d.probe(ctx, p.Addr)
			cancel()
			if !refused {
				return
			}
			select {
			case d.probec <- p:
			case <-d.stopc:
			}
		}()
	}
}

// handle is the RPC handler: it passes req to the loop and waits.
func (d *driver) handle(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
	c := &driverCall{ctx: ctx, req: req, done: make(chan driverResult, 1)}
	select {
	case d.callc <- c:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-d.stopc:
		return nil, 0, ErrNotController
	}
	select {
	case r := <-c.done:
		return r.resp, r.applied, r.err
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

func (d *driver) run() {
	defer d.wg.Done()
	var timer *time.Timer
	var timerC <-chan time.Time
	resetTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
		if d.ctl == nil {
			return
		}
		dl := d.ctl.Deadline()
		if pd := d.ctl.ProbeDeadline(); !pd.IsZero() && (dl.IsZero() || pd.Before(dl)) {
			dl = pd
		}
		if !dl.IsZero() {
			timer = time.NewTimer(max(dl.Sub(d.now()), time.Millisecond))
			timerC = timer.C
		}
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// The node may already lead (a single voter elects itself at once).
	lc := d.q.LeaderChanges()
	d.becomeMaybe()
	resetTimer()
	for {
		select {
		case <-d.stopc:
			return
		case <-lc:
			d.becomeMaybe()
		case c := <-d.callc:
			if d.ctl == nil {
				d.becomeMaybe()
			}
			resp, applied, err := d.call(c.ctx, c.req)
			c.done <- driverResult{resp, applied, err}
		case <-timerC:
			timer, timerC = nil, nil
			if d.ctl != nil {
				records, err := d.ctl.Tick(d.now())
				if err == nil {
					_, err = d.propose(d.ctx, records)
				}
				if err != nil {
					d.log.Warn("cluster: controller tick (session expiry) not committed", "err", err)
				}
			}
			d.startProbes()
		case <-d.gonec:
			d.goneMu.Lock()
			gone := d.gone
			d.gone = nil
			d.goneMu.Unlock()
			if d.ctl != nil {
				for _, n := range gone {
					d.ctl.Disconnected(n)
				}
				d.startProbes()
			}
		case p := <-d.probec:
			if d.ctl != nil {
				records, err := d.ctl.ProbeRefused(p)
				if err != nil {
					// As in call: the controller's own records did not fit.
					d.ctl.Reset(d.sm.Image(), d.now())
				} else if len(records) > 0 {
					d.log.Info("cluster: fencing a broker whose listener refuses connections (its process is gone)", "broker", p.Node, "addr", p.Addr)
					_, err = d.propose(d.ctx, records)
				}
				if err != nil {
					d.log.Warn("cluster: fencing of a broker found gone not committed", "broker", p.Node, "err", err)
				}
			}
		}
		resetTimer()
	}
}

// becomeMaybe starts the controller when this node leads and has none,
// and drops it when this node no longer leads.
func (d *driver) becomeMaybe() {
	st := d.q.Status()
	leading := st.Role == quorum.RoleLeader
	switch {
	case !leading && d.ctl != nil:
		d.log.Info("cluster: no longer the active controller", "term", st.Term)
		d.ctl = nil
	case leading && d.ctl == nil:
		ctx, cancel := context.WithTimeout(d.ctx, proposeTimeout)
		_, err := d.q.Propose(ctx, metadata.EncodeEntry(nil))
		cancel()
		if err != nil {
			d.log.Info("cluster: barrier entry of a new controller not committed", "err", err)
			return
		}
		ctl, err := metadata.NewController(d.sm.Image(), d.now(), d.opts)
		if err != nil {
			d.log.Error("cluster: cannot start the controller", "err", err)
			return
		}
		d.ctl = ctl
		d.log.Info("cluster: active controller", "term", st.Term, "applied", d.sm.Image().Applied())
	}
}

// call runs one request through the controller.
func (d *driver) call(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
	if d.ctl == nil {
		return nil, 0, ErrNotController
	}
	now := d.now()
	var (
		records []metadata.Record
		resp    kmsg.Response
		err     error
	)
	switch r := req.(type) {
	case *kmsg.BrokerRegistrationRequest:
		records, resp, err = unpack(d.ctl.RegisterBroker(now, r))
	case *kmsg.BrokerHeartbeatRequest:
		records, resp, err = unpack(d.ctl.Heartbeat(now, r))
	case *kmsg.UnregisterBrokerRequest:
		records, resp, err = unpack(d.ctl.UnregisterBroker(r))
	case *kmsg.AllocateProducerIDsRequest:
		records, resp, err = unpack(d.ctl.AllocateProducerIDs(r))
	case *kmsg.CreateTopicsRequest:
		records, resp, err = unpack(d.ctl.CreateTopics(r))
	case *kmsg.DeleteTopicsRequest:
		records, resp, err = unpack(d.ctl.DeleteTopics(r))
	case *kmsg.CreatePartitionsRequest:
		records, resp, err = unpack(d.ctl.CreatePartitions(r))
	case *kmsg.IncrementalAlterConfigsRequest:
		records, resp, err = unpack(d.ctl.IncrementalAlterConfigs(r))
	case *kmsg.AlterConfigsRequest:
		records, resp, err = unpack(d.ctl.AlterConfigs(r))
	case *kmsg.AlterPartitionRequest:
		records, resp, err = unpack(d.ctl.AlterPartition(r))
	case *kmsg.ElectLeadersRequest:
		records, resp, err = unpack(d.ctl.ElectLeaders(r))
	case *kmsg.AlterPartitionAssignmentsRequest:
		records, resp, err = unpack(d.ctl.AlterPartitionReassignments(r))
	case *kmsg.ListPartitionReassignmentsRequest:
		resp = d.ctl.ListPartitionReassignments(r)
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		records, resp, err = unpack(d.ctl.AlterUserSCRAMCredentials(r))
	case *kmsg.CreateACLsRequest:
		records, resp, err = unpack(d.ctl.CreateACLs(r))
	case *kmsg.DeleteACLsRequest:
		records, resp, err = unpack(d.ctl.DeleteACLs(r))
	default:
		return nil, 0, fmt.Errorf("cluster: the controller does not answer %s", kmsg.NameForKey(req.Key()))
	}
	if err != nil {
		// The controller's own records did not fit its image: a bug; start
		// over from the committed image rather than go on from a bad state.
		d.ctl.Reset(d.sm.Image(), now)
		return nil, 0, err
	}
	idx, err := d.propose(ctx, records)
	if err != nil {
		return nil, 0, err
	}
	return resp, idx, nil
}

// unpack turns a controller method's typed reply into the generic one.
func unpack[R kmsg.Response](records []metadata.Record, resp R, err error) ([]metadata.Record, kmsg.Response, error) {
	return records, resp, err
}

// propose commits records as one entry; nothing to do for none. On any
// failure the controller is Reset to the committed image.
func (d *driver) propose(ctx context.Context, records []metadata.Record) (uint64, error) {
	if len(records) == 0 {
		return d.sm.Image().Applied(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, proposeTimeout)
	defer cancel()
	idx, err := d.q.Propose(ctx, metadata.EncodeEntry(records))
	if err == nil {
		err = d.sm.Refused(idx)
	}
	if err != nil {
		d.ctl.Reset(d.sm.Image(), d.now())
		if d.q.Status().Role != quorum.RoleLeader {
			d.ctl = nil
		}
		return 0, fmt.Errorf("cluster: metadata change not committed (retry): %w", err)
	}
	d.ctl.Committed(idx)
	return idx, nil
}
