package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics registers the node's own gauges (weir_cluster_*), read
// from the committed image and the registration at scrape time.
func (n *Node) registerMetrics(reg prometheus.Registerer) error {
	brokers := func(fenced bool) func() float64 {
		return func() float64 {
			c := 0
			for _, b := range n.sm.Image().Brokers() {
				if b.Fenced == fenced {
					c++
				}
			}
			return float64(c)
		}
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "weir", Subsystem: "cluster", Name: "metadata_applied_offset",
			Help: "Offset of the metadata log this node's image has applied."}, func() float64 { return float64(n.sm.Image().Applied()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "weir", Subsystem: "cluster", Name: "brokers",
			Help: "Registered brokers in this node's metadata image, by state.", ConstLabels: prometheus.Labels{"state": "unfenced"}}, brokers(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "weir", Subsystem: "cluster", Name: "brokers",
			Help: "Registered brokers in this node's metadata image, by state.", ConstLabels: prometheus.Labels{"state": "fenced"}}, brokers(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "weir", Subsystem: "cluster", Name: "broker_epoch",
			Help: "This broker's epoch from its current registration; -1 when not registered."}, func() float64 { return float64(n.epoch.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Gatherer returns the registry of the node's metrics: the quorum's
// (weir_quorum_*) and its own (weir_cluster_*).
func (n *Node) Gatherer() prometheus.Gatherer { return n.metrics }
