package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the instance's Prometheus metrics, in a registry of its own
// (never the global one: several instances may share a process).
type metrics struct {
	reg *prometheus.Registry

	processed      *prometheus.CounterVec   // task
	lag            *prometheus.GaugeVec     // topic, partition
	commitTime     prometheus.Histogram     //
	commits        prometheus.Counter       //
	commitFailures *prometheus.CounterVec   // reason
	commitStalled  prometheus.Gauge         //
	restored       *prometheus.CounterVec   // task, store
	restoreLeft    *prometheus.GaugeVec     // task, store
	dropped        *prometheus.CounterVec   // task, reason
	enforced       *prometheus.CounterVec   // task
	deserErrors    *prometheus.CounterVec   // topic
	tasks          prometheus.Gauge         //
	rebalanceDur   *prometheus.HistogramVec // callback
	transactions   *prometheus.CounterVec   // result
	restarts       prometheus.Counter       //
	// loop is where the group consumer's loop spends its time, per
	// phase; loopPhase holds its counters (a Vec lookup per use would
	// hash the label each time).
	loop      *prometheus.CounterVec // phase
	loopPhase [numPhases]prometheus.Counter
}

// phase is a part of the group consumer's loop (weir_loop_seconds_total).
type phase int

const (
	phasePoll       phase = iota // waiting for fetched records, processing allowed
	phaseHeld                    // waiting for fetched records while back-pressure holds processing
	phaseHandoff                 // handing fetched records to their tasks
	phaseProcess                 // running the tasks (and their punctuators)
	phaseCommit                  // a commit's start: flushing stores, handing their records to the producer
	phaseCommitWait              // finishing a pipelined commit: waiting for acknowledgements, committing offsets
	numPhases
)

var phaseNames = [numPhases]string{"poll", "held", "handoff", "process", "commit", "commit_wait"}

// spent adds d to the time spent in p.
func (m *metrics) spent(p phase, d time.Duration) { m.loopPhase[p].Add(d.Seconds()) }

func newMetrics(app, instance string) *metrics {
	labels := prometheus.Labels{"application": app, "instance": instance}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_records_processed_total", Help: "Input records processed, per task.", ConstLabels: labels,
		}, []string{"task"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_consumer_lag_records", Help: "Records between the last fetched offset and the high watermark, per input partition.", ConstLabels: labels,
		}, []string{"topic", "partition"}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weir_commit_latency_seconds", Help: "Time to commit: flush stores, flush producer, commit offsets.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_commits_total", Help: "Commits completed.", ConstLabels: labels,
		}),
		commitFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_commit_failures_total", Help: "Commit attempts that failed with an error worth retrying, per reason: timeout (the stores' changelogs, the output or the offset commit were not acknowledged within the commit timeout: the broker is unreachable; retried with backoff while processing pauses), unreachable (the offset commit failed with a network or retriable error; retried the same way), rebalance (the group rebalances or no longer knows this member; the next commit retries).", ConstLabels: labels,
		}, []string{"reason"}),
		commitStalled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_commit_stalled", Help: "1 while a commit waits to be retried after it could not reach the broker (processing and fetching are paused meanwhile), else 0.", ConstLabels: labels,
		}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_restored_records_total", Help: "Changelog records replayed into stores, per task and store.", ConstLabels: labels,
		}, []string{"task", "store"}),
		restoreLeft: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weir_restore_remaining_records", Help: "Changelog records still to replay, per task and store (0 once restored).", ConstLabels: labels,
		}, []string{"task", "store"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_dropped_records_total", Help: "Records dropped on purpose (late records of closed windows), per task and reason.", ConstLabels: labels,
		}, []string{"task", "reason"}),
		enforced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_enforced_processing_total", Help: "Records a task processed without waiting any longer (MaxTaskIdle) for an input partition that might hold earlier records, per task.", ConstLabels: labels,
		}, []string{"task"}),
		deserErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_deserialization_errors_total", Help: "Input records that failed to deserialize and were skipped or dead-lettered.", ConstLabels: labels,
		}, []string{"topic"}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_active_tasks", Help: "Tasks running on this instance.", ConstLabels: labels,
		}),
		rebalanceDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "weir_rebalance_callback_seconds", Help: "Time spent in rebalance callbacks (restores included).", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"callback"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_transactions_total", Help: "Transactions ended under exactly-once, per result: committed, or aborted (a rebalance took partitions, the membership was lost, or the commit failed; the tasks resumed from the last committed transaction).", ConstLabels: labels,
		}, []string{"result"}),
	}
	m.loop = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_loop_seconds_total", Help: "Wall time the group consumer's loop spent, per phase: poll (waiting for fetched records), held (waiting for fetched records while back-pressure holds processing), handoff (handing fetched records to tasks), process (running tasks), commit (flushing stores and handing their records to the producer; under exactly-once the whole transaction's commit), commit_wait (waiting for a pipelined commit's acknowledgements and committing its offsets).", ConstLabels: labels,
	}, []string{"phase"})
	for p, name := range phaseNames {
		m.loopPhase[p] = m.loop.WithLabelValues(name)
	}
	m.restarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "weir_client_restarts_total", Help: "Times the instance replaced its transactional client under exactly-once after a commit's outcome was unknown or its producer was fenced: its tasks resumed from the last committed transaction.", ConstLabels: labels,
	})
	m.reg.MustRegister(m.restarts, m.loop, m.transactions, m.processed, m.lag, m.commitTime, m.commits, m.commitFailures, m.commitStalled, m.restored, m.restoreLeft, m.dropped, m.enforced, m.deserErrors, m.tasks, m.rebalanceDur)
	return m
}
