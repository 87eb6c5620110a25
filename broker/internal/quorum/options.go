package quorum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// StateMachine receives committed entries in log order, exactly once per
// node lifetime, starting after the last snapshot it restored. Its methods
// are called from the node's raft goroutine, one at a time.
type StateMachine interface {
	// Apply applies the committed entry at index. An error stops the node
	// (Status.Err says why): a state machine that cannot apply a committed
	// entry must not go on.
	Apply(index uint64, data []byte) error
	// Snapshot returns the state as of the last index given to Apply (or
	// Restore), and that index. The node stores the snapshot at its own
	// applied index, which may be higher: it counts the empty entries a new
	// leader appends, which the state machine is not given.
	Snapshot() (data []byte, index uint64, err error)
	// Restore replaces the state with a snapshot taken at index.
	Restore(data []byte, index uint64) error
}

// Dialer opens connections to other voters. *net.Dialer implements it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Ticker is a source of raft ticks. Tests inject one they drive by hand.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Options configure a Node. The zero value of each field means its default;
// EnsureDefaults fills them in.
type Options struct {
	// ID is this node's id, one of Voters. Required.
	ID NodeID
	// Voters are the controller voters, as --controller-voters lists them.
	// Required; must include ID.
	Voters []Voter
	// ClusterID names the cluster; it is written into the data directory at
	// the first start and must match later. Default: derived from the voter
	// set ("weir-" and 16 hex digits of its SHA-256), so that nodes started
	// with the same --controller-voters agree without another flag.
	ClusterID string

	// Dir is the directory of the raft storage (a Pebble database).
	// Required.
	Dir string
	// FS is the filesystem Dir is on. Default vfs.Default.
	FS vfs.FS
	// Rejoin brings back a voter whose raft storage was lost or moved
	// away (Dir empty) while the other voters kept theirs. Such a node
	// must not vote or acknowledge as the voter it was, since the log it
	// acknowledged is gone: until it is a voter again it does not tick,
	// campaign or vote, and it asks the leader to remove it from the voter
	// set and add it back. The removal is committed by the other voters
	// alone, so they hold every committed entry; after the re-addition
	// the node catches up from the leader like a new voter. It needs a
	// majority of the other voters up. Rejoin marks only an empty Dir
	// (the mark is kept until the node applied its re-addition, across
	// restarts); on a Dir with raft storage it does nothing.
	Rejoin bool

	// TickInterval is the length of a raft tick. Default 100ms.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks: a follower that hears
	// no leader for (randomly) 1 to 2 times this long campaigns, and a
	// leader that does not hear from a quorum for as long steps down
	// (CheckQuorum). Default 10.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks; below
	// ElectionTicks. Default 1.
	HeartbeatTicks int
	// NewTicker makes the tick source. Default: a time.Ticker. A wall
	// clock jump does not move a time.Ticker (it reads the monotonic
	// clock), so it cannot start an election by itself.
	NewTicker func(d time.Duration) Ticker

	// SnapshotEntries is how many entries are applied between two
	// snapshots of the state machine (which compact the log). Default
	// 10000.
	SnapshotEntries uint64
	// CatchUpEntries is how many entries before a snapshot stay in the log,
	// so that a follower a little behind catches up from entries, not a
	// snapshot. Default 5000.
	CatchUpEntries uint64
	// MaxSizePerMsg caps the entry bytes of one append message. Default 1 MiB.
	MaxSizePerMsg uint64
	// MaxInflightMsgs caps the append messages in flight to one follower.
	// Default 256.
	MaxInflightMsgs int

	// Listener is the controller listener other voters connect to; the
	// node closes it in Close. Default: one opened on this node's voter
	// address at Start.
	Listener net.Listener
	// Dialer connects to other voters. Default: a net.Dialer with a 2s
	// timeout.
	Dialer Dialer
	// MaxFrameBytes caps one message frame, in both directions; a snapshot
	// travels in one frame, so it must exceed the largest state machine
	// snapshot. Default 64 MiB.
	MaxFrameBytes int
	// SendQueue is how many messages wait for one peer's connection; beyond
	// it messages are dropped (raft retransmits). Default 1024.
	SendQueue int
	// DialBackoff and MaxDialBackoff bound the wait between two dials to an
	// unreachable peer (doubling, with jitter). Defaults 50ms and 2s.
	DialBackoff    time.Duration
	MaxDialBackoff time.Duration
	// WriteTimeout bounds one write of frames to a peer; a peer that does
	// not read is disconnected. Default 5s.
	WriteTimeout time.Duration

	// Logger receives the node's and raft's log lines. Default
	// slog.Default().
	Logger *slog.Logger
	// Registerer, when set, registers the node's metrics
	// (weir_quorum_*). Default nil: none registered.
	Registerer prometheus.Registerer
}

