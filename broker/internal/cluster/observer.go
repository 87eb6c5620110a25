package cluster

// Broker-only nodes (--roles broker): a node outside --controller-voters
// that serves partitions and follows the metadata log without voting.
//
// It fetches committed metadata from a voter over the controller RPC, as
// Kafka's KRaft brokers fetch the metadata log as observers, rather than
// joining the raft group as a learner: the voter set stays the static one
// every data directory is bound to (the quorum refuses configuration
// changes), a broker-only node keeps no raft storage (it rebuilds its
// image from a voter at every start), and a voter serves what it has
// applied, which is committed and so never wrong.
//
// The fetch is a Fetch request (key 1) on the controller RPC for the
// partition __cluster_metadata/0 from the offset the node has applied
// (FetchOffset), waiting up to MaxWaitMillis for something newer. The
// reply's partition carries, as Weir's own encoding between Weir nodes
// (not Kafka record batches), in RecordBatches:
//
//	kind(1) = 0: entries: { index(uvarint) length(uvarint) data }...
//	kind(1) = 1: snapshot: index(uvarint) data (the image's snapshot)
//
// HighWatermark is the voter's applied offset, and CurrentLeader the raft
// leader it knows (LeaderEpoch: the raft term), which the node sends its
// registration, heartbeats and forwarded requests to. A voter keeps its
// last maxRecent applied entries for this; a node further behind gets the
// snapshot.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/quorum"
)

// metadataTopic names the metadata log in the fetch RPC; the RPC goes at
// the highest Fetch version, which names topics by id: metadataTopicID (as
// Kafka's metadata topic, the UUID ...0001).
const metadataTopic = "__cluster_metadata"

var metadataTopicID = [16]byte{15: 1}

// Fetch payload kinds.
const (
	fetchEntries  byte = 0
	fetchSnapshot byte = 1
)

// maxFetchBytes bounds the entries one fetch reply carries (a snapshot is
// sent whole; maxRPCFrame bounds it).
const maxFetchBytes = 1 << 20

// observerWait is how long a voter holds a fetch that has nothing new.
const observerWait = 500 * time.Millisecond

// RoleObserver is the quorum role a broker-only node reports: it follows
// the metadata log without voting.
const RoleObserver quorum.Role = "observer"

// entriesAfter returns what a fetcher that has applied from needs: the
// entries after it (up to about maxBytes), or the image's snapshot when
// the entries it needs are no longer kept; nothing when it is up to date.
func (s *imageSM) entriesAfter(from uint64, maxBytes int) (ents []loggedEntry, snap []byte, snapIndex uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from >= s.img.Applied() {
		return nil, nil, 0, nil
	}
	if from < s.recentFrom {
		snap, snapIndex, err = s.img.Snapshot()
		return nil, snap, snapIndex, err
	}
	size := 0
	for _, e := range s.recent {
		if e.index <= from {
			continue
		}
		if size > 0 && size+len(e.data) > maxBytes {
			break
		}
		ents = append(ents, e)
		size += len(e.data)
	}
	return ents, nil, 0, nil
}

// serveMetadataFetch answers a broker-only node's fetch (on any voter).
func (n *Node) serveMetadataFetch(ctx context.Context, req *kmsg.FetchRequest) (kmsg.Response, uint64, error) {
	if len(req.Topics) != 1 || req.Topics[0].TopicID != metadataTopicID || len(req.Topics[0].Partitions) != 1 {
		return nil, 0, fmt.Errorf("cluster: a controller RPC Fetch is for %s/0 only", metadataTopic)
	}
	from := req.Topics[0].Partitions[0].FetchOffset
	if from < 0 {
		return nil, 0, fmt.Errorf("cluster: metadata fetch from offset %d", from)
	}
	wait := time.Duration(min(max(req.MaxWaitMillis, 0), 5000)) * time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		ch := n.sm.Changed()
		ents, snap, snapIndex, err := n.sm.entriesAfter(uint64(from), maxFetchBytes)
		if err != nil {
			return nil, 0, err
		}
		if len(ents) > 0 || snap != nil {
			return n.fetchResponse(req, ents, snap, snapIndex), 0, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return n.fetchResponse(req, nil, nil, 0), 0, nil
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

func (n *Node) fetchResponse(req *kmsg.FetchRequest, ents []loggedEntry, snap []byte, snapIndex uint64) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	st := n.q.Status()
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic, rt.TopicID = metadataTopic, metadataTopicID
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.HighWatermark = int64(n.sm.Image().Applied())
	rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = int32(st.Leader), int32(st.Term)
	var b []byte
	switch {
	case snap != nil:
		b = append(b, fetchSnapshot)
		b = binary.AppendUvarint(b, snapIndex)
		b = append(b, snap...)
	case len(ents) > 0:
		b = append(b, fetchEntries)
		for _, e := range ents {
			b = binary.AppendUvarint(b, e.index)
			b = binary.AppendUvarint(b, uint64(len(e.data)))
			b = append(b, e.data...)
		}
	}
	rp.RecordBatches = b
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	return resp
}

// decodeFetched parses a fetch reply's payload.
func decodeFetched(b []byte) (ents []loggedEntry, snap []byte, snapIndex uint64, err error) {
	if len(b) == 0 {
		return nil, nil, 0, nil
	}
	kind, b := b[0], b[1:]
	switch kind {
	case fetchSnapshot:
		idx, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, nil, 0, errors.New("cluster: metadata fetch: bad snapshot index")
		}
		return nil, b[w:], idx, nil
	case fetchEntries:
		for len(b) > 0 {
			idx, w := binary.Uvarint(b)
			if w <= 0 {
				return nil, nil, 0, errors.New("cluster: metadata fetch: bad entry index")
			}
			b = b[w:]
			size, w := binary.Uvarint(b)
			if w <= 0 || size > uint64(len(b)-w) {
				return nil, nil, 0, errors.New("cluster: metadata fetch: entry length beyond the reply")
			}
			ents = append(ents, loggedEntry{index: idx, data: b[w : w+int(size)]})
			b = b[w+int(size):]
		}
		return ents, nil, 0, nil
	default:
		return nil, nil, 0, fmt.Errorf("cluster: metadata fetch: unknown payload kind %d", kind)
	}
}

