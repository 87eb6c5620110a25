package quorum

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// An entry's data, as the node proposes it:
//
//	kind uint8  (entryKindProposal)
//	id   uint64 big-endian proposal id, unique per node lifetime
//	data []byte what the caller proposed, given to StateMachine.Apply
//
// The id lets the leader tell its own proposal from another at the index it
// was appended at. Entries with no data are the empty entries a new leader
// appends; they are not given to the state machine.
const (
	entryKindProposal = 1
	entryHeaderSize   = 1 + 8
)

func encodeEntry(id uint64, data []byte) []byte {
	b := make([]byte, entryHeaderSize, entryHeaderSize+len(data))
	b[0] = entryKindProposal
	binary.BigEndian.PutUint64(b[1:], id)
	return append(b, data...)
}

func decodeEntry(b []byte) (id uint64, data []byte, err error) {
	if len(b) < entryHeaderSize || b[0] != entryKindProposal {
		return 0, nil, fmt.Errorf("quorum: entry data of %d bytes has no proposal header", len(b))
	}
	return binary.BigEndian.Uint64(b[1:]), b[entryHeaderSize:], nil
}

// Role is a voter's raft role.
type Role string

// Roles.
const (
	RoleFollower     Role = "follower"
	RoleCandidate    Role = "candidate"
	RolePreCandidate Role = "pre-candidate"
	RoleLeader       Role = "leader"
)

func roleOf(s raft.StateType) Role {
	switch s {
	case raft.StateLeader:
		return RoleLeader
	case raft.StateCandidate:
		return RoleCandidate
	case raft.StatePreCandidate:
		return RolePreCandidate
	}
	return RoleFollower
}

// Status is a snapshot of a node's raft state.
type Status struct {
	ID        NodeID
	ClusterID string
	Voters    []Voter
	Role      Role
	// Leader is the leader this node knows of, 0 if none.
	Leader NodeID
	Term   uint64
	// Commit is the highest index known committed; Applied the highest
	// applied to the state machine (Applied <= Commit).
	Commit  uint64
	Applied uint64
	// SnapshotIndex is the index of the last stored snapshot.
	SnapshotIndex uint64
	// Rejoining: the node came back with lost raft storage and is not a
	// voter again yet (Options.Rejoin).
	Rejoining bool
	// VoterSet is the voter set this node has applied (a voter being
	// taken back is missing from it for a while); VoterSetIndex is the
	// index of the last voter set change applied since the node started,
	// 0 if none.
	VoterSet      []NodeID
	VoterSetIndex uint64
	// Err is why the node stopped, when it failed (nil otherwise).
	Err error
}

// LeaderChange tells that the leader known to a node changed.
type LeaderChange struct {
	// Leader is the new leader, 0 if none is known.
	Leader NodeID
	Term   uint64
	// IsLeader: this node is the leader (its controller should run).
	IsLeader bool
}

type result struct {
	index uint64
	err   error
}

// proposal is one Propose call waiting for its entry to be applied.
type proposal struct {
	ctx  context.Context
	id   uint64
	data []byte      // encoded entry
	done chan result // cap 1: resolve never blocks
	// index is where the entry was appended, 0 before.
	index uint64
}

func (p *proposal) resolve(index uint64, err error) {
	select {
	case p.done <- result{index: index, err: err}:
	default:
	}
}

