package quorum

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a node's Prometheus metrics, registered only when
// Options.Registerer is set.
type metrics struct {
	term, commit, applied, isLeader, leader prometheus.Gauge
	leaderChanges                           prometheus.Counter
	proposals                               *prometheus.CounterVec
	proposalRetries                         prometheus.Counter
	messagesSent, messagesDropped           prometheus.Counter
	dialFailures                            prometheus.Counter
	persistSeconds                          prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "weir", Subsystem: "quorum", Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weir", Subsystem: "quorum", Name: name, Help: help})
	}
	m := &metrics{
		term:            g("term", "Current raft term of this voter."),
		commit:          g("commit_index", "Highest raft index this voter knows committed."),
		applied:         g("applied_index", "Highest raft index applied to the state machine."),
		isLeader:        g("is_leader", "1 if this voter is the raft leader (the active controller)."),
		leader:          g("leader_id", "Node id of the leader this voter knows of, 0 if none."),
		leaderChanges:   c("leader_changes_total", "Times the leader this voter knows of changed."),
		messagesSent:    c("messages_sent_total", "Raft messages written to other voters."),
		messagesDropped: c("messages_dropped_total", "Raft messages dropped: peer queue full, peer unreachable, or too large."),
		dialFailures:    c("dial_failures_total", "Failed connection attempts to other voters."),
		proposalRetries: c("proposal_retries_total", "Proposals raft dropped (leadership transfer, too much uncommitted) and the node proposed again."),
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weir", Subsystem: "quorum", Name: "proposals_total",
			Help: "Proposals by result: applied, not_leader, dropped, leadership_lost, closed, error."}, []string{"result"}),
		persistSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "weir", Subsystem: "quorum", Name: "persist_seconds",
			Help: "Time to persist one raft Ready (synced Pebble batch).", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9)}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, col := range []prometheus.Collector{m.term, m.commit, m.applied, m.isLeader, m.leader, m.leaderChanges,
		m.proposals, m.proposalRetries, m.messagesSent, m.messagesDropped, m.dialFailures, m.persistSeconds} {
		if err := reg.Register(col); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(errors.New("quorum: register metrics"), err)
	}
	return m, nil
}
