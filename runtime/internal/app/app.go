package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/runtime/internal/assign"
	"github.com/weir-dev/weir/runtime/internal/client"
	"github.com/weir-dev/weir/runtime/internal/decide"
	"github.com/weir-dev/weir/streams"
)

// ErrClosed is returned by Run on an App that was closed or already ran.
var ErrClosed = errors.New("runtime: application closed")

// App is one application instance. See the package documentation.
type App struct {
	opts     Options
	topo     *streams.Topology
	log      *slog.Logger
	m        *metrics
	instance string
	sources  map[string]bool // names of source nodes
	// metricsLn is the metrics endpoint's listener, bound by New (nil
	// without MetricsAddr); Run serves it, Run or Close closes it.
	metricsLn net.Listener
	// queryLn is the query endpoint's listener, bound by New (nil without
	// QueryAddr), and queryAdvertised the address advertised for it;
	// both read-only after New (query.go, queryhttp.go).
	queryLn         net.Listener
	queryAdvertised string

	// Set up by Run before the group client starts; read-only afterwards.
	admCl *kgo.Client
	adm   *kadm.Client
	// cl is the group client and sess wraps it under ExactlyOnce (nil
	// otherwise): it ends each commit's transaction, aborting it when a
	// rebalance took partitions during it. Both, and clientCancel, are
	// set by setup and replaced by restartClient, under mu, on the Run
	// goroutine; they are read there, under mu, or by the current
	// client's rebalance callbacks (once it is set).
	cl   *kgo.Client
	sess *kgo.GroupTransactSession
	eng  *stateengine.Engine
	plan *client.Plan
	// balancer is the group balancer; standby is nil without standbys.
	balancer *assign.Balancer
	standby  *standbys
	// global runs the global sub-topologies; nil without any.
	global *globals
	// inputTopics are the topics the group client consumes, sorted.
	inputTopics []string
	// local is the set of tasks this instance holds state for.
	local localState
	// runCtx is the context of the records produced (franz-go fails a
	// record still buffered when it ends); canceled when Run returns.
	runCtx context.Context
	// gate bounds the records handed to cl and not yet acknowledged to
	// Options.MaxBufferedProduce; every Produce on cl takes room in it
	// first, so that cl's own limit (set above) never blocks.
	gate *client.Gate
	// produceCtx bounds how long a record waits for room in gate: set by the
	// goroutine holding mu to the context of the step or commit attempt
	// it runs, read by it and the workers it runs tasks on.
	produceCtx atomic.Pointer[context.Context]
	// clientCancel cancels the group client's context, making it stop
	// talking to the cluster (Abandon). See cl.
	clientCancel context.CancelFunc

	stopOnce sync.Once
	stop     chan struct{} // closed by Close and Abandon
	killOnce sync.Once
	killed   chan struct{} // closed by Abandon, before stop
	// stopCtx is canceled with stop closing: a Produce waiting for room
	// outside a step or commit attempt waits on it.
	stopCtx    context.Context
	cancelStop context.CancelFunc
	done       chan struct{} // closed when Run returns
	started    chan struct{} // closed when the group client is up
	clReady    chan struct{} // closed once setup has set plan, balancer and the first client
	runOnce    sync.Once

	mu sync.Mutex
	// tasks are the running tasks. Guarded by mu.
	tasks map[streams.TaskID]*task
	// byTP maps an input partition to its task. Guarded by mu.
	byTP map[streams.TopicPartition]*task
	// sm decides when to commit and to retry a stalled commit, when
	// processing holds off, which partitions to pause, when a task may
	// process and which lags to probe: the loop steps it with what
	// happens and carries out what it decides (applyLocked). Invariant:
	// it runs the same tasks as tasks. Guarded by mu (the workers
	// processLocked runs call MayProcess of distinct tasks).
	sm *decide.Machine
	// fatal is the first fatal error, which ends Run. Guarded by mu.
	fatal error
	// abandoned is set by Abandon: nothing is committed from then on.
	// Guarded by mu.
	abandoned bool
	// recBuf is stepLocked's conversion buffer. Guarded by mu.
	recBuf []streams.RawRecord
	// inTxn is set under ExactlyOnce while a transaction is open: from
	// the first step or commit that may produce to the commit that ends
	// it. Guarded by mu.
	inTxn bool
	// txnUnsettled is set under ExactlyOnce when ending a transaction was
	// interrupted by the instance stopping: the client may still hold
	// it open, so no later commit (the shutdown's) begins or ends one;
	// the broker aborts it. Guarded by mu.
	txnUnsettled bool
	// failedFlushes counts the commits in a row under ExactlyOnce whose
	// flush failed (see maxFailedFlushes). Guarded by mu.
	failedFlushes int
	// restartsInARow counts the client restarts (restartClient) since
	// the last committed transaction. Guarded by mu.
	restartsInARow int
	// pending is the pipelined commit (at least once) whose records are
	// not all acknowledged yet, nil when none: its stores are written,
	// its offsets wait (startCommitLocked, finishCommitLocked). Guarded by
	// mu.
	pending *pendingCommit
}

// pendingCommit is a pipelined commit waiting for the acknowledgement of
// the records its tasks produced before it (client.Inflight.Mark).
type pendingCommit struct {
	start time.Time
	tasks []*task
	// offsets are, per task, the input offsets to commit: the offset after
	// the last record processed when the commit started.
	offsets map[*task]map[streams.TopicPartition]streams.Offset
}

