package protocol

// Transactions in cluster mode, as Kafka places them: __transaction_state
// is a topic of the cluster's metadata, created through the controller the
// first time a FindCoordinator for a transactional id needs it (replication
// factor min(Config.OffsetsReplication, brokers), compacted), replicated
// like any partition, and a transactional id's coordinator is the leader of
// the id's partition of it (txn.Partition).
//
// Each broker's transaction driver starts serving no partition
// (txn.DriverOptions.Unowned); an ownership.Follower makes it serve the
// state partitions this broker leads once each is ready, exactly as group
// coordination follows __consumer_offsets (group_cluster.go), under the
// partition's leader epoch as coordinator epoch. Loading a partition sends
// again the markers of the transactions it left in PrepareCommit or
// PrepareAbort; its open transactions time out from their recorded start.
// The coordinator's records go through replication (txn.TopicLog
// .Replicate): an answer that depends on one is given once the high
// watermark covers it.
//
// Markers go to each partition's leader, as the view names it at each try:
// this broker's own partitions are written directly (through replication:
// written at the leader epoch, done once the high watermark covers them),
// the others in one WriteTxnMarkers per leader (27_write_txn_markers.go),
// sent over the inter-broker listener. A partition refused (its leader
// moved: NOT_LEADER_OR_FOLLOWER, or anything else) is tried again after the
// driver's backoff, with the view of then.
//
// A transactional produce is checked with the coordinator (KIP-890 part 1)
// wherever it runs: the partition leader asks its own driver when it
// coordinates the id, else sends AddPartitionsToTxn v4 (VerifyOnly) to the
// coordinator.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/ownership"
	"github.com/weir-dev/weir/broker/internal/topics"
	"github.com/weir-dev/weir/broker/internal/txn"
)

// BrokerSender sends a request to another broker of the cluster (the
// replication manager does, over the inter-broker listener).
type BrokerSender interface {
	// SendToBroker sends req to broker node and returns its response; an
	// error means no response was had.
	SendToBroker(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error)
}

// peerRequestTimeout bounds one request to another broker (a marker
// write waits there for the high watermark).
const peerRequestTimeout = 10 * time.Second

func openClusterTxnCoordinator(s *Server) (Extension, error) {
	var opts txn.Options
	opts.EnsureDefaults()
	tl := txn.OpenTopicLog(s.Topics, opts.StatePartitions, nil)
	opts.StatePartitions = tl.Partitions()
	opts.OffsetsPartitions = s.cfg.Groups.OffsetsPartitions
	g, _ := s.Extension(groupExtensionName).(*groupCoordinator)
	if g != nil {
		opts.OffsetsPartitions = g.d.Partitions()
	}
	if s.cfg.Replication != nil {
		tl.Replicate(s.cfg.Replication)
	}
	opts.ProducerIDs = producerIDs{s.Topics}
	if alloc, ok := s.cfg.Cluster.(ProducerIDAllocator); ok {
		opts.ProducerIDs = clusterProducerIDs{alloc}
	}
	opts.Topics = clusterTopics{s}
	d, err := txn.OpenDriver(context.Background(), txn.DriverOptions{
		Coordinator: opts, Log: tl, Logger: s.Logger, Unowned: true,
		Markers: func(ctx context.Context, m txn.Marker) ([]txn.TopicPartition, error) {
			return clusterWriteMarkers(ctx, s, g, m)
		},
	})
	if err != nil {
		return nil, err
	}
	o := startCoordOwnership(s, "txn", "transaction", txn.StateTopic, d.Partitions(), txnLoader{s, d})
	return &txnCoordinator{d: d, own: o}, nil
}

// clusterProducerIDs hands the coordinator ids from this broker's
// controller-allocated block (unique across the cluster). NB: the
// coordinator asks under its driver's lock; the block keeps a spare, so
// the controller is rarely waited for, and never longer than
// adminForwardTimeout.
type clusterProducerIDs struct{ alloc ProducerIDAllocator }

func (c clusterProducerIDs) NextProducerID() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminForwardTimeout)
	defer cancel()
	return c.alloc.NextProducerID(ctx)
}

// clusterTopics answers the coordinator's partition checks from the view.
type clusterTopics struct{ s *Server }

func (c clusterTopics) Partitions(topic string) (int32, bool) {
	ct := c.s.cfg.Cluster.View().Topics[topic]
	if ct == nil {
		return 0, false
	}
	return int32(len(ct.Partitions)), true
}

// txnLoader is the transaction driver as an ownership.Coordinator: a
// partition is loaded under the leader epoch the view names, its
// coordinator epoch.
type txnLoader struct {
	s *Server
	d *txn.Driver
}

