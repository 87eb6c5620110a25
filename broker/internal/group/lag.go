package group

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Committed is one committed offset of a group.
type Committed struct {
	Group     GroupID
	Topic     string
	Partition int32
	Offset    int64
}

// Committed returns every committed offset, ordered by group, topic and
// partition.
func (c *Coordinator) Committed() []Committed {
	var out []Committed
	for _, id := range sortedIDs(c.groups) {
		g := c.groups[id]
		for _, tp := range sortedTPs(g.offsets) {
			out = append(out, Committed{Group: id, Topic: tp.topic, Partition: tp.partition, Offset: g.offsets[tp].offset})
		}
	}
	return out
}

// Lag is how far a group's committed offset trails a partition's log end.
type Lag struct {
	Committed
	// LogEnd is the partition's log end offset.
	LogEnd int64
	// Lag is LogEnd minus the committed offset, never below zero.
	Lag int64
}

// LogEnds tells the lag computation where each partition's log ends; ok is
// false for a partition that does not exist (any more).
type LogEnds func(topic string, partition int32) (end int64, ok bool)

// Lag returns the lag of every committed offset whose partition exists.
func (d *Driver) Lag(ends LogEnds) []Lag {
	d.mu.Lock()
	committed := d.c.Committed()
	d.mu.Unlock()
	out := make([]Lag, 0, len(committed))
	for _, c := range committed {
		end, ok := ends(c.Topic, c.Partition)
		if !ok {
			continue
		}
		out = append(out, Lag{Committed: c, LogEnd: end, Lag: max(end-c.Offset, 0)})
	}
	return out
}

var (
	lagLabels     = []string{"group", "topic", "partition"}
	committedDesc = prometheus.NewDesc("weir_group_committed_offset", "Offset committed by a consumer group for a partition.", lagLabels, nil)
	logEndDesc    = prometheus.NewDesc("weir_group_log_end_offset", "Log end offset of a partition a consumer group has committed for.", lagLabels, nil)
	lagDesc       = prometheus.NewDesc("weir_group_lag", "Records between a consumer group's committed offset and the partition's log end.", lagLabels, nil)
)

// LagCollector exposes consumer group lag to Prometheus, computed when
// scraped.
type LagCollector struct {
	d    *Driver
	ends LogEnds
}

// NewLagCollector returns a collector of d's lag, with log ends from ends.
func NewLagCollector(d *Driver, ends LogEnds) *LagCollector { return &LagCollector{d: d, ends: ends} }

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- committedDesc
	ch <- logEndDesc
	ch <- lagDesc
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.d.Lag(c.ends) {
		labels := []string{string(l.Group), l.Topic, strconv.Itoa(int(l.Partition))}
		ch <- prometheus.MustNewConstMetric(committedDesc, prometheus.GaugeValue, float64(l.Offset), labels...)
		ch <- prometheus.MustNewConstMetric(logEndDesc, prometheus.GaugeValue, float64(l.LogEnd), labels...)
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(l.Lag), labels...)
	}
}