// Node is one controller voter: a raft.RawNode, its durable storage, its
// transport and the goroutine that drives them. Build it with New, then
// Start it; Close stops it.
//
// Every raft call is made on the loop goroutine (run); other goroutines talk
// to it over channels, and read its Status from an atomic pointer.
type Node struct {
	opts Options
	sm   StateMachine
	st   *Storage
	m    *metrics
	log  *slog.Logger

	propc     chan *proposal
	recvc     chan *pb.Message
	transferc chan NodeID
	stopc     chan struct{}
	donec     chan struct{} // closed when run returns
	// leaderc holds the latest LeaderChange not yet received (cap 1).
	leaderc chan LeaderChange
	nextID  atomic.Uint64
	status  atomic.Pointer[Status]
	started atomic.Bool

	startMu sync.Mutex // serializes Start and Close
	closed  bool       // guarded by startMu
	tr      *transport // set by Start; guarded by startMu

	// Loop state, touched only by run (and by New before it starts).
	rn *raft.RawNode
	// confState is the voter set applied (setConfState); voterSet a copy
	// of its voters, made when it changes and shared by every Status
	// published since (read-only: Status clones it for its caller).
	confState *pb.ConfState
	voterSet  []NodeID
	applied   uint64
	snapIndex uint64
	// lastData is the last index given to the state machine (by Apply or
	// Restore); applied also counts the empty entries it is not given.
	lastData uint64
	// pending are proposals given to raft and not yet seen appended, by id;
	// appended are those appended to this leader's log, by index. Both are
	// emptied when this node stops leading (leaderTerm is the term they
	// were proposed in).
	pending    map[uint64]*proposal
	appended   map[uint64]*proposal
	leaderTerm uint64
	// done are applied proposals, answered once Status shows them.
	done []*proposal
	// retry are proposals raft dropped, proposed again at the next tick.
	retry    []*proposal
	lastLead NodeID
	failErr  error
	// failedc is closed when the loop fails (Failed).
	failedc chan struct{}
	// rejoining: this node is back with lost raft storage and waits to be
	// removed and added back (Options.Rejoin), as incarnation rejoinID;
	// ticks counts ticks, for the pace of requests (and of the leader's
	// look for voters to add back).
	rejoining bool
	rejoinID  uint64
	ticks     int
	// addedTerm: while rejoining, the term of this node's addition once
	// another node said it applied it (rejoin.go); 0 before.
	addedTerm uint64
	// voterSetIndex is the index of the last voter set change applied
	// since the start (Status.VoterSetIndex).
	voterSetIndex uint64
	// added is, per voter, the incarnation and index of the last applied
	// entry that added it back (rejoin.go); asked, per voter, the
	// incarnation of its last rejoin request to this node.
	added map[NodeID]addition
	asked map[NodeID]uint64
	// confChanged: a voter set change was applied since the last snapshot.
	confChanged bool
}

// New opens the node's storage (refusing a directory of another cluster,
// node or voter set, or a corrupt one) and restores sm from its last
// snapshot. The node does nothing until Start.
func New(opts Options, sm StateMachine) (*Node, error) {
	opts.Voters = sortedVoters(opts.Voters)
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("node", opts.ID)
	st, err := OpenStorage(StorageConfig{FS: opts.FS, Dir: opts.Dir, ClusterID: opts.ClusterID,
		NodeID: opts.ID, Voters: opts.Voters, Rejoin: opts.Rejoin, Logger: log})
	if err != nil {
		return nil, err
	}
	snap, _ := st.Snapshot()
	n := &Node{
		opts: opts, sm: sm, st: st, m: m, log: log,
		propc: make(chan *proposal), recvc: make(chan *pb.Message, 256), transferc: make(chan NodeID),
		stopc: make(chan struct{}), donec: make(chan struct{}), failedc: make(chan struct{}),
		leaderc: make(chan LeaderChange, 1),
		pending: map[uint64]*proposal{}, appended: map[uint64]*proposal{},
		applied: snap.GetMetadata().GetIndex(), snapIndex: snap.GetMetadata().GetIndex(),
		lastData:  snap.GetMetadata().GetIndex(),
		rejoining: st.RejoinID() != 0, rejoinID: st.RejoinID(),
		added: map[NodeID]addition{}, asked: map[NodeID]uint64{},
	}
	n.setConfState(snap.GetMetadata().GetConfState())
	var seed [8]byte
	_, _ = cryptorand.Read(seed[:])
	n.nextID.Store(binary.BigEndian.Uint64(seed[:]) >> 1)
	if n.applied > 0 {
		if err := sm.Restore(snap.GetData(), n.applied); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("quorum: restore the state machine from the snapshot at %d in %s: %w", n.applied, opts.Dir, err)
		}
	}
	n.rn, err = raft.NewRawNode(&raft.Config{
		ID:                        opts.ID,
		ElectionTick:              opts.ElectionTicks,
		HeartbeatTick:             opts.HeartbeatTicks,
		Storage:                   st,
		Applied:                   n.applied,
		MaxSizePerMsg:             opts.MaxSizePerMsg,
		MaxInflightMsgs:           opts.MaxInflightMsgs,
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   true,
		// NB: proposals are taken on the leader only (Propose answers
		// NotLeaderError elsewhere): a proposal forwarded to a leader
		// that drops it would leave its caller waiting blind.
		DisableProposalForwarding: true,
		Logger:                    raftLogger{log},
	})
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("quorum: start raft: %w", err)
	}
	n.publishStatus()
	return n, nil
}

