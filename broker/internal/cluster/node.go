package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/protocol"
	"github.com/weir-dev/weir/broker/internal/quorum"
	"github.com/weir-dev/weir/broker/internal/replica"
	"github.com/weir-dev/weir/broker/internal/topics"
	"github.com/weir-dev/weir/internal/atomicfile"
)

// forwardTimeout bounds a forwarded request when the caller's context has
// no deadline, and the wait for the local image to catch up with a reply.
const forwardTimeout = 10 * time.Second

// Node is one node of a Weir cluster: its raft voter (quorum), the metadata
// image every node applies, the controller driver (active on the raft
// leader), the broker side (registration, heartbeats, forwarding) and the
// reconciler that keeps the local topic registry in step with the image.
// It implements protocol.Cluster.
type Node struct {
	opts      Options
	log       *slog.Logger
	clusterID string
	sm        *imageSM
	q         *quorum.Node
	mux       *muxListener
	rpcSrv    *rpcServer
	rpc       *rpcClient
	drv       *driver
	pids      pidBlock
	// obs is a broker-only node's view of the quorum (observer.go); nil
	// on a voter, which has q, mux, rpcSrv and drv instead.
	obs *observer
	// replayTo is the commit index a voter's raft storage held at Open:
	// its image is partial until the quorum has applied that far, and
	// the reconciler waits for it (waitReplayed).
	replayTo uint64
	// started is set by Start.
	started atomic.Bool

	// viewCache is the last view built (see View).
	viewCache atomic.Pointer[viewCache]

	self        atomic.Pointer[protocol.Node] // advertised address, set by Start
	incarnation [16]byte
	// epoch is the broker epoch of the current registration, -1 if none.
	epoch atomic.Int64
	// answered is when the controller last answered a heartbeat or the
	// registration without an error (Unix nanoseconds; Open's time before
	// the first): SessionLapsed.
	answered atomic.Int64
	// hbMu is held across each heartbeat's round trip, so that the
	// controlled shutdown's heartbeat is never overtaken by a plain one
	// sent before it; shuttingDown (set under hbMu) makes every later
	// heartbeat ask for the shutdown too. Otherwise a plain heartbeat
	// answered after the shutdown unfences the broker, and the controller
	// elects it again (the last ISR member of a partition) while it stops.
	hbMu         sync.Mutex
	shuttingDown bool

	metrics *prometheus.Registry

	reconcilec chan struct{} // cap 1: a reconcile is wanted
	// reconciled is closed after the next reconcile pass and then
	// replaced (AwaitLocalTopic); guarded by recMu.
	recMu      sync.Mutex
	reconciled chan struct{}
	replayed   atomic.Bool // the reconcile loop runs
	current    atomic.Bool // Replayed has reported true
	recStuck   bool        // a wait ran out of time since the last pass; guarded by recMu
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// viewCache is a view and what it was built from.
type viewCache struct {
	applied uint64
	leader  int32
	view    *protocol.ClusterView
}

// clusterFile is DataDir/cluster.json.
type clusterFile struct {
	ClusterID string `json:"cluster_id"`
	NodeID    int32  `json:"node_id"`
}

// Open checks the data directory's cluster identity (writing it at the
// first start), opens the raft storage and restores the image. Nothing runs
// until Start.
func Open(opts Options) (*Node, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger.With("node", opts.NodeID)
	cid := quorum.DeriveClusterID(opts.Voters)
	if err := bindDataDir(opts, cid); err != nil {
		return nil, err
	}
	n := &Node{opts: opts, log: log, clusterID: cid, sm: newImageSM(log), reconcilec: make(chan struct{}, 1),
		reconciled: make(chan struct{})}
	n.epoch.Store(-1)
	n.answered.Store(time.Now().UnixNano())
	_, _ = rand.Read(n.incarnation[:])
	n.sm.onChange = n.wantReconcile
	if !opts.Controller {
		// A broker-only node: no controller listener, no raft; it
		// follows the metadata log by fetching it from the voters.
		n.obs = &observer{}
		n.metrics = prometheus.NewRegistry()
		var reg prometheus.Registerer = n.metrics
		if opts.Registerer != nil {
			reg = opts.Registerer
		}
		if err := n.registerMetrics(reg); err != nil {
			return nil, fmt.Errorf("cluster: metrics: %w", err)
		}
		n.rpc = newRPCClient(opts.Dial)
		n.ctx, n.cancel = context.WithCancel(context.Background())
		return n, nil
	}
	ln := opts.ControllerListener
	if ln == nil {
		addr := ""
		for _, v := range opts.Voters {
			if v.ID == uint64(opts.NodeID) {
				addr = v.Addr
			}
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("cluster: controller listener of node %d on %s: %w", opts.NodeID, addr, err)
		}
	}
	if opts.ControllerTLS != nil {
		ln = tls.NewListener(ln, opts.ControllerTLS)
	}
	n.metrics = prometheus.NewRegistry()
	var reg prometheus.Registerer = n.metrics
	if opts.Registerer != nil {
		reg = opts.Registerer
	}
	if err := n.registerMetrics(reg); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("cluster: metrics: %w", err)
	}
	n.mux = newMuxListener(ln, log)
	q, err := quorum.New(quorum.Options{
		ID: uint64(opts.NodeID), Voters: opts.Voters, ClusterID: cid,
		Dir: filepath.Join(opts.DataDir, "metadata-raft"), TickInterval: opts.TickInterval, Rejoin: opts.RejoinQuorum,
		Listener: n.mux.raft, Dialer: dialerFunc(opts.Dial), Logger: opts.Logger, Registerer: reg,
		FS: opts.FS,
	}, n.sm)
	if err != nil {
		n.mux.close()
		return nil, err
	}
	n.q = q
	n.replayTo = q.Status().Commit
	n.rpc = newRPCClient(opts.Dial)
	var self metadata.NodeID
	if opts.Broker {
		self = metadata.NodeID(opts.NodeID)
	}
	n.drv = newDriver(q, n.sm, metadata.Options{
		Self: self, SelfIncarnation: n.incarnation,
		ClusterID: cid, SessionTimeout: opts.SessionTimeout, DefaultPartitions: opts.DefaultPartitions,
		UncleanLeaderElection:   uncleanDefault(opts.Topics.Defaults()),
		LeaderRebalanceInterval: opts.LeaderRebalanceInterval,
		ValidateConfig: func(res metadata.ConfigResource, key, value string) error {
			if res.Type == metadata.ConfigBroker && key == replica.ThrottleRateConfig {
				return replica.CheckThrottleRate(value)
			}
			if res.Type != metadata.ConfigTopic {
				return nil
			}
			return topics.CheckConfigs(map[string]string{key: value})
		},
		ListConfig: func(res metadata.ConfigResource, key string) (string, bool) {
			// NB: the single-node IncrementalAlterConfigs has the same rule:
			// cleanup.policy is the one list among the topic configs, and
			// APPEND and SUBTRACT start from the broker's default.
			if res.Type != metadata.ConfigTopic || key != "cleanup.policy" {
				return "", false
			}
			def, _ := opts.Topics.Defaults().Value(key)
			return def, true
		},
	}, opts.Now, log)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// uncleanDefault is the broker default of unclean.leader.election.enable
// (--topic-config), which the controller applies to topics that do not set
// it.
func uncleanDefault(d topics.Defaults) bool {
	v, _ := d.Value(metadata.UncleanConfig)
	return v == "true"
}

// dialerFunc adapts a dial function to quorum.Dialer.
type dialerFunc func(ctx context.Context, addr string) (net.Conn, error)

func (f dialerFunc) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	return f(ctx, addr)
}