// DeriveClusterID returns the default cluster id of a voter set.
func DeriveClusterID(voters []Voter) string {
	sum := sha256.Sum256([]byte(FormatVoters(voters)))
	return "weir-" + hex.EncodeToString(sum[:8])
}

// EnsureDefaults fills in zero fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.ClusterID == "" && len(o.Voters) > 0 {
		o.ClusterID = DeriveClusterID(o.Voters)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.TickInterval == 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.ElectionTicks == 0 {
		o.ElectionTicks = 10
	}
	if o.HeartbeatTicks == 0 {
		o.HeartbeatTicks = 1
	}
	if o.NewTicker == nil {
		o.NewTicker = func(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }
	}
	if o.SnapshotEntries == 0 {
		o.SnapshotEntries = 10000
	}
	if o.CatchUpEntries == 0 {
		o.CatchUpEntries = 5000
	}
	if o.MaxSizePerMsg == 0 {
		o.MaxSizePerMsg = 1 << 20
	}
	if o.MaxInflightMsgs == 0 {
		o.MaxInflightMsgs = 256
	}
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{Timeout: 2 * time.Second}
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = 64 << 20
	}
	if o.SendQueue == 0 {
		o.SendQueue = 1024
	}
	if o.DialBackoff == 0 {
		o.DialBackoff = 50 * time.Millisecond
	}
	if o.MaxDialBackoff == 0 {
		o.MaxDialBackoff = 2 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports every problem with o at once.
func (o *Options) Validate() error {
	var errs []error
	if o.ID == 0 {
		errs = append(errs, errors.New("quorum: node id is required (and not 0)"))
	}
	if len(o.Voters) == 0 {
		errs = append(errs, errors.New("quorum: no voters"))
	} else if o.ID != 0 && !slices.ContainsFunc(o.Voters, func(v Voter) bool { return v.ID == o.ID }) {
		errs = append(errs, fmt.Errorf("quorum: node %d is not one of the voters %s", o.ID, FormatVoters(o.Voters)))
	}
	if o.Rejoin && len(o.Voters) < 2 {
		errs = append(errs, errors.New("quorum: Rejoin needs other voters to rejoin (there is one voter)"))
	}
	if err := checkVoters(o.Voters); err != nil {
		errs = append(errs, err)
	}
	if o.Dir == "" {
		errs = append(errs, errors.New("quorum: Dir is required"))
	}
	if o.TickInterval < 0 {
		errs = append(errs, fmt.Errorf("quorum: TickInterval %v is negative", o.TickInterval))
	}
	if o.HeartbeatTicks < 0 || o.ElectionTicks < 0 || (o.ElectionTicks > 0 && o.HeartbeatTicks >= o.ElectionTicks) {
		errs = append(errs, fmt.Errorf("quorum: HeartbeatTicks %d must be positive and below ElectionTicks %d", o.HeartbeatTicks, o.ElectionTicks))
	}
	if o.MaxFrameBytes < 0 || (o.MaxFrameBytes > 0 && o.MaxFrameBytes < 1<<10) {
		errs = append(errs, fmt.Errorf("quorum: MaxFrameBytes %d is below 1 KiB", o.MaxFrameBytes))
	}
	if o.MaxSizePerMsg > 0 && o.MaxFrameBytes > 0 && o.MaxSizePerMsg > uint64(o.MaxFrameBytes)/2 {
		errs = append(errs, fmt.Errorf("quorum: MaxSizePerMsg %d must be at most half of MaxFrameBytes %d", o.MaxSizePerMsg, o.MaxFrameBytes))
	}
	if o.SendQueue < 0 || o.MaxInflightMsgs < 0 {
		errs = append(errs, errors.New("quorum: SendQueue and MaxInflightMsgs must not be negative"))
	}
	if o.DialBackoff < 0 || o.MaxDialBackoff < 0 || (o.MaxDialBackoff > 0 && o.DialBackoff > o.MaxDialBackoff) {
		errs = append(errs, fmt.Errorf("quorum: DialBackoff %v and MaxDialBackoff %v must be positive and in order", o.DialBackoff, o.MaxDialBackoff))
	}
	if o.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("quorum: WriteTimeout %v is negative", o.WriteTimeout))
	}
	return errors.Join(errs...)
}