// observer is a broker-only node's view of the quorum, learnt from its
// fetches.
type observer struct {
	mu sync.Mutex
	// leader and term are the raft leader and term the last voter
	// answering knew (0 if none); commit is that voter's applied offset.
	leader quorum.NodeID
	term   uint64
	commit uint64
	// caughtUp is set once the node's image has reached what a voter had
	// applied: until then the image may lack topics this node holds, and
	// the reconciler must not act on it (it would delete them).
	caughtUp atomic.Bool
}

// status reports the observer as a quorum.Status.
func (n *Node) observerStatus() quorum.Status {
	o := n.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	return quorum.Status{ID: quorum.NodeID(n.opts.NodeID), ClusterID: n.clusterID, Voters: n.opts.Voters,
		Role: RoleObserver, Leader: o.leader, Term: o.term, Commit: max(o.commit, n.sm.Image().Applied()), Applied: n.sm.Image().Applied()}
}

// fetchLoop follows the metadata log from the voters: from the raft
// leader when one is known, else from each voter in turn.
func (n *Node) fetchLoop() {
	defer n.wg.Done()
	cl := newRPCClient(n.opts.Dial) // its own connections: a held fetch must not delay heartbeats
	defer cl.close()
	next := 0
	backoff := 20 * time.Millisecond
	for n.ctx.Err() == nil {
		addr := n.opts.Voters[next%len(n.opts.Voters)].Addr
		if a, ok := n.controllerAddr(); ok {
			addr = a
		}
		if err := n.fetchOnce(cl, addr); err != nil {
			n.log.Debug("cluster: metadata fetch failed", "voter", addr, "err", err)
			next++
			// Forget the leader: until a voter names one again, the
			// fetches (and controller requests) try each voter in turn.
			n.obs.mu.Lock()
			n.obs.leader = 0
			n.obs.mu.Unlock()
			t := time.NewTimer(backoff)
			select {
			case <-n.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 500*time.Millisecond)
			continue
		}
		backoff = 20 * time.Millisecond
	}
}

// fetchOnce fetches once from the voter at addr and applies what it got.
func (n *Node) fetchOnce(cl *rpcClient, addr string) error {
	ctx, cancel := context.WithTimeout(n.ctx, observerWait+5*time.Second)
	defer cancel()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis = n.opts.NodeID, int32(observerWait/time.Millisecond)
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = metadataTopic, metadataTopicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = int64(n.sm.Image().Applied())
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	out, _, err := cl.call(ctx, addr, req)
	if err != nil {
		return err
	}
	resp := out.(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return errors.New("cluster: metadata fetch reply without its partition")
	}
	p := resp.Topics[0].Partitions[0]
	n.obs.mu.Lock()
	if p.CurrentLeader.LeaderID > 0 {
		n.obs.leader, n.obs.term = quorum.NodeID(p.CurrentLeader.LeaderID), uint64(p.CurrentLeader.LeaderEpoch)
	} else {
		n.obs.leader = 0
	}
	n.obs.commit = uint64(max(p.HighWatermark, 0))
	n.obs.mu.Unlock()
	ents, snap, snapIndex, err := decodeFetched(p.RecordBatches)
	if err != nil {
		return err
	}
	if snap != nil {
		if snapIndex <= n.sm.Image().Applied() {
			return nil
		}
		n.log.Info("cluster: metadata image restored from a voter's snapshot", "offset", snapIndex)
		if err := n.sm.Restore(snap, snapIndex); err != nil {
			return err
		}
		ents = nil // the next fetch brings what follows
	}
	for _, e := range ents {
		if e.index <= n.sm.Image().Applied() {
			continue
		}
		if err := n.sm.Apply(e.index, e.data); err != nil {
			return fmt.Errorf("cluster: apply fetched metadata entry %d: %w", e.index, err)
		}
	}
	if !n.obs.caughtUp.Load() && int64(n.sm.Image().Applied()) >= p.HighWatermark {
		n.obs.caughtUp.Store(true)
		n.log.Info("cluster: metadata image caught up with the voters", "offset", n.sm.Image().Applied())
		n.wantReconcile()
	}
	return nil
}