func (l txnLoader) Load(ctx context.Context, p int32) error {
	ct := l.s.cfg.Cluster.View().Topics[txn.StateTopic]
	if ct == nil || int(p) >= len(ct.Partitions) {
		return fmt.Errorf("protocol: %s partition %d is not in the view", txn.StateTopic, p)
	}
	return l.d.Load(ctx, p, txn.CoordinatorEpoch(ct.Partitions[p].LeaderEpoch))
}

func (l txnLoader) Unload(ps []int32) { l.d.Unload(ps) }

// clusterWriteMarkers writes m's markers to their partitions' leaders as
// the view names them now: this broker's directly, the others' in one
// WriteTxnMarkers per leader. It returns the partitions done (marked, or
// gone from the view: nothing to mark).
func clusterWriteMarkers(ctx context.Context, s *Server, g *groupCoordinator, m txn.Marker) ([]txn.TopicPartition, error) {
	v, err := markerView(ctx, s.cfg.Cluster, m.Partitions)
	if err != nil {
		return nil, err // the driver tries again after its backoff
	}
	var done, local []txn.TopicPartition
	leaderOf := func(tp txn.TopicPartition) (txn.NodeID, bool) {
		ct := v.Topics[tp.Topic]
		if ct == nil || tp.Partition < 0 || int(tp.Partition) >= len(ct.Partitions) {
			return 0, false
		}
		l := ct.Partitions[tp.Partition].Leader
		return txn.NodeID(l), l >= 0
	}
	var remote []txn.TopicPartition
	var errs []error
	for _, tp := range m.Partitions {
		ct := v.Topics[tp.Topic]
		switch n, ok := leaderOf(tp); {
		case ct == nil || tp.Partition < 0 || int(tp.Partition) >= len(ct.Partitions):
			// Not in a view that has caught up with the controller's
			// metadata (markerView): deleted, nothing to mark.
			done = append(done, tp)
		case !ok:
			errs = append(errs, fmt.Errorf("marker to %s/%d: no leader", tp.Topic, tp.Partition))
		case int32(n) == s.cfg.Node.ID:
			local = append(local, tp)
		default:
			remote = append(remote, tp)
		}
	}
	var reqs map[txn.NodeID]*kmsg.WriteTxnMarkersRequest
	if len(remote) > 0 {
		rm := m
		rm.Partitions = remote
		// v2 carries the transaction version, which the leader's check
		// of the marker's epoch depends on.
		reqs, _ = txn.MarkerRequests([]txn.Marker{rm}, 2, leaderOf)
	}
	// Each sender writes its one result without blocking.
	results := make(chan markerResult, len(reqs)+1)
	var wg sync.WaitGroup
	if len(local) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes := writeMarkersHere(ctx, s, g, logMarker(m), local)
			var r markerResult
			for i, tp := range local {
				if markerDone(s.Logger, m, tp, -1, codes[i]) {
					r.done = append(r.done, tp)
				} else {
					r.err = errors.Join(r.err, fmt.Errorf("marker to %s/%d: %w", tp.Topic, tp.Partition, kerr.ErrorForCode(codes[i])))
				}
			}
			results <- r
		}()
	}
	sender, _ := s.cfg.Replication.(BrokerSender)
	for node, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- sendMarkers(ctx, s.Logger, m, sender, int32(node), req)
		}()
	}
	wg.Wait()
	close(results)
	for r := range results {
		done = append(done, r.done...)
		errs = append(errs, r.err)
	}
	return done, errors.Join(errs...)
}

// markerView returns the view to send markers to parts by. A partition
// the view does not name is of a deleted topic, or of one this broker has
// not applied the creation (or the added partitions) of yet: a
// coordinator that moved here ahead of its metadata, whose view has no
// deletions to tell the two apart. So before any partition is taken as
// deleted, and its marker dropped for good, the view catches up with the
// active controller's metadata (MetadataSyncer); an error means it could
// not, and the markers wait for the next try.
func markerView(ctx context.Context, c Cluster, parts []txn.TopicPartition) (*ClusterView, error) {
	v := c.View()
	unseen := func(v *ClusterView) []txn.TopicPartition {
		var out []txn.TopicPartition
		for _, tp := range parts {
			if ct := v.Topics[tp.Topic]; ct == nil || tp.Partition < 0 || int(tp.Partition) >= len(ct.Partitions) {
				out = append(out, tp)
			}
		}
		return out
	}
	missing := unseen(v)
	sy, ok := c.(MetadataSyncer)
	if len(missing) == 0 || !ok {
		return v, nil
	}
	sctx, cancel := context.WithTimeout(ctx, adminForwardTimeout)
	defer cancel()
	if err := sy.SyncMetadata(sctx); err != nil {
		return nil, fmt.Errorf("protocol: markers to %v, which this broker's metadata does not name: catching up with the controller's: %w", missing, err)
	}
	return c.View(), nil
}

