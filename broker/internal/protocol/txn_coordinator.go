package protocol

// The transaction coordinator (broker/internal/txn) as the server
// extension "txn": its driver over this broker's __transaction_state, its
// markers written to the local partition logs (a single node leads every
// partition), the __consumer_offsets ones also handed to the group
// coordinator, which makes a committed transaction's offsets visible. The
// transaction handlers (22 with a transactional id, 24, 25, 26, 65, 66) pass
// their requests to it.
//
// In cluster mode the driver serves only the __transaction_state
// partitions this broker leads, and its markers go to each partition's
// leader (txn_cluster.go).

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/group"
	"github.com/weir-dev/weir/broker/internal/topics"
	"github.com/weir-dev/weir/broker/internal/txn"
)

const txnExtensionName = "txn"

func init() { RegisterExtension(txnExtensionName, openTxnCoordinator) }

// txnCoordinator is the "txn" extension.
type txnCoordinator struct {
	d *txn.Driver
	// own moves the partitions served in cluster mode; nil on a single
	// node.
	own *coordOwnership
}

func (t *txnCoordinator) Close() error {
	if t.d == nil {
		return nil
	}
	if t.own != nil {
		t.own.close()
	}
	return t.d.Close()
}

// producerIDs hands the coordinator producer ids from the registry.
type producerIDs struct{ reg *topics.Registry }

func (p producerIDs) NextProducerID() (int64, error) { return p.reg.NextProducerID() }

func openTxnCoordinator(s *Server) (Extension, error) {
	if s.cfg.Cluster != nil {
		return openClusterTxnCoordinator(s)
	}
	var opts txn.Options
	opts.EnsureDefaults()
	tl := txn.OpenTopicLog(s.Topics, opts.StatePartitions, nil)
	opts.StatePartitions = tl.Partitions()
	opts.OffsetsPartitions = s.cfg.Groups.OffsetsPartitions
	// Taken now, while New opens the extensions in order ("group" before
	// "txn"): the markers run on the driver's goroutines, which must not
	// read the server's extension map while New still fills it.
	g, _ := s.Extension(groupExtensionName).(*groupCoordinator)
	if g != nil {
		opts.OffsetsPartitions = g.d.Partitions()
	}
	opts.ProducerIDs = producerIDs{s.Topics}
	opts.Topics = registryTopics{s.Topics}
	d, err := txn.OpenDriver(context.Background(), txn.DriverOptions{
		Coordinator: opts, Log: tl, Logger: s.Logger,
		Markers: func(ctx context.Context, m txn.Marker) ([]txn.TopicPartition, error) {
			return writeMarkers(ctx, s, g, m)
		},
	})
	if err != nil {
		return nil, err
	}
	abortOrphanTransactions(s, d)
	return &txnCoordinator{d: d}, nil
}

// abortOrphanTransactions ends, with an ABORT marker, every transaction a
// partition log found open at recovery whose producer id the coordinator
// does not know (no transactional id has it as its producer id, current or
// previous): nothing could ever end it, and it would hold the partition's
// last stable offset, and retention, where it starts for ever. Such a
// transaction comes from a transactional batch written without a
// transactional id, which Produce accepted before transactions existed. It
// runs once the coordinator has loaded __transaction_state and before the
// server takes requests (New opens the extensions first), so no producer
// the coordinator is about to learn of can be mistaken for one.
//
// A cluster does without it: its leaders refuse a transactional batch
// without a transactional id as a single node does, and write one with an
// id only once the id's coordinator has the partition in that producer's
// open transaction (clusterVerify), which that coordinator then ends; a
// follower holds only what its leader wrote. Nor could a leader tell an
// orphan there: the producer ids it finds belong to coordinators on every
// broker (TestClusterNoOrphanTransactions).
func abortOrphanTransactions(s *Server, d *txn.Driver) {
	known := map[int64]bool{}
	for _, id := range d.IDs() {
		if info, ok := d.Describe(string(id)); ok {
			known[int64(info.ProducerID)] = true
			known[int64(info.PrevProducerID)] = true
		}
	}
	for _, t := range s.Topics.List() {
		for i := range t.NumPartitions() {
			p, ok := t.Partition(i)
			if !ok {
				continue
			}
			tl, ok := p.Log().(topics.TxnLog)
			if !ok {
				continue
			}
			for _, ps := range tl.Producers() {
				if ps.TxnStartOffset < 0 || known[ps.ProducerID] {
					continue
				}
				err := tl.AppendMarker(context.Background(), topics.Marker{ProducerID: ps.ProducerID, Epoch: ps.Epoch, CoordinatorEpoch: -1}) // the broker's own: no coordinator epoch
				s.Logger.Warn("txn: aborted a transaction no transactional id owns (a transactional batch written without one), found open at recovery",
					"topic", t.Name(), "partition", i, "producer_id", ps.ProducerID, "first_offset", ps.TxnStartOffset, "err", err)
			}
		}
	}
}