// New returns an application instance for topo; nothing connects until
// Run. It builds the topology (Build is idempotent) and validates opts.
func New(topo *streams.Topology, opts Options) (*App, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := topo.Build(); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	if err := checkExactlyOnceStores(topo, opts); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	instance := fmt.Sprintf("%s-%d-%p", host, os.Getpid(), topo)
	sm, err := newMachine(opts)
	if err != nil {
		return nil, err
	}
	a := &App{
		sm:       sm,
		opts:     opts,
		topo:     topo,
		log:      opts.Logger.With("application", opts.ApplicationID),
		instance: instance,
		sources:  map[string]bool{},
		stop:     make(chan struct{}),
		killed:   make(chan struct{}),
		done:     make(chan struct{}),
		started:  make(chan struct{}),
		clReady:  make(chan struct{}),
		tasks:    map[streams.TaskID]*task{},
		byTP:     map[streams.TopicPartition]*task{},
	}
	if opts.MetricsAddr != "" {
		// NB: bound here, so that the address (port 0 picks one) is known
		// before Run and a taken port fails New.
		ln, err := net.Listen("tcp", opts.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("runtime: metrics address: %w", err)
		}
		a.metricsLn = ln
	}
	if err := a.bindQuery(); err != nil {
		a.closeMetricsListener()
		return nil, err
	}
	a.stopCtx, a.cancelStop = context.WithCancel(context.Background())
	a.gate = client.NewGate(opts.MaxBufferedProduce)
	a.m = newMetrics(opts.ApplicationID, instance)
	for _, n := range topo.Nodes() {
		if n.Kind == streams.SourceNode {
			a.sources[n.Name] = true
		}
	}
	return a, nil
}

// newMachine returns the decision machine for opts.
func newMachine(opts Options) (*decide.Machine, error) {
	sm, err := decide.New(decide.Options{
		CommitInterval:          opts.CommitInterval,
		MaxTaskIdle:             opts.MaxTaskIdle,
		MaxBufferedProduce:      opts.MaxBufferedProduce,
		MaxBufferedPerPartition: opts.MaxBufferedPerPartition,
	})
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return sm, nil
}

func (a *App) clientOpts() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(a.opts.Brokers...)}, a.opts.ClientOpts...)
}

// Run runs the instance until ctx ends, Close is called or a fatal error
// happens; it returns nil on a clean stop. On the way out it commits, and
// leaves the group (unless abandoned).
func (a *App) Run(ctx context.Context) (err error) {
	ran := false
	a.runOnce.Do(func() { ran = true })
	if !ran {
		return ErrClosed
	}
	defer close(a.done)
	select {
	case <-a.stop:
		a.closeMetricsListener()
		return ErrClosed
	default:
	}
	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	a.runCtx = runCtx

	// NB: Close ends the set-up too (a producer id whose transaction the
	// broker has not settled yet can be waited for a long time).
	sctx, cancelSetup := context.WithCancel(ctx)
	stopSetup := context.AfterFunc(a.stopCtx, cancelSetup)
	err = a.setup(sctx)
	stopSetup()
	stopped := sctx.Err() != nil
	cancelSetup()
	if err != nil {
		a.closeClients()
		a.closeMetricsListener()
		if stopped {
			// Stopped (Ctrl-C, Close) before it started processing:
			// nothing was processed, so there is nothing to commit.
			// The error setup saw need not wrap the context's: a
			// client can give up on its last dial error once the
			// context has ended.
			return nil
		}
		return err
	}
	close(a.started)
	var srv *http.Server
	var srvDone chan struct{}
	if a.metricsLn != nil {
		srv, srvDone = a.serveHTTP()
	}
	stopQuery := a.serveQuery()
	err = a.loop(ctx)
	for a.mayRestart(ctx, err) {
		if err = a.restartClient(ctx, err); err == nil {
			err = a.loop(ctx)
		}
	}
	if serr := a.shutdown(); err == nil {
		err = serr
	}
	stopQuery()
	if srv != nil {
		_ = srv.Close()
		<-srvDone
	}
	return err
}

// setup creates the internal topics, opens the state engine and starts the
// group client.
func (a *App) setup(ctx context.Context) error {
	var err error
	a.admCl, err = kgo.NewClient(a.clientOpts()...)
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	a.adm = kadm.NewClient(a.admCl)
	a.plan, err = client.Prepare(ctx, a.adm, a.opts.ApplicationID, a.topo, a.opts.ReplicationFactor)
	if err != nil {
		return err
	}
	for _, t := range a.plan.Created {
		a.log.Info("created internal topic", "topic", t, "partitions", a.plan.Partitions[t])
	}
	a.eng, err = stateengine.Open(stateengine.Options{Dir: a.opts.StateDir, MemoryBudget: a.opts.MemoryBudget, Logger: a.log,
		EarlyCommitContext: a.earlyCommitContext})
	if err != nil {
		return fmt.Errorf("runtime: open state: %w", err)
	}
	if err := a.scanLocalState(); err != nil {
		return err
	}
	if err := a.startStandbys(); err != nil {
		return err
	}
	if err := a.startGlobals(ctx); err != nil {
		return err
	}
	layout := assign.Layout{Topics: map[string]int{}}
	var topics []string
	for tp, st := range a.plan.Sources {
		layout.Topics[tp] = int(st)
		topics = append(topics, tp)
	}
	sort.Strings(topics)
	a.inputTopics = topics
	a.balancer = assign.NewBalancer(layout, a.opts.Standbys, a.localTasks)
	a.balancer.SetQueryAddr(a.queryAdvertised)
	if err := a.startGroupClient(ctx); err != nil {
		return err
	}
	close(a.clReady)
	return nil
}

// startGroupClient makes the group client (the transactional session under
// ExactlyOnce) and sets a.cl, a.sess and a.clientCancel under mu. Its
// rebalance callbacks wait until it is set: franz-go may call one before
// NewClient has returned.
func (a *App) startGroupClient(ctx context.Context) error {
	ready := make(chan struct{})
	clientCtx, cancel := context.WithCancel(context.Background())
	opts := append(a.clientOpts(),
		kgo.WithContext(clientCtx),
		kgo.ClientID(a.opts.ApplicationID),
		kgo.ConsumerGroup(a.opts.ApplicationID),
		kgo.ConsumeTopics(a.inputTopics...),
		kgo.Balancers(a.balancer),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(a.opts.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, a.opts.SessionTimeout/4)),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MaxBufferedRecords(2*a.opts.MaxBufferedProduce),
		kgo.RecordPartitioner(client.Partitioner{}),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			if waitReady(ctx, ready) {
				a.onAssigned(ctx, m)
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			if waitReady(ctx, ready) {
				a.onRevoked(ctx, m)
			}
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			if waitReady(ctx, ready) {
				a.onLost(ctx, m)
			}
		}),
	)
	cl, sess, err := a.newGroupClient(ctx, opts)
	if err != nil {
		// NB: canceled before it is closed: a rebalance callback
		// waiting for ready holds the group's leave, which Close waits
		// for, until the client's context ends.
		cancel()
		if cl != nil {
			cl.Close()
		}
		return err
	}
	a.mu.Lock()
	a.cl, a.sess, a.clientCancel = cl, sess, cancel
	a.mu.Unlock()
	close(ready)
	return nil
}

