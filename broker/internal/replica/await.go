package replica

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/broker/internal/metadata"
	"github.com/weir-dev/weir/broker/internal/topics"
)

// roleWait bounds how long a request waits for this broker to take a
// leadership its metadata image already gives it; the wait also ends after
// two syncs (the loop syncs at once when a waiter wakes it), so that a
// request for many partitions the manager will not take (a restarted node
// still replaying its metadata) is not delayed once per partition.
const roleWait = time.Second

// roleWaits lets a request wait for the manager's next sync. A client
// learns of a new leadership from a Metadata answer built from the image,
// which can come before the manager has taken the role (it syncs when the
// image changes and then every tick, and a new topic's local log appears
// after the image): answered NOT_LEADER_OR_FOLLOWER then, the client waits
// for its retry backoff and a metadata refresh (franz-go refreshes at most
// every MetadataMinAge, 5 s by default) only to be sent back here.
type roleWaits struct {
	kick chan struct{} // wakes the manager's loop; buffered 1
	// whole: the loop has a whole image and syncs (Run's ready()).
	whole atomic.Bool

	mu     sync.Mutex
	images func() *metadata.Image // set by Run; guarded by mu
	done   chan struct{}          // closed at the next sync; guarded by mu
}

func newRoleWaits() roleWaits {
	return roleWaits{kick: make(chan struct{}, 1), done: make(chan struct{})}
}

func (r *roleWaits) setImages(images func() *metadata.Image) {
	r.mu.Lock()
	r.images = images
	r.mu.Unlock()
}

// synced wakes every waiter; the loop calls it after each sync.
func (r *roleWaits) synced() {
	r.mu.Lock()
	close(r.done)
	r.done = make(chan struct{})
	r.mu.Unlock()
}

// awaitLeading returns p's replication state, first waiting (at most
// roleWait) for this broker to lead p if the image says it does and the
// manager has not taken the role yet. Internal topics, which the manager
// does not replicate, never wait.
func (m *Manager) awaitLeading(p *topics.Partition) *partition {
	ps := m.lookup(p)
	if leads(ps) || p.Topic().Internal() || !m.roles.whole.Load() || !m.imageSaysLeader(p) {
		return ps
	}
	timer := time.NewTimer(roleWait)
	defer timer.Stop()
	for syncs := 0; syncs < 2; syncs++ {
		m.roles.mu.Lock()
		done := m.roles.done
		m.roles.mu.Unlock()
		select {
		case m.roles.kick <- struct{}{}:
		default:
		}
		if ps = m.lookup(p); leads(ps) {
			return ps
		}
		select {
		case <-done:
		case <-timer.C:
			return m.lookup(p)
		case <-m.ctx.Done():
			return m.lookup(p)
		}
	}
	return m.lookup(p)
}

func leads(ps *partition) bool {
	if ps == nil {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.role == roleLeader
}

// imageSaysLeader reports whether the current image names this broker the
// leader of p (the same topic id).
func (m *Manager) imageSaysLeader(p *topics.Partition) bool {
	m.roles.mu.Lock()
	images := m.roles.images
	m.roles.mu.Unlock()
	if images == nil {
		return false
	}
	img := images()
	if img == nil {
		return false
	}
	t, ok := img.Topic(metadata.TopicName(p.Topic().Name()))
	if !ok || [16]byte(t.ID) != p.Topic().ID() {
		return false
	}
	part, ok := img.Partition(t.ID, p.Index())
	return ok && part.Leader == metadata.NodeID(m.opts.Self)
}