// Start opens the controller listener (unless Options.Listener is set),
// connects to the other voters and starts the raft loop. ctx bounds the
// start only; the node runs until Close.
func (n *Node) Start(ctx context.Context) error {
	n.startMu.Lock()
	defer n.startMu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if n.tr != nil {
		return errors.New("quorum: node already started")
	}
	ln := n.opts.Listener
	if ln == nil {
		addr := ""
		for _, v := range n.opts.Voters {
			if v.ID == n.opts.ID {
				addr = v.Addr
			}
		}
		var err error
		if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", addr); err != nil {
			return fmt.Errorf("quorum: controller listener of node %d: %w", n.opts.ID, err)
		}
	}
	n.tr = newTransport(&n.opts, n.opts.ClusterID, ln, n.recvc, n.m)
	n.tr.start()
	// NB: log before run starts: applied belongs to run from then on.
	n.log.Info("quorum: node started", "addr", ln.Addr().String(), "cluster", n.opts.ClusterID,
		"voters", FormatVoters(n.opts.Voters), "applied", n.applied, "rejoining", n.rejoining)
	n.started.Store(true)
	go n.run()
	return nil
}

// Close stops the node and closes its storage. Proposals still waiting get
// ErrClosed (their outcome is unknown). Close is idempotent.
func (n *Node) Close() error {
	n.startMu.Lock()
	defer n.startMu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.tr != nil {
		close(n.stopc)
		<-n.donec
		n.tr.close()
	} else if n.opts.Listener != nil {
		_ = n.opts.Listener.Close()
	}
	return n.st.Close()
}

// Status returns the node's raft state as of its last loop iteration.
func (n *Node) Status() Status {
	s := *n.status.Load()
	s.Voters = slices.Clone(s.Voters)
	s.VoterSet = slices.Clone(s.VoterSet)
	return s
}

// IsLeader reports whether this node is the raft leader.
func (n *Node) IsLeader() bool { return n.status.Load().Role == RoleLeader }

// TransferLeadership asks the leader to hand leadership to voter to (for a
// planned restart of the leader's node). It returns once the loop took the
// request; the transfer itself completes, or is abandoned after an election
// timeout, later (watch LeaderChanges). Proposals made during a transfer are
// retried until it ends. On a follower it does nothing.
func (n *Node) TransferLeadership(ctx context.Context, to NodeID) error {
	if !n.started.Load() {
		return fmt.Errorf("quorum: TransferLeadership before Start: %w", ErrClosed)
	}
	select {
	case n.transferc <- to:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return n.closedErr()
	}
}

// LeaderChanges returns a channel that receives a LeaderChange whenever the
// leader this node knows of changes. It holds only the latest change: a
// slow reader misses intermediate ones, never the last.
func (n *Node) LeaderChanges() <-chan LeaderChange { return n.leaderc }