// newGroupClient makes the group client from opts: under ExactlyOnce a
// transactional session whose producer id is initialized. A client that
// fails to initialize it is returned with the error, for the caller to
// cancel and close.
func (a *App) newGroupClient(ctx context.Context, opts []kgo.Opt) (*kgo.Client, *kgo.GroupTransactSession, error) {
	if !a.opts.ExactlyOnce {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("runtime: %w", err)
		}
		return cl, nil, nil
	}
	id, err := instanceID(a.opts.StateDir)
	if err != nil {
		return nil, nil, err
	}
	txnID := a.opts.ApplicationID + "-" + id
	opts = append(opts,
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(a.opts.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: %w", err)
	}
	cl := sess.Client()
	// NB: initializing the producer id fences this instance's earlier
	// incarnation (or client) and settles the transaction it left open,
	// before any task restores (the rebalance callbacks wait for the
	// client to be set): the restores then read changelogs whose last
	// stable offset that transaction no longer holds back.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return cl, nil, fmt.Errorf("runtime: init transactional producer %q: %w", txnID, err)
	}
	return cl, sess, nil
}

// waitReady waits until ready closes or ctx ends, and reports which.
func waitReady(ctx context.Context, ready chan struct{}) bool {
	select {
	case <-ready:
		return true
	default:
	}
	select {
	case <-ready:
		return true
	case <-ctx.Done():
		return false
	}
}

// loop polls and processes until ctx ends, stop closes or a fatal error.
func (a *App) loop(ctx context.Context) error {
	// Steps and commits wait on cctx: Close does not wait for a commit
	// attempt that cannot reach the broker. At least once, it lets one
	// that is running finish (within its CommitTimeout) while the broker
	// keeps acknowledging records: cancelled at once, a step or commit
	// handing a full producer its records failed them, and so the whole
	// Close, with the broker up. No acknowledgement for MaxCommitBackoff
	// (or Abandon) cancels it. Under ExactlyOnce Close cancels at once: a
	// transaction it interrupts is left to the broker to abort
	// (txnUnsettled).
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-a.stop:
		case <-cctx.Done():
			return
		}
		if a.opts.ExactlyOnce {
			cancel()
			return
		}
		tick := time.NewTicker(decide.MaxCommitBackoff)
		defer tick.Stop()
		acked := a.gate.Acked()
		for {
			select {
			case <-a.killed:
				cancel()
				return
			case <-cctx.Done():
				return
			case <-tick.C:
			}
			n := a.gate.Acked()
			if n == acked {
				cancel()
				return
			}
			acked = n
		}
	}()
	var probe *decide.Probe
	// resumesAt is sm.ResumesAt after the last step: while back-pressure
	// holds processing for the producer's backlog, the poll's wait ends
	// as soon as the acknowledgements bring the gate down to it, not at
	// the poll's timeout (every), which otherwise added up to every to
	// each hold. Only the loop's goroutine uses it.
	resumesAt := -1
	p := pollLoop{
		cl: a.cl,
		// NB: PollFetches takes whole fetch responses (at most
		// MaxBufferedRecords), so that a poll that hands over a
		// partition's records also carries the end offsets the broker
		// answered with for the task's other partitions: with part of a
		// response left behind, a task could judge another partition
		// caught up by an end offset older than the records it runs
		// ahead with.
		every: min(a.opts.CommitInterval, 200*time.Millisecond),
		log:   a.log,
		mu:    &a.mu,
		stop:  a.stop,
		fatal: func(err error) error {
			if fatalGroupError(err) {
				return fmt.Errorf("runtime: consumer group %q: %w", a.opts.ApplicationID, err)
			}
			return nil
		},
		stepLocked: func(fs kgo.Fetches, waited time.Duration) (err error) {
			if a.sm.Holding() {
				a.m.spent(phaseHeld, waited)
			} else {
				a.m.spent(phasePoll, waited)
			}
			probe, err = a.stepLocked(cctx, fs)
			resumesAt = a.sm.ResumesAt()
			return err
		},
		early: func(end context.CancelFunc) func() {
			if resumesAt < 0 {
				return func() {}
			}
			return a.gate.NotifyBelow(resumesAt, end)
		},
		after: func() {
			if probe != nil {
				a.probeLags(ctx, probe)
				probe = nil
			}
		},
	}
	return p.run(ctx)
}

// fatalGroupError reports errors that retrying cannot fix: the group
// refuses this member's configuration.
func fatalGroupError(err error) bool {
	return errors.Is(err, kerr.InvalidSessionTimeout) ||
		errors.Is(err, kerr.InconsistentGroupProtocol) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.InvalidGroupID)
}