// writeMarkers writes m's markers to the local logs (and hands those of
// __consumer_offsets to the group coordinator g, when there is one): the
// partitions whose marker is written, or that no longer exist, are
// returned.
func writeMarkers(ctx context.Context, s *Server, g *groupCoordinator, m txn.Marker) ([]txn.TopicPartition, error) {
	var done []txn.TopicPartition
	var errs []error
	for _, tp := range m.Partitions {
		t, ok := s.Topics.Get(tp.Topic)
		if !ok {
			done = append(done, tp) // deleted: nothing to mark
			continue
		}
		p, ok := t.Partition(tp.Partition)
		if !ok {
			done = append(done, tp)
			continue
		}
		tl, ok := p.Log().(topics.TxnLog)
		if !ok {
			done = append(done, tp) // a log without transactions
			continue
		}
		err := tl.AppendMarker(ctx, logMarker(m))
		if errors.Is(err, kerr.InvalidProducerEpoch) && markerDone(s.Logger, m, tp, -1, kerr.InvalidProducerEpoch.Code) {
			done = append(done, tp) // see markerDone
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("marker to %s/%d: %w", tp.Topic, tp.Partition, err))
			continue
		}
		if tp.Topic == group.OffsetsTopic && g != nil {
			if err := g.d.CompleteTxn(int64(m.ProducerID), m.Commit, tp.Partition); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		done = append(done, tp)
	}
	return done, errors.Join(errs...)
}

// txnDriver returns the transaction coordinator, or the error code and
// message to refuse a transactional request with.
func txnDriver(s *Server) (*txn.Driver, int16, *string) {
	t, ok := s.Extension(txnExtensionName).(*txnCoordinator)
	if !ok || t.d == nil {
		return nil, kerr.CoordinatorNotAvailable.Code, nil
	}
	return t.d, 0, nil
}

// TxnStats returns the transaction coordinator's counts; ok is false when
// the server has none.
func TxnStats(s *Server) (txn.Stats, bool) {
	t, ok := s.Extension(txnExtensionName).(*txnCoordinator)
	if !ok || t.d == nil {
		return txn.Stats{}, false
	}
	return t.d.Stats(), true
}

// handleTxnRequest passes a transaction request to the coordinator; refuse
// builds the answer when there is none.
func handleTxnRequest(ctx context.Context, s *Server, r *Request, refuse func(code int16) kmsg.Response) (kmsg.Response, error) {
	d, code, _ := txnDriver(s)
	if d == nil {
		return refuse(code), nil
	}
	if t, _ := s.Extension(txnExtensionName).(*txnCoordinator); t != nil && t.own != nil {
		t.own.sync(ctx) // serve the state partitions the view says are led here
	}
	resp, err := d.Handle(ctx, r.Body)
	if errors.Is(err, txn.ErrClosed) {
		return refuse(kerr.CoordinatorNotAvailable.Code), nil
	}
	return resp, err
}

// txnMetrics exposes the transaction coordinator's counts to Prometheus,
// read when scraped.
type txnMetrics struct {
	d                                  *txn.Driver
	open, committed, aborted, timedOut *prometheus.Desc
}

// txnCollector returns the collector of weir_txn_open and the
// weir_txn_*_total counters; nil without a transaction coordinator.
func txnCollector(s *Server) prometheus.Collector {
	t, ok := s.Extension(txnExtensionName).(*txnCoordinator)
	if !ok || t.d == nil {
		return nil
	}
	return &txnMetrics{
		d:         t.d,
		open:      prometheus.NewDesc("weir_txn_open", "Transactions open now (ongoing or writing their markers).", nil, nil),
		committed: prometheus.NewDesc("weir_txn_committed_total", "Transactions committed (every marker written) since the broker started.", nil, nil),
		aborted:   prometheus.NewDesc("weir_txn_aborted_total", "Transactions aborted (every marker written) since the broker started, timed-out ones included.", nil, nil),
		timedOut:  prometheus.NewDesc("weir_txn_timed_out_total", "Transactions aborted by the coordinator at their timeout since the broker started.", nil, nil),
	}
}

func (m *txnMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.open
	ch <- m.committed
	ch <- m.aborted
	ch <- m.timedOut
}

func (m *txnMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.d.Stats()
	ch <- prometheus.MustNewConstMetric(m.open, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(m.committed, prometheus.CounterValue, float64(st.Committed))
	ch <- prometheus.MustNewConstMetric(m.aborted, prometheus.CounterValue, float64(st.Aborted))
	ch <- prometheus.MustNewConstMetric(m.timedOut, prometheus.CounterValue, float64(st.TimedOut))
}