// Propose replicates data and returns its index once it is committed and
// applied to this node's state machine (Status().Applied is then at least
// the index). Only the leader takes proposals:
// elsewhere the error is a NotLeaderError naming the leader. Proposals raft
// drops (a leadership transfer, too much uncommitted) are retried each tick
// until ctx ends. If this node stops leading before the entry is applied,
// the error is ErrLeadershipLost: the entry may still be committed. If ctx
// ends first the error wraps ctx.Err() and the outcome is unknown.
func (n *Node) Propose(ctx context.Context, data []byte) (uint64, error) {
	if !n.started.Load() {
		return 0, fmt.Errorf("quorum: Propose before Start: %w", ErrClosed)
	}
	p := &proposal{ctx: ctx, id: n.nextID.Add(1), done: make(chan result, 1)}
	p.data = encodeEntry(p.id, data)
	select {
	case n.propc <- p:
	case <-ctx.Done():
		n.m.proposals.WithLabelValues("dropped").Inc()
		return 0, fmt.Errorf("%w: not submitted: %w", ErrProposalDropped, ctx.Err())
	case <-n.donec:
		return 0, n.closedErr()
	}
	var r result
	select {
	case r = <-p.done:
	case <-ctx.Done():
		return 0, fmt.Errorf("quorum: proposal outcome unknown: %w", ctx.Err())
	case <-n.donec:
		select {
		case r = <-p.done:
		default:
			return 0, n.closedErr()
		}
	}
	n.m.proposals.WithLabelValues(resultLabel(r.err)).Inc()
	return r.index, r.err
}

func resultLabel(err error) string {
	switch {
	case err == nil:
		return "applied"
	case errors.Is(err, ErrNotLeader):
		return "not_leader"
	case errors.Is(err, ErrProposalDropped):
		return "dropped"
	case errors.Is(err, ErrLeadershipLost):
		return "leadership_lost"
	case errors.Is(err, ErrClosed):
		return "closed"
	}
	return "error"
}

func (n *Node) closedErr() error {
	if err := n.status.Load().Err; err != nil {
		return fmt.Errorf("%w: node failed: %w", ErrClosed, err)
	}
	return ErrClosed
}

// run is the raft loop: one event (tick, message, proposal or report) at a
// time, then every Ready it produced.
func (n *Node) run() {
	defer close(n.donec)
	ticker := n.opts.NewTicker(n.opts.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-n.stopc:
			n.failProposals(ErrClosed)
			return
		case <-ticker.C():
			n.ticks++
			if n.rejoining {
				n.rejoinTick()
			} else {
				n.rn.Tick()
				n.leaderTick()
			}
			retry := n.retry
			n.retry = nil
			for _, p := range retry {
				n.propose(p)
			}
		case m := <-n.recvc:
			if err := n.step(m); err != nil {
				n.fail(err)
				return
			}
		case p := <-n.propc:
			n.propose(p)
		case to := <-n.transferc:
			n.rn.TransferLeader(to)
		case <-n.tr.reportc:
			for _, r := range n.tr.takeReports() {
				switch {
				case !r.snap:
					n.rn.ReportUnreachable(r.to)
				case r.ok:
					n.rn.ReportSnapshot(r.to, raft.SnapshotFinish)
				default:
					n.rn.ReportUnreachable(r.to)
					n.rn.ReportSnapshot(r.to, raft.SnapshotFailure)
				}
			}
		}
		if err := n.handleReady(); err != nil {
			n.fail(err)
			return
		}
		n.publishStatus()
		n.answerDone()
	}
}

// fail stops the loop for good: err is the node's Status.Err from now on,
// and what reaches the node is answered with it until Close.
func (n *Node) fail(err error) {
	n.failErr = err
	n.log.Error("quorum: node stopped", "err", err)
	n.publishStatus()
	n.answerDone()
	failed := fmt.Errorf("%w: node failed: %w", ErrClosed, err)
	n.failProposals(failed)
	close(n.failedc)
	n.drainFailed(failed)
}