// stepLocked hands one poll's records to their tasks, processes (unless
// back-pressure holds it off), and commits when due; commits wait on ctx.
// It returns the lag probe to run, if one is due.
func (a *App) stepLocked(ctx context.Context, fs kgo.Fetches) (*decide.Probe, error) {
	if a.fatal != nil {
		return nil, a.fatal
	}
	now := time.Now()
	a.sm.Step(now, decide.Polled{})
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		tp := streams.TopicPartition{Topic: p.Topic, Partition: streams.Partition(p.Partition)}
		e := decide.Fetched{Partition: tp, OK: p.Err == nil, End: p.HighWatermark}
		if len(p.Records) > 0 {
			last := p.Records[len(p.Records)-1].Offset
			a.m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(p.HighWatermark-last-1, 0)))
		}
		t := a.byTP[tp]
		if t == nil || len(p.Records) == 0 {
			a.sm.Step(now, e)
			return // revoked since it was fetched: its new owner reads it again
		}
		// The task copies the records it is given: one buffer serves
		// every partition.
		recs := slices.Grow(a.recBuf[:0], len(p.Records))[:len(p.Records)]
		a.recBuf = recs
		for i, r := range p.Records {
			recs[i] = streams.RawRecord{
				Topic: r.Topic, Partition: streams.Partition(r.Partition), Offset: streams.Offset(r.Offset),
				Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
			}
			for _, h := range r.Headers {
				recs[i].Headers = append(recs[i].Headers, streams.Header{Key: h.Key, Value: h.Value})
			}
		}
		e.Records, e.First, e.Last = len(recs), recs[0].Offset, recs[len(recs)-1].Offset
		a.sm.Step(now, e)
		if err := t.exec.Add(tp, recs); err != nil && a.fatal == nil {
			a.fatal = err
		}
	})
	if a.fatal != nil {
		return nil, a.fatal
	}
	// NB: the gate's count, not the producer's own: the loop's wait for
	// the hold's end is on the gate (Gate.NotifyBelow), and a record's
	// room in the gate is given back before the producer stops counting
	// it.
	a.sm.Step(now, decide.Backlog{Produce: a.gate.Held()})
	a.applyLocked(a.sm.Ready(), nil)
	handedOff := time.Now()
	a.m.spent(phaseHandoff, handedOff.Sub(now))
	if !a.sm.Holding() {
		if err := a.beginLocked(); err != nil {
			return nil, a.failLocked(err)
		}
		// A Produce that finds the producer full waits for room at most
		// CommitTimeout (or until Close), as a commit attempt would.
		pctx, cancel := context.WithTimeout(ctx, a.opts.CommitTimeout)
		restore := a.setProduceCtxLocked(pctx)
		err := a.processLocked(now)
		now := time.Now()
		for _, t := range a.tasks {
			if err != nil {
				break
			}
			if perr := t.exec.Punctuate(now); perr != nil {
				err = a.failLocked(perr)
			}
		}
		restore()
		cancel()
		a.m.spent(phaseProcess, time.Since(handedOff))
		if err != nil {
			return nil, err
		}
	}
	if a.pending != nil && a.pending.ackedLocked() {
		a.sm.Step(now, decide.CommitAcknowledged{})
	}
	a.sm.Tick(time.Now())
	rd := a.applyLocked(a.sm.Ready(), nil)
	if a.pending != nil && (rd.Finish || rd.Commit) {
		// NB: a commit due while the last is pending finishes that one
		// first, waiting for it (rd.Await) at most CommitTimeout.
		started := time.Now()
		finished, err := a.finishCommitLocked(ctx)
		a.m.spent(phaseCommitWait, time.Since(started))
		if err != nil {
			return nil, a.failLocked(err)
		}
		if !finished {
			return rd.Probe, nil // stalled or interrupted: retried later
		}
	}
	if rd.Commit {
		started := time.Now()
		err := a.startCommitLocked(ctx, a.sortedTasksLocked())
		a.m.spent(phaseCommit, time.Since(started))
		if err != nil {
			return nil, a.failLocked(err)
		}
	}
	return rd.Probe, nil
}

// applyLocked carries out what sm decided, but for a commit and a lag
// probe, which it leaves to the caller; cause is the error of the commit
// attempt that stalled, if that is what the caller stepped. It returns rd.
func (a *App) applyLocked(rd decide.Ready, cause error) decide.Ready {
	switch rd.Inputs {
	case decide.PauseInputs:
		a.cl.PauseFetchTopics(a.inputTopics...)
		a.log.Info("processing paused: the producer is behind or a commit is stalled", "stalled", a.sm.Stalled())
	case decide.ResumeInputs:
		a.cl.ResumeFetchTopics(a.inputTopics...)
		a.log.Info("processing resumed")
	}
	if len(rd.Pause) > 0 {
		a.cl.PauseFetchPartitions(tpMap(rd.Pause))
	}
	if len(rd.Resume) > 0 {
		a.cl.ResumeFetchPartitions(tpMap(rd.Resume))
	}
	for _, l := range rd.Lags {
		a.m.lag.WithLabelValues(l.Partition.Topic, strconv.Itoa(int(l.Partition.Partition))).Set(float64(l.Lag))
	}
	if s := rd.Stall; s != nil {
		a.m.commitFailures.WithLabelValues(s.Reason).Inc()
		a.m.commitStalled.Set(1)
		a.log.Warn("commit could not reach the broker; processing paused until a retry succeeds", "reason", s.Reason,
			"attempt", s.Attempts, "stalled", s.RetryAt.Add(-s.Backoff).Sub(s.Since), "retry in", s.Backoff, "err", cause)
	}
	if s := rd.Recovered; s != nil {
		a.log.Info("commit succeeded again; processing resumes", "stalled", time.Since(s.Since), "failed attempts", s.Attempts)
		a.m.commitStalled.Set(0)
	}
	return rd
}

// The producer holds at most Options.MaxBufferedProduce records (a record
// beyond waits in the App's gate until the broker acknowledges some, at
// most until produceWaitCtx ends). Processing holds
// off from half of it buffered, leaving the rest for what a commit's
// store flushes forward, and goes on below a quarter (sm decides,
// stepLocked tells it how many records are buffered).

// produceWaitCtx returns the context a record waits on for room in the
// gate: the running step's or commit attempt's, else stopCtx. Its end
// fails the record (never produced): the task's Inflight keeps the error,
// so its offsets are never committed past it (commitLocked).
func (a *App) produceWaitCtx() context.Context {
	if p := a.produceCtx.Load(); p != nil {
		return *p
	}
	return a.stopCtx
}

// earlyCommitContext is the context a store's early commit (a batch
// committed before the store's Flush, see stateengine.Options) flushes its
// changelog writer with: it checkpoints at the offset acknowledged so far,
// as a pipelined commit does (client.WithoutAckWait), instead of waiting
// for every record the task appended. The wait it replaces was bounded by
// nothing: not by the commit attempt's CommitTimeout, nor by Close, so a
// cache flush in a commit that filled the batches could hold App.mu for as
// long as the producer took to deliver. The commit that follows waits for
// the acknowledgements within its attempt (finishCommitLocked,
// commitLocked), and the store's next Flush moves its checkpoint on.
func (a *App) earlyCommitContext() context.Context {
	return client.WithoutAckWait(a.produceWaitCtx())
}