// IsNodeDir tells whether dir is a cluster node's data directory (it holds
// the cluster.json bindDataDir writes).
func IsNodeDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cluster.json"))
	return err == nil
}

// bindDataDir writes DataDir/cluster.json at the first start and refuses a
// directory of another cluster or node, or one holding a single-node
// broker's topics.
func bindDataDir(opts Options, cid string) error {
	path := filepath.Join(opts.DataDir, "cluster.json")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		var own []string
		for _, t := range opts.Topics.List() {
			if !t.Internal() {
				own = append(own, t.Name())
			}
		}
		if len(own) > 0 {
			return fmt.Errorf("cluster: data directory %s holds a single-node broker's topics (%s); a cluster node does not adopt them: "+
				"start this directory without --controller-voters, or give the cluster node a fresh --data-dir", opts.DataDir, strings.Join(own, ", "))
		}
		data, _ := json.Marshal(clusterFile{ClusterID: cid, NodeID: opts.NodeID})
		if err := atomicfile.Write(path, data); err != nil {
			return fmt.Errorf("cluster: write %s: %w", path, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("cluster: read %s: %w", path, err)
	}
	var cf clusterFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return fmt.Errorf("cluster: %s is not valid: %w", path, err)
	}
	if cf.ClusterID != cid {
		return fmt.Errorf("cluster: data directory %s belongs to cluster %s, but --controller-voters %s make cluster %s: "+
			"start it with the voters it was created with, or use a fresh --data-dir to join this cluster",
			opts.DataDir, cf.ClusterID, quorum.FormatVoters(opts.Voters), cid)
	}
	if cf.NodeID != opts.NodeID {
		return fmt.Errorf("cluster: data directory %s belongs to node %d, not %d: start it with --node-id %d, or use a fresh --data-dir",
			opts.DataDir, cf.NodeID, opts.NodeID, cf.NodeID)
	}
	return nil
}