// Failed is closed when the node fails (Status.Err says why); it is never
// closed by Close.
func (n *Node) Failed() <-chan struct{} { return n.failedc }

// step gives m to raft, except what this node answers itself: a rejoin
// request, and while rejoining the votes it must not cast. A heartbeat
// that says more is committed here than this node's log holds means the
// node lost raft storage the leader counts on; raft would panic, so the
// node fails with an error that says what to do.
func (n *Node) step(m *pb.Message) error {
	switch t := m.GetType(); {
	case isRejoin(m, rejoinAsk):
		n.handleRejoinRequest(m)
		return nil
	case isRejoin(m, rejoinDone):
		n.handleRejoinDone(m)
		return nil
	case n.rejoining && (t == pb.MsgVote || t == pb.MsgPreVote || t == pb.MsgTimeoutNow ||
		t == pb.MsgApp || t == pb.MsgSnap || t == pb.MsgHeartbeat):
		if !n.takesWhileRejoining(m) {
			n.log.Debug("quorum: message ignored while rejoining", "from", m.GetFrom(), "type", t.String(), "term", m.GetTerm())
			return nil
		}
		if t == pb.MsgHeartbeat {
			if last, _ := n.st.LastIndex(); m.GetCommit() > last {
				return nil // raft would panic; the leader's appends catch the node up
			}
		}
	case t == pb.MsgVote || t == pb.MsgPreVote:
		// A log with nothing appended votes only for a candidate whose
		// log is empty too (the first election of a new cluster): an
		// emptied directory started without Rejoin must not help a
		// candidate that lacks entries this node had acknowledged.
		if last, _ := n.st.LastIndex(); last == 0 && m.GetIndex() > 0 {
			n.log.Debug("quorum: vote request ignored: this log is empty and the candidate's is not", "from", m.GetFrom(), "term", m.GetTerm())
			return nil
		}
	case m.GetType() == pb.MsgHeartbeat:
		if last, _ := n.st.LastIndex(); m.GetCommit() > last {
			return &LostStorageError{Path: n.opts.Dir, Leader: m.GetFrom(), Commit: m.GetCommit(), Last: last}
		}
	}
	if err := n.rn.Step(m); err != nil {
		n.log.Debug("quorum: message not stepped", "from", m.GetFrom(), "type", m.GetType().String(), "err", err)
	}
	return nil
}

// drainFailed answers what reaches a failed node with err until Close.
func (n *Node) drainFailed(err error) {
	for {
		select {
		case <-n.stopc:
			return
		case p := <-n.propc:
			p.resolve(0, err)
		case <-n.transferc:
		case <-n.recvc:
		case <-n.tr.reportc:
			n.tr.takeReports()
		}
	}
}

// answerDone answers the applied proposals.
func (n *Node) answerDone() {
	for _, p := range n.done {
		p.resolve(p.index, nil)
	}
	clear(n.done)
	n.done = n.done[:0]
}

func (n *Node) propose(p *proposal) {
	if err := p.ctx.Err(); err != nil {
		p.resolve(0, fmt.Errorf("%w: %w", ErrProposalDropped, err))
		return
	}
	bs := n.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader {
		p.resolve(0, &NotLeaderError{Leader: bs.Lead, Term: bs.GetTerm()})
		return
	}
	if err := n.rn.Propose(p.data); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			n.m.proposalRetries.Inc()
			n.retry = append(n.retry, p)
			return
		}
		p.resolve(0, fmt.Errorf("quorum: propose: %w", err))
		return
	}
	n.leaderTerm = bs.GetTerm()
	n.pending[p.id] = p
}

