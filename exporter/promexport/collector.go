// Package promexport exposes the core's state to Prometheus: a
// client_golang Collector that builds const metrics at scrape time for the
// pipeline's own figures (from exporter/metricset; no long-lived
// CounterVecs), and a /metrics handler that adds the traffic families,
// written straight in the text format (see traffic.go).
package promexport

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/processor/core"
)

// Collector exposes the pipeline's health figures of a core (and
// optionally its sockets) to Prometheus; the traffic families are served by
// NewHandler. It is an unchecked collector: a reload may change the
// families.
type Collector struct {
	core   *core.Core
	intake metricset.IntakeStats

	mu    sync.Mutex
	descs map[string]*prometheus.Desc // by metric name and help
}

// New returns a Collector; in may be nil when there are no sockets.
func New(c *core.Core, in metricset.IntakeStats) *Collector {
	return &Collector{core: c, intake: in, descs: map[string]*prometheus.Desc{}}
}

// Describe sends nothing: the collector is unchecked because a reload may
// change the families.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// desc returns the descriptor of m, made once per name and label set.
func (c *Collector) desc(m *metricset.Metric) *prometheus.Desc {
	key := m.Name + "\xff" + m.Help
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.descs[key]
	if d == nil {
		d = prometheus.NewDesc(m.Name, m.Help, m.LabelNames, nil)
		c.descs[key] = d
	}
	return d
}

// Collect builds the metrics from the current state.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range metricset.GatherHealth(c.core, c.intake) {
		d := c.desc(&m)
		for _, p := range m.Points {
			switch m.Kind {
			case metricset.Counter:
				if p.Start.IsZero() {
					ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, p.Value, p.Labels...)
				} else {
					ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, p.Value, p.Start, p.Labels...)
				}
			case metricset.Gauge:
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, p.Value, p.Labels...)
			case metricset.Histogram:
				b := make(map[float64]uint64, len(p.Hist.Bounds))
				for i, ub := range p.Hist.Bounds {
					b[ub] = p.Hist.Counts[i]
				}
				ch <- prometheus.MustNewConstHistogram(d, p.Hist.Count, p.Hist.Sum, b, p.Labels...)
			}
		}
	}
}