// setProduceCtxLocked makes ctx the context records wait on, and
// returns a func that puts the previous one back.
func (a *App) setProduceCtxLocked(ctx context.Context) (restore func()) {
	prev := a.produceCtx.Load()
	a.produceCtx.Store(&ctx)
	return func() { a.produceCtx.Store(prev) }
}

func (a *App) failLocked(err error) error {
	if a.fatal == nil {
		a.fatal = err
	}
	return a.fatal
}

func (a *App) sortedTasksLocked() []*task {
	ts := make([]*task, 0, len(a.tasks))
	for _, t := range a.tasks {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		x, y := ts[i].id, ts[j].id
		if x.Subtopology != y.Subtopology {
			return x.Subtopology < y.Subtopology
		}
		return x.Partition < y.Partition
	})
	return ts
}

// processLocked runs every task over its buffered records, on up to
// Workers goroutines, then updates metrics and pauses or resumes fetching
// of the partitions of tasks with several inputs as sm decides. now is
// the step's time, at which tasks judge how long they waited.
func (a *App) processLocked(now time.Time) error {
	ts := a.sortedTasksLocked()
	workers := min(a.opts.Workers, len(ts))
	if workers <= 1 {
		for _, t := range ts {
			a.runTask(t, now)
		}
	} else {
		var wg sync.WaitGroup
		next := make(chan *task, len(ts))
		for _, t := range ts {
			next <- t
		}
		close(next)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for t := range next {
					a.runTask(t, now)
				}
			}()
		}
		wg.Wait()
	}
	for _, t := range ts {
		if t.err != nil {
			return a.failLocked(t.err)
		}
		a.reportTaskMetrics(t)
		if len(t.sm.Inputs()) < 2 {
			continue
		}
		a.sm.Step(now, decide.Processed{Task: t.id, Next: t.exec.Offsets(), Buffered: t.exec.Buffered()})
	}
	a.applyLocked(a.sm.Ready(), nil)
	return nil
}

func tpMap(tps []streams.TopicPartition) map[string][]int32 {
	m := map[string][]int32{}
	for _, tp := range tps {
		m[tp.Topic] = append(m[tp.Topic], int32(tp.Partition))
	}
	return m
}

// runTask processes t's buffered records. A task with several input
// partitions processes them in timestamp order, so it processes only while
// sm says it may (decide.Task.MayProcess); a single-input task processes
// everything.
func (a *App) runTask(t *task, now time.Time) {
	multi := len(t.sm.Inputs()) > 1
	for {
		enforced := false
		if multi {
			var ready bool
			n := t.exec.Buffered()
			var next map[streams.TopicPartition]streams.Offset
			if n > 0 {
				next = t.exec.Offsets()
			}
			if ready, enforced = t.sm.MayProcess(now, n, next); !ready {
				return
			}
		}
		ok, err := t.exec.Process()
		if err != nil {
			if herr := a.handleProcessingError(t, err); herr != nil {
				t.err = herr
				return
			}
		}
		if !ok {
			return
		}
		if enforced {
			t.enforced++
		}
	}
}