// handleReady handles every Ready in the order raft requires: persist, send,
// apply, Advance.
func (n *Node) handleReady() error {
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		start := time.Now()
		if err := n.st.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return err
		}
		n.m.persistSeconds.Observe(time.Since(start).Seconds())
		n.noteAppended(rd.Entries)
		n.tr.send(rd.Messages)
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := n.restore(rd.Snapshot); err != nil {
				return err
			}
		}
		for _, e := range rd.CommittedEntries {
			if err := n.apply(e); err != nil {
				return err
			}
		}
		n.rn.Advance(rd)
		n.checkLeadership()
		if err := n.maybeSnapshot(); err != nil {
			return err
		}
	}
	n.checkLeadership()
	return nil
}

// noteAppended records where this leader's proposals were appended.
func (n *Node) noteAppended(ents []*pb.Entry) {
	if len(n.pending) == 0 {
		return
	}
	for _, e := range ents {
		if e.GetType() != pb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		id, _, err := decodeEntry(e.GetData())
		if err != nil {
			continue // apply refuses it
		}
		if p := n.pending[id]; p != nil {
			delete(n.pending, id)
			p.index = e.GetIndex()
			n.appended[p.index] = p
		}
	}
}

func (n *Node) apply(e *pb.Entry) error {
	idx := e.GetIndex()
	if idx != n.applied+1 {
		return fmt.Errorf("quorum: committed entry %d does not follow the applied index %d", idx, n.applied)
	}
	var id uint64
	switch {
	case e.GetType() == pb.EntryConfChangeV2:
		if err := n.applyConfChange(idx, e.GetTerm(), e.GetData()); err != nil {
			return err
		}
	case e.GetType() != pb.EntryNormal:
		return fmt.Errorf("quorum: committed entry %d is a %s: only voter set changes of rejoining voters (%s) are supported", idx, e.GetType(), pb.EntryConfChangeV2)
	case len(e.GetData()) == 0:
		// A new leader's empty entry.
	default:
		var (
			data []byte
			err  error
		)
		id, data, err = decodeEntry(e.GetData())
		if err != nil {
			return fmt.Errorf("quorum: committed entry %d: %w", idx, err)
		}
		if err := n.sm.Apply(idx, data); err != nil {
			return fmt.Errorf("quorum: state machine refused committed entry %d: %w", idx, err)
		}
		n.lastData = idx
	}
	n.applied = idx
	if p := n.appended[idx]; p != nil {
		delete(n.appended, idx)
		if p.id == id {
			// Answered after publishStatus: a caller sees Status
			// with this index applied.
			n.done = append(n.done, p)
		} else {
			p.resolve(0, fmt.Errorf("%w: another entry was committed at index %d", ErrProposalDropped, idx))
		}
	}
	return nil
}

func (n *Node) restore(snap *pb.Snapshot) error {
	idx := snap.GetMetadata().GetIndex()
	if err := n.sm.Restore(snap.GetData(), idx); err != nil {
		return fmt.Errorf("quorum: state machine refused the snapshot at %d: %w", idx, err)
	}
	n.applied, n.snapIndex, n.lastData = idx, idx, idx
	n.setConfState(snap.GetMetadata().GetConfState())
	n.log.Info("quorum: restored a snapshot from the leader", "index", idx)
	return nil
}

// maybeSnapshot snapshots the state machine and compacts the log every
// SnapshotEntries applied entries.
//
// A voter set change is snapshotted at once: a voter added back catches up
// from the leader's snapshot when the log before it is compacted, and raft
// refuses a snapshot whose voter set does not include it.
func (n *Node) maybeSnapshot() error {
	if n.applied-n.snapIndex < n.opts.SnapshotEntries && !n.confChanged {
		return nil
	}
	n.confChanged = false
	data, idx, err := n.sm.Snapshot()
	if err != nil {
		return fmt.Errorf("quorum: state machine snapshot at %d: %w", n.applied, err)
	}
	// The state machine sees only entries with data: its last index may
	// be below applied, with only empty entries between, so its state as
	// of idx is its state as of applied, and the snapshot is stored at
	// applied.
	if idx < n.lastData || idx > n.applied {
		return fmt.Errorf("quorum: state machine snapshot is at %d, but it was given entry %d and %d is applied", idx, n.lastData, n.applied)
	}
	idx = n.applied
	var compactTo uint64
	if idx > n.opts.CatchUpEntries {
		compactTo = idx - n.opts.CatchUpEntries
	}
	if err := n.st.SaveSnapshot(idx, n.confState, data, compactTo); err != nil {
		return err
	}
	n.snapIndex = idx
	return nil
}