// markerResult is what one marker write reports: the partitions marked,
// and why the others were not.
type markerResult struct {
	done []txn.TopicPartition
	err  error
}

// sendMarkers sends one WriteTxnMarkers (one marker) to broker node and
// returns the partitions it wrote.
func sendMarkers(ctx context.Context, log *slog.Logger, m txn.Marker, sender BrokerSender, node int32, req *kmsg.WriteTxnMarkersRequest) markerResult {
	if sender == nil {
		return markerResult{err: errors.New("protocol: no connection to other brokers (no replication)")}
	}
	ctx, cancel := context.WithTimeout(ctx, peerRequestTimeout)
	defer cancel()
	out, err := sender.SendToBroker(ctx, node, req)
	if err != nil {
		return markerResult{err: err}
	}
	done, failed := txn.MarkerResults(out.(*kmsg.WriteTxnMarkersResponse))
	r := markerResult{done: done}
	for tp, code := range failed {
		if markerDone(log, m, tp, node, code) {
			r.done = append(r.done, tp)
			continue
		}
		r.err = errors.Join(r.err, fmt.Errorf("marker to %s/%d at broker %d: %w", tp.Topic, tp.Partition, node, kerr.ErrorForCode(code)))
	}
	return r
}

// logMarker is the marker m asks a partition log to write.
func logMarker(m txn.Marker) topics.Marker {
	return topics.Marker{
		ProducerID: int64(m.ProducerID), Epoch: int16(m.Epoch), Commit: m.Commit,
		CoordinatorEpoch: int32(m.CoordinatorEpoch), TransactionVersion: int8(m.TransactionVersion),
	}
}

// markerDone reports whether a partition's answer to a marker ends the
// coordinator's work there: written (0), or refused as older than the
// producer's epoch in the partition (INVALID_PRODUCER_EPOCH), which has
// moved past this transaction: its marker was written before (the
// refusal answers a copy, late) or the producer was fenced there. The
// refusal is logged: were the partition's epoch accounting ever wrong, a
// transaction left open there would otherwise go unseen. node is the
// leader's id, -1 for this broker.
func markerDone(log *slog.Logger, m txn.Marker, tp txn.TopicPartition, node int32, code int16) bool {
	if code == kerr.InvalidProducerEpoch.Code && log != nil {
		log.Warn("txn: a partition refused a marker as older than its producer's epoch; counted as written",
			"topic", tp.Topic, "partition", tp.Partition, "leader", node, "producer_id", m.ProducerID,
			"epoch", m.Epoch, "transaction_version", m.TransactionVersion, "commit", m.Commit)
	}
	return code == 0 || code == kerr.InvalidProducerEpoch.Code
}

// writeMarkersHere writes marker m to each of parts, partitions this
// broker is to lead, and returns each one's error code (0: written and,
// replicated, covered by the high watermark). The __consumer_offsets ones
// are also handed to the group coordinator g, which makes a committed
// transaction's offsets visible. The partitions are written in parallel.
func writeMarkersHere(ctx context.Context, s *Server, g *groupCoordinator, m topics.Marker, parts []txn.TopicPartition) []int16 {
	codes := make([]int16, len(parts))
	var wg sync.WaitGroup
	for i, tp := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = writeMarkerHere(ctx, s, g, m, tp)
		}()
	}
	wg.Wait()
	return codes
}

