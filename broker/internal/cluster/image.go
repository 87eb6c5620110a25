package cluster

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/protocol"
)

// maxRefusals bounds how many refused entries the state machine remembers
// for the controller driver to find (it asks right after its proposal).
const maxRefusals = 64

// imageSM is the quorum's state machine on every node: the metadata image,
// applied by the raft goroutine, and the immutable views built from it for
// everyone else.
type imageSM struct {
	log *slog.Logger

	// mu guards img and refused. Lock order: imageSM.mu before nothing
	// (it is a leaf; the raft goroutine holds it only inside Apply,
	// Snapshot and Restore).
	mu  sync.Mutex
	img *metadata.Image
	// refused holds the indexes of committed entries the image refused
	// (IsInvalid): applied as no-ops on every node alike. Bounded by
	// maxRefusals, oldest dropped first.
	refused      map[uint64]error
	refusedOrder []uint64

	// committed is the last image published, a clone nobody applies to.
	committed atomic.Pointer[metadata.Image]
	// changed is closed and replaced at every publish. Guarded by mu.
	changed chan struct{}
	// onChange is called (outside mu) after every publish, on the raft
	// goroutine; it must not block.
	onChange func()

	// recent are the last entries applied (at most maxRecent), which
	// broker-only nodes fetch (observer.go); recentFrom is the applied
	// offset just before the first of them: a fetcher that has applied
	// recentFrom or more can be served entries, one behind it gets the
	// image's snapshot. Guarded by mu.
	recent      []loggedEntry
	recentFrom  uint64
	recentBytes int // the data bytes of recent
}

// loggedEntry is one applied entry of the metadata log.
type loggedEntry struct {
	index uint64
	data  []byte
}

// maxRecent and maxRecentBytes bound the entries a voter keeps for
// broker-only nodes.
const (
	maxRecent      = 4096
	maxRecentBytes = 16 << 20
)

func newImageSM(log *slog.Logger) *imageSM {
	s := &imageSM{log: log, img: metadata.NewImage(), refused: map[uint64]error{}, changed: make(chan struct{})}
	s.committed.Store(s.img.Clone())
	return s
}

// Apply applies a committed entry. An entry the image refuses as not
// fitting (IsInvalid) counts as applied, identically on every node, and is
// remembered for the driver; only an entry this node cannot decode stops
// the node.
func (s *imageSM) Apply(index uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.img.Apply(index, data)
	if err != nil && !metadata.IsInvalid(err) {
		return err
	}
	// NB: refused entries are kept too: a fetcher applies them and
	// refuses them alike.
	s.recent = append(s.recent, loggedEntry{index: index, data: data})
	s.recentBytes += len(data)
	for len(s.recent) > maxRecent || (len(s.recent) > 1 && s.recentBytes > maxRecentBytes) {
		s.recentFrom = s.recent[0].index
		s.recentBytes -= len(s.recent[0].data)
		s.recent = s.recent[1:]
	}
	if err != nil {
		s.log.Warn("cluster: committed metadata entry refused by the image (applied as a no-op on every node)", "index", index, "err", err)
		s.refused[index] = err
		s.refusedOrder = append(s.refusedOrder, index)
		if len(s.refusedOrder) > maxRefusals {
			delete(s.refused, s.refusedOrder[0])
			s.refusedOrder = s.refusedOrder[1:]
		}
	}
	s.publishLocked()
	return nil
}

// Snapshot returns the image's snapshot.
func (s *imageSM) Snapshot() ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.img.Snapshot()
}

// Restore replaces the image with a snapshot.
func (s *imageSM) Restore(data []byte, index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img := metadata.NewImage()
	if err := img.Restore(data, index); err != nil {
		return fmt.Errorf("cluster: restore the metadata image at %d: %w", index, err)
	}
	s.img = img
	s.recent, s.recentFrom, s.recentBytes = nil, index, 0
	s.publishLocked()
	return nil
}

// publishLocked publishes a clone of the image and wakes the waiters.
func (s *imageSM) publishLocked() {
	s.committed.Store(s.img.Clone())
	close(s.changed)
	s.changed = make(chan struct{})
	if s.onChange != nil {
		s.onChange()
	}
}

// Image returns the last committed image. The caller must not apply to it.
func (s *imageSM) Image() *metadata.Image { return s.committed.Load() }

// Changed returns a channel closed at the next publish.
func (s *imageSM) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Refused returns why the entry at index was refused, nil if it was not
// (or is no longer remembered).
func (s *imageSM) Refused(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[index]
}

// buildView turns an image into the handlers' view. A broker's address is
// that of its first listener (its inter-broker one) unless the client
// connected through a listener of another name (protocol.Node.For). controller is the raft leader, -1 if
// none is known.
func buildView(img *metadata.Image, clusterID string, controller int32) *protocol.ClusterView {
	v := &protocol.ClusterView{
		Applied: img.Applied(), ClusterID: clusterID, ControllerID: controller,
		Topics: map[string]*protocol.ClusterTopic{}, ByID: map[[16]byte]*protocol.ClusterTopic{},
	}
	for _, b := range img.Brokers() {
		if len(b.Listeners) == 0 {
			continue
		}
		l := b.Listeners[0]
		n := protocol.Node{ID: int32(b.ID), Host: l.Host, Port: int32(l.Port)}
		for _, bl := range b.Listeners {
			n.Listeners = append(n.Listeners, protocol.NodeListener{Name: bl.Name, Protocol: protocol.SecurityProtocolOfCode(bl.SecurityProtocol),
				Host: bl.Host, Port: int32(bl.Port)})
		}
		if b.Fenced {
			v.Fenced = append(v.Fenced, n)
			continue
		}
		v.Brokers = append(v.Brokers, n)
	}
	// Clients send controller requests to the controller they are told of,
	// so it must be a broker they can reach: a controller-only leader is
	// replaced by a live broker, which forwards (as Kafka's KRaft brokers
	// name a broker, not the quorum's leader).
	if !slices.ContainsFunc(v.Brokers, func(n protocol.Node) bool { return n.ID == controller }) {
		v.ControllerID = -1
		if len(v.Brokers) > 0 {
			v.ControllerID = v.Brokers[0].ID
		}
	}
	for _, t := range img.Topics() {
		ct := &protocol.ClusterTopic{Name: string(t.Name), ID: t.ID,
			Configs: img.Config(metadata.ConfigResource{Type: metadata.ConfigTopic, Name: string(t.Name)})}
		for _, p := range img.Partitions(t.ID) {
			ct.Partitions = append(ct.Partitions, protocol.ClusterPartition{
				Leader: int32(p.Leader), LeaderEpoch: int32(p.LeaderEpoch),
				Replicas: nodes32(p.Replicas), ISR: nodes32(p.ISR),
			})
		}
		v.Topics[ct.Name], v.ByID[ct.ID] = ct, ct
	}
	return v
}

func nodes32(ns []metadata.NodeID) []int32 {
	out := make([]int32, len(ns))
	for i, n := range ns {
		out[i] = int32(n)
	}
	return out
}