// checkLeadership fails the proposals of a term this node no longer leads.
func (n *Node) checkLeadership() {
	if len(n.pending) == 0 && len(n.appended) == 0 && len(n.retry) == 0 {
		return
	}
	bs := n.rn.BasicStatus()
	if bs.RaftState == raft.StateLeader && bs.GetTerm() == n.leaderTerm {
		return
	}
	// Whoever these answers wake sees the role that failed them.
	n.publishStatus()
	for _, p := range n.retry {
		p.resolve(0, &NotLeaderError{Leader: bs.Lead, Term: bs.GetTerm()})
	}
	n.retry = nil
	lost := fmt.Errorf("%w (term %d; now node %d leads term %d)", ErrLeadershipLost, n.leaderTerm, bs.Lead, bs.GetTerm())
	for id, p := range n.pending {
		p.resolve(0, lost)
		delete(n.pending, id)
	}
	for idx, p := range n.appended {
		p.resolve(0, lost)
		delete(n.appended, idx)
	}
}

func (n *Node) failProposals(err error) {
	for _, p := range n.retry {
		p.resolve(0, err)
	}
	for _, p := range n.pending {
		p.resolve(0, err)
	}
	for _, p := range n.appended {
		p.resolve(0, err)
	}
	n.retry, n.pending, n.appended = nil, map[uint64]*proposal{}, map[uint64]*proposal{}
}

// setConfState makes cs the applied voter set.
func (n *Node) setConfState(cs *pb.ConfState) {
	n.confState = cs
	n.voterSet = slices.Clone(cs.GetVoters())
}

// publishStatus stores the loop's view for Status, updates the metrics and
// reports a leader change.
func (n *Node) publishStatus() {
	bs := n.rn.BasicStatus()
	s := &Status{
		ID: n.opts.ID, ClusterID: n.opts.ClusterID, Voters: n.opts.Voters,
		Role: roleOf(bs.RaftState), Leader: bs.Lead, Term: bs.GetTerm(),
		Commit: bs.GetCommit(), Applied: n.applied, SnapshotIndex: n.snapIndex, Rejoining: n.rejoining, Err: n.failErr,
		VoterSet: n.voterSet, VoterSetIndex: n.voterSetIndex,
	}
	n.status.Store(s)
	n.m.term.Set(float64(s.Term))
	n.m.commit.Set(float64(s.Commit))
	n.m.applied.Set(float64(s.Applied))
	n.m.leader.Set(float64(s.Leader))
	if s.Role == RoleLeader {
		n.m.isLeader.Set(1)
	} else {
		n.m.isLeader.Set(0)
	}
	if bs.Lead != n.lastLead {
		n.lastLead = bs.Lead
		n.m.leaderChanges.Inc()
		lc := LeaderChange{Leader: bs.Lead, Term: s.Term, IsLeader: s.Role == RoleLeader}
		// Only this goroutine sends: after the drain there is room.
		select {
		case <-n.leaderc:
		default:
		}
		n.leaderc <- lc
	}
}

// raftLogger sends raft's log lines to slog.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Info(v ...any)                  { r.l.Info(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Info(fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }
func (r raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	r.l.Error(s)
	panic("quorum: raft: " + s)
}
func (r raftLogger) Panicf(format string, v ...any) { r.Panic(fmt.Sprintf(format, v...)) }