func writeMarkerHere(ctx context.Context, s *Server, g *groupCoordinator, m topics.Marker, tp txn.TopicPartition) int16 {
	var p *topics.Partition
	if s.cfg.Cluster != nil {
		v := s.cfg.Cluster.View()
		var code int16
		if p, code = s.leads(v, v.Topics[tp.Topic], tp.Partition); code != 0 {
			return code
		}
	} else {
		t, ok := s.Topics.Get(tp.Topic)
		if !ok {
			return kerr.UnknownTopicOrPartition.Code
		}
		if p, ok = t.Partition(tp.Partition); !ok {
			return kerr.UnknownTopicOrPartition.Code
		}
	}
	var err error
	if s.cfg.Replication != nil {
		err = ownership.AppendBroker(ctx, s.cfg.Replication, p, func(l topics.LeaderTxnLog, le topics.Epoch) (topics.AppendResult, error) {
			return l.WriteMarker(m, le)
		})
	} else if tl, ok := p.Log().(topics.TxnLog); ok {
		err = tl.AppendMarker(ctx, m)
	}
	if err != nil {
		s.Logger.Debug("protocol: write a transaction marker", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		return errorCode(err)
	}
	if tp.Topic == group.OffsetsTopic && g != nil {
		if err := g.d.CompleteTxn(m.ProducerID, m.Commit, tp.Partition); err != nil {
			return kerr.CoordinatorNotAvailable.Code
		}
	}
	return 0
}

// txnCoordinatorNode returns the leader of transactional id id's
// __transaction_state partition, or false when the view has none.
func txnCoordinatorNode(s *Server, d *txn.Driver, id string) (int32, bool) {
	ct := s.cfg.Cluster.View().Topics[txn.StateTopic]
	if ct == nil || int32(len(ct.Partitions)) != d.Partitions() {
		return -1, false
	}
	leader := ct.Partitions[txn.Partition(txn.TransactionalID(id), d.Partitions())].Leader
	return leader, leader >= 0
}

// toTxnCoordinator routes a request for transactional id id to its
// coordinator. When this broker leads the id's state partition it brings
// its coordinator up to date and reports local, for the caller to ask its
// driver. Otherwise it sends req() to the leader over the inter-broker
// listener and returns the answer. It reports false when no coordinator
// answers (none known, or the send failed: logged with what).
func toTxnCoordinator(ctx context.Context, s *Server, d *txn.Driver, id, what string, req func() kmsg.Request) (resp kmsg.Response, local, ok bool) {
	leader, ok := txnCoordinatorNode(s, d, id)
	if !ok {
		return nil, false, false
	}
	if leader == s.cfg.Node.ID {
		if t, _ := s.Extension(txnExtensionName).(*txnCoordinator); t != nil && t.own != nil {
			t.own.sync(ctx)
		}
		return nil, true, true
	}
	sender, ok := s.cfg.Replication.(BrokerSender)
	if !ok {
		return nil, false, false
	}
	rctx, cancel := context.WithTimeout(ctx, peerRequestTimeout)
	defer cancel()
	out, err := sender.SendToBroker(rctx, leader, req())
	if err != nil {
		s.Logger.Debug("protocol: "+what+" at its coordinator", "coordinator", leader, "err", err)
		return nil, false, false
	}
	return out, false, true
}

// clusterAddOffsets sends add (an AddOffsetsToTxn a TxnOffsetCommit v5
// implies) to the transactional id's coordinator (toTxnCoordinator). It
// returns the coordinator's code, or COORDINATOR_NOT_AVAILABLE (which the
// client retries) when none answers.
func clusterAddOffsets(ctx context.Context, s *Server, d *txn.Driver, add *kmsg.AddOffsetsToTxnRequest) int16 {
	out, local, ok := toTxnCoordinator(ctx, s, d, add.TransactionalID, "add a transactional offset commit's group",
		func() kmsg.Request { return add })
	switch {
	case !ok:
		return kerr.CoordinatorNotAvailable.Code
	case local:
		return localAddOffsets(ctx, d, add)
	}
	return out.(*kmsg.AddOffsetsToTxnResponse).ErrorCode
}

// clusterVerify asks the coordinator of transactional id id
// (toTxnCoordinator) whether parts are in its open transaction under
// producer pid and epoch, with AddPartitionsToTxn v4 (VerifyOnly); with
// add (a Produce v12 of KIP-890 part 2) it adds them instead, with v5. It
// returns each partition's code as the coordinator gave it
// (verifyTxnProduce maps them with produceTxnCode), or a code for the
// whole produce: NOT_ENOUGH_REPLICAS (retriable, as Kafka answers) when no
// coordinator answers.
func clusterVerify(ctx context.Context, s *Server, d *txn.Driver, id string, pid int64, epoch int16, parts []txn.TopicPartition, add bool) (map[txn.TopicPartition]int16, int16, error) {
	out, local, ok := toTxnCoordinator(ctx, s, d, id, "verify a transactional produce",
		func() kmsg.Request { return txn.PartitionsRequest(id, pid, epoch, parts, !add) })
	switch {
	case !ok:
		return nil, kerr.NotEnoughReplicas.Code, nil
	case local:
		fn := d.Verify
		if add {
			fn = d.Add
		}
		codes, err := fn(ctx, id, pid, epoch, parts)
		return codes, 0, err
	}
	resp := out.(*kmsg.AddPartitionsToTxnResponse)
	if resp.ErrorCode != 0 {
		return nil, resp.ErrorCode, nil
	}
	codes := txn.PartitionCodes(resp, len(parts))
	for _, tp := range parts {
		if _, ok := codes[tp]; !ok {
			codes[tp] = kerr.NotEnoughReplicas.Code // not answered: retry
		}
	}
	return codes, 0, nil
}