// ClusterID returns the cluster's id.
func (n *Node) ClusterID() string { return n.clusterID }

// Status returns the node's raft status.
// On a broker-only node it is what the voters it fetches from told it,
// with Role RoleObserver.
func (n *Node) Status() quorum.Status {
	if n.q == nil {
		return n.observerStatus()
	}
	return n.q.Status()
}

// QuorumFailed is closed when this voter's raft node fails for good
// (Status().Err says why); nil on a broker-only node.
func (n *Node) QuorumFailed() <-chan struct{} {
	if n.q == nil {
		return nil
	}
	return n.q.Failed()
}

// QuorumState returns this voter's own view of the quorum, for
// DescribeQuorum (protocol.QuorumDescriber). Commit and Applied come from
// one raft status, so Applied <= Commit.
func (n *Node) QuorumState() protocol.QuorumState {
	st := n.Status()
	qs := protocol.QuorumState{
		NodeID: int32(n.opts.NodeID), LeaderID: int32(st.Leader), Term: st.Term,
		Commit: st.Commit, Applied: st.Applied,
	}
	if st.Leader == 0 {
		qs.LeaderID = -1
	}
	for _, v := range n.opts.Voters {
		qs.Voters = append(qs.Voters, int32(v.ID))
	}
	return qs
}

// Image returns the committed metadata image (read only).
func (n *Node) Image() *metadata.Image { return n.sm.Image() }

// Start starts the quorum, the controller driver and, on a broker, the
// registration and heartbeats under the advertised client address self.
func (n *Node) Start(ctx context.Context, self protocol.Node) error {
	n.self.Store(&self)
	if n.q != nil {
		if err := n.q.Start(ctx); err != nil {
			return err
		}
		n.drv.start()
		n.rpcSrv = newRPCServer(n.mux.rpc, n.handleRPC, n.drv.disconnected, n.log)
	} else {
		n.wg.Add(1)
		go n.fetchLoop()
	}
	n.started.Store(true)
	n.wg.Add(1)
	go n.reconcileLoop()
	if n.opts.Broker {
		n.wg.Add(1)
		go n.memberLoop()
	}
	n.wantReconcile()
	return nil
}

// Close asks the controller to move this broker's leaderships away
// (controlled shutdown, bounded by ShutdownTimeout), then stops
// everything.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if n.opts.Broker && n.epoch.Load() >= 0 && n.started.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), n.opts.ShutdownTimeout)
			n.hbMu.Lock()
			n.shuttingDown = true
			req := n.heartbeatRequestLocked()
			if _, err := n.callController(ctx, req); err != nil {
				n.log.Info("cluster: controlled shutdown not acknowledged", "err", err)
			}
			n.hbMu.Unlock()
			cancel()
		}
		n.cancel()
		n.wg.Wait()
		if n.rpcSrv != nil {
			n.rpcSrv.close()
			n.drv.stop()
		}
		n.rpc.close()
		if n.q != nil {
			n.closeErr = n.q.Close()
			n.mux.close()
		}
	})
	return n.closeErr
}

// Changed returns a channel closed at the next change of the metadata
// image (protocol.ClusterChanges: group coordination follows offsets
// partition leadership with it).
func (n *Node) Changed() <-chan struct{} { return n.sm.Changed() }