// probeLags looks up what sm asked for (p): the end offsets of input
// partitions whose lag no fetch has told (a fetch response without any
// records is never handed to the poll loop), and where consuming started
// for those that have not yielded a record. It runs without App.mu;
// failures are logged and the lookup is asked for again by a later Tick.
func (a *App) probeLags(ctx context.Context, p *decide.Probe) {
	topicSet := map[string]bool{}
	for _, tp := range p.Partitions {
		topicSet[tp.Topic] = true
	}
	topics := make([]string, 0, len(topicSet))
	for tp := range topicSet {
		topics = append(topics, tp)
	}
	sort.Strings(topics)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	var firsts kadm.ListedOffsets
	var committed kadm.OffsetResponses
	if err == nil && p.Starts {
		firsts, err = a.adm.ListStartOffsets(ctx, topics...)
		if err == nil {
			err = firsts.Error()
		}
	}
	if err == nil && p.Starts {
		committed, err = a.adm.FetchOffsets(ctx, a.opts.ApplicationID)
		if err == nil {
			err = committed.Error()
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("look up input partitions' end offsets", "err", err)
		}
		return
	}
	e := decide.Probed{Poll: p.Poll}
	for _, tp := range p.Partitions {
		end, ok := ends.Lookup(tp.Topic, int32(tp.Partition))
		if !ok {
			continue
		}
		r := decide.ProbeResult{Partition: tp, End: end.Offset, Committed: -1, LogStart: -1}
		if c, ok := committed.Lookup(tp.Topic, int32(tp.Partition)); ok && c.At >= 0 {
			r.Committed = c.At
		}
		if f, ok := firsts.Lookup(tp.Topic, int32(tp.Partition)); ok {
			r.LogStart = f.Offset
		}
		e.Results = append(e.Results, r)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sm.Step(time.Now(), e)
	a.applyLocked(a.sm.Ready(), nil)
}

// handleProcessingError applies the deserialization handler to a record
// a source could not deserialize; any other error is fatal.
func (a *App) handleProcessingError(t *task, err error) error {
	return a.handleDeserialization(err, "", func(rec *kgo.Record) {
		b := t.inflight.Add()
		if err := a.gate.Acquire(a.produceWaitCtx()); err != nil {
			b.Done(err) // never produced: the task cannot commit past it
			return
		}
		a.cl.Produce(a.runCtx, rec, func(_ *kgo.Record, err error) { a.gate.Release(err); b.Done(err) })
	})
}

// handleDeserialization applies the configured deserialization handler to
// err when it is a source's deserialization failure, and returns any other
// error unchanged. kind qualifies the record in log lines and errors
// ("global " for global stores); deadLetter sends a dead-letter record.
func (a *App) handleDeserialization(err error, kind string, deadLetter func(*kgo.Record)) error {
	var pe *streams.ProcessingError
	var se *streams.SerdeError
	if !errors.As(err, &pe) || pe.Record == nil || !errors.As(err, &se) || !a.sources[se.Node] {
		return err
	}
	r := pe.Record
	switch a.opts.OnDeserializationError {
	case DeserializationSkip:
		a.m.deserErrors.WithLabelValues(r.Topic).Inc()
		a.log.Warn("skipped "+kind+"record that failed to deserialize", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", se)
		return nil
	case DeserializationDeadLetter:
		a.m.deserErrors.WithLabelValues(r.Topic).Inc()
		deadLetter(&kgo.Record{
			Topic: a.opts.DeadLetterTopic, Partition: client.AnyPartition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
			Headers: []kgo.RecordHeader{
				{Key: "weir.error", Value: []byte(se.Error())},
				{Key: "weir.topic", Value: []byte(r.Topic)},
				{Key: "weir.partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
				{Key: "weir.offset", Value: []byte(strconv.FormatInt(int64(r.Offset), 10))},
			},
		})
		return nil
	}
	return fmt.Errorf("runtime: %srecord %s/%d@%d failed to deserialize (set a deserialization error handler to skip or dead-letter such records): %w",
		kind, r.Topic, r.Partition, r.Offset, err)
}

func (a *App) reportTaskMetrics(t *task) {
	m := t.exec.Metrics()
	if d := m.Processed - t.processed; d > 0 {
		a.m.processed.WithLabelValues(t.label).Add(float64(d))
		t.processed = m.Processed
	}
	if d := t.enforced - t.enforcedReported; d > 0 {
		a.m.enforced.WithLabelValues(t.label).Add(float64(d))
		t.enforcedReported = t.enforced
	}
	for drop, n := range m.Dropped {
		if d := n - t.dropped[drop]; d > 0 {
			a.m.dropped.WithLabelValues(t.label, drop.String()).Add(float64(d))
			t.dropped[drop] = n
		}
	}
}

// commitLocked commits ts: flush stores, wait for their output, commit the
// input offsets. See the package documentation for the guarantee. One
// attempt waits at most CommitTimeout, and less if ctx ends first. An
// attempt that cannot reach the broker (timed out, or the offset commit
// failed with a network or retriable error) is not an error: it stalls
// the commit (see stallLocked) and a later attempt retries. An attempt
// cut short by ctx (the instance stops) is dropped quietly. A failed
// record or store stays fatal.
func (a *App) commitLocked(ctx context.Context, ts []*task) error {
	if a.sess != nil {
		return a.commitTxnLocked(ctx)
	}
	start := time.Now()
	a.sm.Step(start, decide.CommitStarted{})
	// A pending commit is superseded: this one waits for everything and
	// commits offsets as they are now. Offsets it covered of tasks not in
	// ts are committed by the next commit.
	a.pending = nil
	if a.abandoned {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, a.opts.CommitTimeout)
	defer cancel()
	defer a.setProduceCtxLocked(actx)()
	processed, err := flushTasks(actx, ts)
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for topic, parts := range processed {
		offsets[topic] = map[int32]kgo.EpochOffset{}
		for p, off := range parts {
			offsets[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
	}
	if err != nil {
		return a.attemptFailedLocked(ctx, actx, ts, err, err)
	}
	if ok, err := a.commitOffsetsLocked(ctx, actx, offsets); !ok {
		return err
	}
	a.sm.Step(time.Now(), decide.CommitSucceeded{Tasks: len(ts)})
	a.applyLocked(a.sm.Ready(), nil)
	if len(offsets) > 0 {
		a.m.commits.Inc()
		a.m.commitTime.Observe(time.Since(start).Seconds())
	}
	return nil
}

// startCommitLocked starts a commit of ts. Under ExactlyOnce it is the
// transaction's commit (commitLocked). At least once it is pipelined: the
// tasks' stores are flushed (their caches forward, their changelog records
// and output are handed to the producer) and committed without waiting for
// the changelog's acknowledgements, at the changelog offset acknowledged so
// far (client.WithoutAckWait: the checkpoint may lag the data, never lead
// it); the offsets processed so far are kept, and processing goes on.
// finishCommitLocked commits them once every record produced before is
// acknowledged. Errors are handled as commitLocked handles them.
func (a *App) startCommitLocked(ctx context.Context, ts []*task) error {
	if a.sess != nil {
		return a.commitLocked(ctx, ts)
	}
	start := time.Now()
	a.sm.Step(start, decide.CommitStarted{})
	a.pending = nil
	if a.abandoned {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, a.opts.CommitTimeout)
	defer cancel()
	defer a.setProduceCtxLocked(actx)()
	if err := commitTasks(client.WithoutAckWait(actx), ts); err != nil {
		return a.attemptFailedLocked(ctx, actx, ts, err, err)
	}
	p := &pendingCommit{start: start, tasks: ts, offsets: make(map[*task]map[streams.TopicPartition]streams.Offset, len(ts))}
	n := 0
	for _, t := range ts {
		t.inflight.Mark()
		// NB: the stores were checkpointed at what was acknowledged
		// before their flush: with records of it still unacknowledged,
		// the next commit flushes the task even if nothing changed,
		// so that an idle task's checkpoint catches up.
		t.checkpointLags = !t.inflight.MarkedDone()
		p.offsets[t] = t.exec.Offsets()
		n += len(p.offsets[t])
	}
	if n == 0 {
		a.sm.Step(time.Now(), decide.CommitSucceeded{Tasks: len(ts)})
		a.applyLocked(a.sm.Ready(), nil)
		return nil
	}
	a.pending = p
	a.sm.Step(time.Now(), decide.CommitPending{})
	return nil
}

// ackedLocked reports whether every record the commit's tasks produced
// before it is acknowledged (or failed).
func (p *pendingCommit) ackedLocked() bool {
	for _, t := range p.tasks {
		if !t.inflight.MarkedDone() {
			return false
		}
	}
	return true
}

// finishCommitLocked commits the pending commit's offsets once every record
// its tasks produced before it is acknowledged, waiting for that at most
// CommitTimeout. It reports whether it did: an attempt that cannot reach
// the broker stalls (the commit stays pending and is retried), one cut
// short by ctx is dropped quietly, as in commitLocked. Offsets of tasks
// that stopped running meanwhile are not committed.
func (a *App) finishCommitLocked(ctx context.Context) (bool, error) {
	p := a.pending
	actx, cancel := context.WithTimeout(ctx, a.opts.CommitTimeout)
	defer cancel()
	for _, t := range p.tasks {
		err := t.inflight.WaitMarked(actx)
		if err == nil {
			continue
		}
		fatal := fmt.Errorf("runtime: commit task %s: output not acknowledged: %w", t.id, err)
		return false, a.attemptFailedLocked(ctx, actx, []*task{t}, err, fatal)
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	kept := 0
	for _, t := range p.tasks {
		if a.tasks[t.id] != t {
			continue // revoked or lost since: its partitions may be another's
		}
		kept++
		for tp, off := range p.offsets[t] {
			if offsets[tp.Topic] == nil {
				offsets[tp.Topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[tp.Topic][int32(tp.Partition)] = kgo.EpochOffset{Epoch: -1, Offset: int64(off)}
		}
	}
	if ok, err := a.commitOffsetsLocked(ctx, actx, offsets); !ok {
		return false, err
	}
	a.pending = nil
	// NB: only the tasks still here count as committed: a commit whose
	// tasks were all lost meanwhile (the group session ended while the
	// broker was away) reached no broker, so it must not end a stall.
	a.sm.Step(time.Now(), decide.CommitSucceeded{Tasks: kept})
	a.applyLocked(a.sm.Ready(), nil)
	if len(offsets) > 0 {
		a.m.commits.Inc()
		a.m.commitTime.Observe(time.Since(p.start).Seconds())
	}
	return true, nil
}

// attemptTimedOut reports whether err is the commit attempt whose context
// is actx running out of time; records and stores that failed keep
// failing at the next attempt.
func attemptTimedOut(actx context.Context, err error) bool {
	return actx.Err() != nil && errors.Is(err, actx.Err())
}

// attemptFailedLocked handles err, which stopped a commit attempt of ts
// (context actx, within ctx) before its offsets were sent. It returns the
// error that stops the instance: the full producer's (producerFullLocked),
// or fatal when err is not the attempt running out of time. An attempt
// that timed out stalls the commit, one cut short by ctx is dropped
// quietly; both return nil and a later attempt retries.
func (a *App) attemptFailedLocked(ctx, actx context.Context, ts []*task, err, fatal error) error {
	if ferr := a.producerFullLocked(ts); ferr != nil {
		return ferr
	}
	if !attemptTimedOut(actx, err) {
		return fatal
	}
	if ctx.Err() == nil {
		a.stallLocked("timeout", err)
	} else {
		a.log.Info("commit attempt interrupted: the instance stops", "err", err)
	}
	return nil
}

// commitOffsetsLocked commits offsets (none is a success) in the commit
// attempt whose context is actx, within ctx. It reports whether they were
// committed, and returns the error that stops the instance. An attempt
// that cannot reach the broker (timed out, or a network or retriable
// error) stalls the commit and one cut short by ctx is dropped quietly:
// both keep a pending commit, to be retried. A membership error (the
// group rebalances) drops the pending commit: the tasks this instance
// keeps are committed by the next commit.
func (a *App) commitOffsetsLocked(ctx, actx context.Context, offsets map[string]map[int32]kgo.EpochOffset) (bool, error) {
	if len(offsets) == 0 {
		return true, nil
	}
	var cerr error
	a.cl.CommitOffsetsSync(actx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		cerr = commitError(resp, err)
	})
	switch {
	case cerr == nil:
		return true, nil
	case ctx.Err() != nil:
		a.log.Info("offset commit interrupted: the instance stops", "err", cerr)
		return false, nil
	case attemptTimedOut(actx, cerr):
		a.stallLocked("timeout", cerr)
		return false, nil
	case membershipError(cerr):
		a.m.commitFailures.WithLabelValues("rebalance").Inc()
		a.log.Warn("offset commit failed; retrying at the next commit", "err", cerr)
		a.pending = nil
		return false, nil
	case transientCommitError(cerr):
		a.stallLocked("unreachable", cerr)
		return false, nil
	default:
		return false, fmt.Errorf("runtime: commit offsets: %w", cerr)
	}
}

// producerFullLocked returns the error that stops the instance when a
// record of ts waited for room in the full producer until its context
// ended (a commit attempt's timeout, an earlier step's, or Close): it was
// never produced, so its task can never commit past it. The task's next
// owner processes again from the last committed offsets.
func (a *App) producerFullLocked(ts []*task) error {
	for _, t := range ts {
		if ierr := t.inflight.Err(); ierr != nil && (errors.Is(ierr, context.DeadlineExceeded) || errors.Is(ierr, context.Canceled)) {
			a.m.commitFailures.WithLabelValues("timeout").Inc()
			return fmt.Errorf("runtime: commit task %s: output dropped while the producer was full (broker unreachable for CommitTimeout, or Close); offsets stay uncommitted: %w", t.id, ierr)
		}
	}
	return nil
}

// stallLocked records a commit attempt that could not reach the broker:
// it is logged and counted, processing and fetching pause, and the next
// attempt is due after a backoff (sm decides: see decide.CommitStalled).
// Nothing is lost meanwhile: stores keep what they flushed, the producer
// keeps retrying the records it holds, and the committed offsets stay
// where the last commit put them.
func (a *App) stallLocked(reason string, err error) {
	a.sm.Step(time.Now(), decide.CommitStalled{Reason: reason})
	a.applyLocked(a.sm.Ready(), err)
}

// membershipError reports whether a failed offset commit says that the
// group rebalances or no longer knows this member: franz-go rejoins, and
// the tasks this instance loses are closed by onLost.
func membershipError(err error) bool {
	return errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID) ||
		errors.Is(err, kerr.StaleMemberEpoch)
}

// transientCommitError reports whether a failed offset commit is retried
// instead of stopping the instance: the coordinator is unreachable (a
// broker restart) or moving, or the group rebalances (membershipError).
// Nothing is lost: the committed offsets stay where the last commit put
// them, and whoever runs a task next processes the records after them
// again (at-least-once); the stores and output were flushed before the
// offsets were sent.
func transientCommitError(err error) bool {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return true // network errors, timeouts
	}
	return ke.Retriable || membershipError(err)
}

// commitTasks flushes the stores of the tasks of ts that need it, each task
// on a goroutine of its own: a task's flush is mostly waiting (for its
// changelog records' acknowledgements, then for the store's sync), so the
// tasks' waits overlap instead of adding up. The tasks' errors are joined
// in the order of ts.
// flushTasks commits every task's stores (commitTasks) and waits until
// the tasks' output is acknowledged; it returns, per topic and partition,
// the offset each task processed to. On an error the offsets are partial.
func flushTasks(ctx context.Context, ts []*task) (map[string]map[int32]int64, error) {
	offsets := map[string]map[int32]int64{}
	if err := commitTasks(ctx, ts); err != nil {
		return offsets, err
	}
	for _, t := range ts {
		if err := t.inflight.Wait(ctx); err != nil {
			return offsets, fmt.Errorf("runtime: commit task %s: output not acknowledged: %w", t.id, err)
		}
		t.checkpointLags = false
		for tp, off := range t.exec.Offsets() {
			if offsets[tp.Topic] == nil {
				offsets[tp.Topic] = map[int32]int64{}
			}
			offsets[tp.Topic][int32(tp.Partition)] = int64(off)
		}
	}
	return offsets, nil
}

func commitTasks(ctx context.Context, ts []*task) error {
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		if !t.exec.CommitNeeded() && !t.checkpointLags {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.exec.Commit(ctx); err != nil {
				errs[i] = fmt.Errorf("runtime: commit task %s: %w", t.id, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// shutdown commits and leaves the group (the revoke callback commits and
// closes the tasks), then releases everything.
func (a *App) shutdown() error {
	var err error
	if a.cl != nil {
		a.mu.Lock()
		if a.fatal == nil && !a.abandoned {
			// A stalled commit gets one short last attempt: Close does
			// not wait out a broker that is away.
			timeout := a.opts.CommitTimeout
			if a.sm.Stalled() {
				timeout = min(timeout, decide.MaxCommitBackoff)
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err = a.commitLocked(ctx, a.sortedTasksLocked())
			cancel()
		}
		if a.abandoned {
			// NB: Abandon canceled the client it saw; a client a
			// restart set after that must not leave the group either.
			a.clientCancel()
		}
		a.mu.Unlock()
		a.cl.Close() // leaves the group; onRevoked closes the tasks
		a.mu.Lock()
		for _, t := range a.sortedTasksLocked() {
			a.closeTaskLocked(t)
		}
		a.mu.Unlock()
	}
	a.closeClients()
	return err
}

func (a *App) closeClients() {
	if a.clientCancel != nil {
		a.clientCancel()
	}
	if a.cl != nil {
		a.cl.Close()
	}
	a.closeStandbys()
	a.closeGlobals()
	if a.admCl != nil {
		a.admCl.Close()
	}
	if a.eng != nil {
		if err := a.eng.Close(); err != nil {
			a.log.Warn("close state", "err", err)
		}
	}
}

// Close stops Run gracefully (commit, flush, leave the group) and waits
// for it to return. Close before Run makes Run return ErrClosed.
func (a *App) Close() error {
	a.stopOnce.Do(func() { close(a.stop); a.cancelStop() })
	ran := true
	a.runOnce.Do(func() { ran = false })
	if ran {
		<-a.done
	} else {
		a.closeMetricsListener()
	}
	return nil
}

// Abandon stops the instance as a crash would: nothing more is committed,
// the group is not told (its tasks move after the session timeout), and
// stores are closed without flushing. It returns, per input partition, the
// offset after the last record the instance processed: records from the
// last committed offset up to there are the ones another instance will
// process again. For tests of failover.
func (a *App) Abandon() map[streams.TopicPartition]streams.Offset {
	a.killOnce.Do(func() { close(a.killed) })
	a.mu.Lock()
	a.abandoned = true
	processed := map[streams.TopicPartition]streams.Offset{}
	for _, t := range a.tasks {
		for tp, o := range t.exec.Offsets() {
			processed[tp] = o
		}
	}
	cancel := a.clientCancel
	a.mu.Unlock()
	select {
	case <-a.started:
		cancel()
	default:
	}
	a.Close()
	return processed
}

// Tasks returns the ids of the tasks running now, sorted.
func (a *App) Tasks() []streams.TaskID {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := a.sortedTasksLocked()
	out := make([]streams.TaskID, len(ts))
	for i, t := range ts {
		out[i] = t.id
	}
	return out
}

// Gatherer returns the instance's metrics registry.
func (a *App) Gatherer() prometheus.Gatherer { return a.m.reg }

// Started returns a channel closed once the instance has created its
// topics and joined (or begun joining) the group.
func (a *App) Started() <-chan struct{} { return a.started }

// Registry-facing accessors for tests and the public package.

// Metrics returns the handler serving the instance's metrics.
func (a *App) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(a.m.reg, promhttp.HandlerOpts{})
}

// serveHTTP serves metrics and the topology on the listener New bound;
// closing the server closes the listener.
func (a *App) serveHTTP() (*http.Server, chan struct{}) {
	ln := a.metricsLn
	mux := http.NewServeMux()
	mux.Handle("/metrics", a.MetricsHandler())
	mux.HandleFunc("/topology", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(a.topo.Describe()))
	})
	mux.HandleFunc("/application", a.serveDescription)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	a.log.Info("serving metrics", "addr", ln.Addr().String())
	return srv, done
}

// closeMetricsListener closes the metrics listener of an instance that
// will not serve it.
func (a *App) closeMetricsListener() {
	if a.metricsLn != nil {
		_ = a.metricsLn.Close()
	}
	if a.queryLn != nil {
		_ = a.queryLn.Close()
	}
}

// MetricsAddr returns the address the metrics and topology endpoint
// listens on (with its port when MetricsAddr asked for port 0), or "".
func (a *App) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}