// View returns the handlers' view of the committed image, rebuilt when the
// image or the known controller changed.
func (n *Node) View() *protocol.ClusterView {
	img := n.sm.Image()
	ctl := int32(n.Status().Leader)
	if ctl == 0 {
		ctl = -1
	}
	if c := n.viewCache.Load(); c != nil && c.applied == img.Applied() && c.leader == ctl {
		return c.view
	}
	v := buildView(img, n.clusterID, ctl)
	n.viewCache.Store(&viewCache{applied: img.Applied(), leader: ctl, view: v})
	return v
}

// controllerAddr returns the controller listener of the raft leader.
func (n *Node) controllerAddr() (string, bool) {
	lead := n.Status().Leader
	for _, v := range n.opts.Voters {
		if v.ID == lead && lead != 0 {
			return v.Addr, true
		}
	}
	return "", false
}

// callController sends req to the active controller, retrying (with a
// short backoff) while none is known or the one tried no longer leads,
// until ctx ends. It returns the reply and waits for the local image to
// reach the offset the reply is applied at.
func (n *Node) callController(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, forwardTimeout)
		defer cancel()
	}
	backoff := 20 * time.Millisecond
	var last error
	for {
		if addr, ok := n.controllerAddr(); ok {
			resp, applied, err := n.rpc.call(ctx, addr, req)
			if err == nil {
				return resp, n.waitApplied(ctx, applied)
			}
			last = err
		} else {
			last = errors.New("no raft leader known")
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: %s: %w (last: %v)", protocol.ErrNoController, n.quorumTrouble(), ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// quorumTrouble says, for an operator reading a refused admin request, why
// no controller answered: the metadata quorum has no leader this node
// knows of (a majority of the voters is down or cut off, or an election
// is under way), or its leader did not commit in time. Metadata this node
// serves stays as last applied (frozen, not wrong) meanwhile.
func (n *Node) quorumTrouble() string {
	st := n.Status()
	voters := quorum.FormatVoters(n.opts.Voters)
	if st.Leader == 0 {
		return fmt.Sprintf("metadata quorum lost: no raft leader known to node %d at term %d (voters %s): a majority of the voters is down or unreachable, or an election is under way; metadata stays as of offset %d",
			n.opts.NodeID, st.Term, voters, st.Applied)
	}
	return fmt.Sprintf("metadata quorum not committing: raft leader %d at term %d did not answer in time (voters %s): a majority of the voters may be down or unreachable; metadata stays as of offset %d",
		st.Leader, st.Term, voters, st.Applied)
}

// handleRPC answers the controller RPC on a voter: metadata fetches of
// broker-only nodes here, everything else by the controller driver.
func (n *Node) handleRPC(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
	if f, ok := req.(*kmsg.FetchRequest); ok {
		return n.serveMetadataFetch(ctx, f)
	}
	return n.drv.handle(ctx, req)
}

// waitApplied waits until the local image has applied offset idx.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	for {
		ch := n.sm.Changed()
		if n.sm.Image().Applied() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cluster: local metadata image did not reach offset %d: %w", idx, ctx.Err())
		}
	}
}

// Forward implements protocol.Cluster: it sends an admin request to the
// active controller. The request's version is raised for the trip; the
// reply is returned for the caller to encode at its own version.
func (n *Node) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	v := req.GetVersion()
	defer req.SetVersion(v)
	if dt, ok := req.(*kmsg.DeleteTopicsRequest); ok && v < 6 {
		// Names move from TopicNames (v0-v5) to Topics (v6+): the trip is
		// at the highest version, so carry them over (on a copy).
		up := *dt
		up.Topics = nil
		for _, name := range dt.TopicNames {
			t := kmsg.NewDeleteTopicsRequestTopic()
			t.Topic = kmsg.StringPtr(name)
			up.Topics = append(up.Topics, t)
		}
		up.TopicNames = nil
		req = &up
	}
	resp, err := n.callController(ctx, req)
	if resp == nil {
		return nil, err
	}
	return resp, nil // a late local image only delays what this broker shows
}

// SyncMetadata implements protocol.MetadataSyncer: it asks the active
// controller a question that changes nothing (the partition reassignments
// under way), whose answer carries the controller's applied metadata
// offset, and waits until this node's image has applied that offset.
func (n *Node) SyncMetadata(ctx context.Context) error {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	_, err := n.callController(ctx, req)
	return err
}

// heartbeatRequestLocked builds a heartbeat (asking for the controlled
// shutdown once Close began it). Caller holds n.hbMu.
func (n *Node) heartbeatRequestLocked() *kmsg.BrokerHeartbeatRequest {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID = n.opts.NodeID
	req.BrokerEpoch = n.epoch.Load()
	req.CurrentMetadataOffset = int64(n.sm.Image().Applied())
	req.WantShutdown = n.shuttingDown
	return req
}

// memberLoop registers the broker and heartbeats every HeartbeatInterval,
// registering again when the controller no longer knows this epoch.
func (n *Node) memberLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(n.ctx, max(2*n.opts.HeartbeatInterval, time.Second))
		if n.epoch.Load() < 0 {
			n.register(ctx)
		} else {
			n.heartbeat(ctx)
		}
		if n.epoch.Load() >= 0 {
			n.refillProducerIDs(ctx)
		}
		cancel()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) register(ctx context.Context) {
	self := n.self.Load()
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = n.opts.NodeID
	req.ClusterID = n.clusterID
	req.IncarnationID = n.incarnation
	// The first listener is the one other brokers reach this one on
	// (replication): the broker lists its inter-broker listener first.
	ls := self.Listeners
	if len(ls) == 0 {
		ls = []protocol.NodeListener{{Name: "PLAINTEXT", Protocol: protocol.Plaintext, Host: self.Host, Port: self.Port}}
	}
	for _, nl := range ls {
		l := kmsg.NewBrokerRegistrationRequestListener()
		l.Name, l.Host, l.Port, l.SecurityProtocol = nl.Name, nl.Host, uint16(nl.Port), nl.Protocol.Code()
		req.Listeners = append(req.Listeners, l)
	}
	out, err := n.callController(ctx, req)
	if err != nil {
		n.log.Debug("cluster: broker registration not answered", "err", err)
		return
	}
	resp := out.(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 {
		n.log.Warn("cluster: broker registration refused", "err", kerr.ErrorForCode(resp.ErrorCode))
		return
	}
	n.epoch.Store(resp.BrokerEpoch)
	n.answered.Store(time.Now().UnixNano())
	n.log.Info("cluster: broker registered", "epoch", resp.BrokerEpoch)
}

func (n *Node) heartbeat(ctx context.Context) {
	n.hbMu.Lock()
	defer n.hbMu.Unlock()
	out, err := n.callController(ctx, n.heartbeatRequestLocked())
	if err != nil {
		n.log.Debug("cluster: heartbeat not answered", "err", err)
		return
	}
	resp := out.(*kmsg.BrokerHeartbeatResponse)
	n.log.Debug("cluster: heartbeat answered", "fenced", resp.IsFenced, "caught_up", resp.IsCaughtUp, "err", kerr.ErrorForCode(resp.ErrorCode))
	switch resp.ErrorCode {
	case 0:
		n.answered.Store(time.Now().UnixNano())
	case kerr.StaleBrokerEpoch.Code, kerr.BrokerIDNotRegistered.Code:
		n.log.Info("cluster: controller does not know this registration; registering again", "err", kerr.ErrorForCode(resp.ErrorCode))
		n.epoch.Store(-1)
	default:
		n.log.Warn("cluster: heartbeat refused", "err", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func (n *Node) wantReconcile() {
	select {
	case n.reconcilec <- struct{}{}:
	default:
	}
}

func (n *Node) reconcileLoop() {
	defer n.wg.Done()
	if !n.waitReplayed() {
		return
	}
	n.replayed.Store(true)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.reconcilec:
		}
		n.reconcile(n.sm.Image())
		n.recMu.Lock()
		close(n.reconciled)
		n.reconciled = make(chan struct{})
		n.recStuck = false
		n.recMu.Unlock()
	}
}

// localTopicWait bounds AwaitLocalTopic; the wait also ends after two
// reconcile passes (a waiter starts one at once). A wait that runs out of
// time marks the reconciler stuck until its next pass: later waits (the
// next partitions of the same request) return at once, so they never add
// up.
const localTopicWait = time.Second

// AwaitLocalTopic waits (at most a second) until the local registry holds
// topic name with id, which the reconciler creates after the image that
// names it: a request for a partition this broker's view says it leads
// can arrive in between (the client read that view), and refused it would
// wait for a metadata refresh only to be sent back. It reports whether
// the topic is there.
func (n *Node) AwaitLocalTopic(name string, id [16]byte) bool {
	if !n.replayed.Load() {
		return false // no reconcile before the metadata log is replayed
	}
	timer := time.NewTimer(localTopicWait)
	defer timer.Stop()
	for passes := 0; ; passes++ {
		n.recMu.Lock()
		done, stuck := n.reconciled, n.recStuck
		n.recMu.Unlock()
		if stuck {
			return false
		}
		n.wantReconcile()
		if t, ok := n.opts.Topics.Get(name); ok && t.ID() == id {
			return true
		}
		if passes == 2 {
			return false
		}
		select {
		case <-done:
		case <-timer.C:
			n.recMu.Lock()
			n.recStuck = true
			n.recMu.Unlock()
			return false
		case <-n.ctx.Done():
			return false
		}
	}
}

// waitReplayed waits until a voter has applied every entry its raft
// storage held committed at Open, so that the reconciler never judges a
// topic absent from a partial image (it would delete the topic's local
// logs, records and all). NB: the quorum signals applied entries only
// through Status, and the empty entries of new leaders reach no state
// machine, so this polls; it runs once per start, for as long as the
// replay takes. It reports false if the node stopped first.
func (n *Node) waitReplayed() bool {
	if n.q == nil {
		return true // a broker-only node: observer.caughtUp guards reconcile
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		st := n.q.Status()
		if st.Applied >= n.replayTo {
			return true
		}
		if st.Err != nil {
			n.log.Error("cluster: quorum stopped before replaying its log; local topics left as they are", "err", st.Err)
			return false
		}
		select {
		case <-n.ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// reconcile makes the local registry hold exactly the image's topics: each
// with the image's id and partition count (every partition's log is
// created on every broker, replicated by broker/internal/replica), none
// that the image does not have. Internal topics of the image
// (__consumer_offsets) are created like any other; local internal topics
// the image does not have are left alone.
func (n *Node) reconcile(img *metadata.Image) {
	if n.obs != nil && !n.obs.caughtUp.Load() {
		return // a broker-only node's image is not trustworthy yet (observer.go)
	}
	reg := n.opts.Topics
	want := map[string]bool{}
	for _, t := range img.Topics() {
		name := string(t.Name)
		want[name] = true
		local, ok := reg.Get(name)
		if ok && local.ID() != t.ID {
			if local.Internal() {
				// NB: internal topics of the image (__consumer_offsets)
				// are replicated: a local copy under another id is
				// not the cluster's and would never be.
				n.log.Warn("cluster: replacing a local internal topic whose id is not the metadata's", "topic", name)
			}
			if err := reg.Delete(name); err != nil {
				n.log.Warn("cluster: delete stale local topic", "topic", name, "err", err)
				continue
			}
			ok = false
		}
		if !ok {
			cfg := img.Config(metadata.ConfigResource{Type: metadata.ConfigTopic, Name: name})
			if _, err := reg.Create(n.ctx, name, topics.Spec{Partitions: t.Partitions, ID: t.ID, Configs: cfg}); err != nil {
				n.log.Warn("cluster: create local topic", "topic", name, "err", err)
			}
			continue
		}
		if local.NumPartitions() < t.Partitions {
			if err := reg.AddPartitions(name, t.Partitions); err != nil {
				n.log.Warn("cluster: add local partitions", "topic", name, "err", err)
			}
		}
		// The image's configs are the topic's: a change made through any
		// broker reaches every broker's logs (retention, compaction, ...).
		if cfg := img.Config(metadata.ConfigResource{Type: metadata.ConfigTopic, Name: name}); !maps.Equal(cfg, local.Configs()) {
			if err := reg.SetConfigs(name, cfg); err != nil {
				n.log.Warn("cluster: apply topic configs from the metadata image", "topic", name, "err", err)
			}
		}
	}
	for _, t := range reg.List() {
		if !want[t.Name()] && !t.Internal() {
			if err := reg.Delete(t.Name()); err != nil {
				n.log.Warn("cluster: delete local topic", "topic", t.Name(), "err", err)
			}
		}
	}
}

var _ protocol.QuorumDescriber = (*Node)(nil)

var _ protocol.MetadataSyncer = (*Node)(nil)
