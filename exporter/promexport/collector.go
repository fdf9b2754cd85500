// Package promexport exposes the core's state to Prometheus: a
// client_golang Collector that builds const metrics at scrape time from the
// families (no long-lived CounterVecs, no registered children per series)
// and from the pipeline's health figures.
package promexport

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/intake"
)

// Namespace prefixes the pipeline's own metrics; traffic metrics use "flow".
const Namespace = "flowmetrics"

type familyDescs struct {
	f                     *aggregate.Family
	bytes, packets, flows *prometheus.Desc
}

// Collector exposes a core (and optionally its intake) to Prometheus. It is
// an unchecked collector: the families, and so the metric names, may change
// on a configuration reload.
type Collector struct {
	core   *core.Core
	intake IntakeStats

	mu    sync.Mutex
	descs map[*aggregate.Family]*familyDescs

	datagrams, records, decodeErrors, templateMissing, templates     *prometheus.Desc
	seqGaps, lost, seqResets, rate, unresolved, lastSeen             *prometheus.Desc
	exporters, exportersEvicted                                      *prometheus.Desc
	famSeries, famOther, famLimit, famFolded, famEvicted, famResumed *prometheus.Desc
	sockDrops, sockBuf, latency                                      *prometheus.Desc
}

// IntakeStats is what the collector reads from the sockets; *intake.Intake
// implements it.
type IntakeStats interface {
	Stats() []intake.SocketStats
	Latency() *health.Histogram
}

// New returns a Collector; in may be nil when there are no sockets.
func New(c *core.Core, in IntakeStats) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	col := &Collector{
		core: c, intake: in, descs: map[*aggregate.Family]*familyDescs{},
		datagrams:        d("datagrams_total", "Datagrams received, by exporter and wire protocol.", "exporter", "protocol"),
		records:          d("records_total", "Flow records (sFlow: flow samples) decoded and counted, by exporter and wire protocol.", "exporter", "protocol"),
		decodeErrors:     d("decode_errors_total", "Datagrams or sets that could not be (fully) decoded, by reason.", "exporter", "reason"),
		templateMissing:  d("template_missing_sets_total", "NetFlow v9/IPFIX data sets skipped because their template was not (yet) known.", "exporter"),
		templates:        d("templates", "NetFlow v9/IPFIX templates currently known for the exporter.", "exporter"),
		seqGaps:          d("sequence_gaps_total", "Gaps in the exporter's sequence numbers.", "exporter"),
		lost:             d("sequence_lost_records_total", "Flow records (sFlow: samples) estimated lost from sequence gaps.", "exporter"),
		seqResets:        d("sequence_resets_total", "Sequence number jumps read as exporter restarts, not loss.", "exporter"),
		rate:             d("sampling_rate", "Sampling rate (1:N) in force for the exporter's most recent records, and where it came from.", "exporter", "source"),
		unresolved:       d("sampling_unresolved_records_total", "Records for which no sampling rate was known; counted 1:1.", "exporter"),
		lastSeen:         d("exporter_last_seen_timestamp_seconds", "Unix time of the exporter's last datagram.", "exporter"),
		exporters:        d("exporters", "Exporters currently tracked."),
		exportersEvicted: d("exporters_evicted_total", "Exporters forgotten to stay within max_exporters."),
		famSeries:        d("family_series", "Series held by the family (live and frozen), not counting other.", "family"),
		famOther:         d("family_other_series", "Overflow (other) series of the family.", "family"),
		famLimit:         d("family_series_limit", "The family's configured series limit.", "family"),
		famFolded:        d("family_other_records_total", "Records folded into an other series because the family was full.", "family"),
		famEvicted:       d("family_evictions_total", "Series frozen, by cause (idle, replaced).", "family", "cause"),
		famResumed:       d("family_resumed_series_total", "Series that came back and resumed from their last value.", "family"),
		sockDrops:        d("socket_drops_total", "Datagrams the kernel dropped on the socket (receive buffer full).", "address", "socket"),
		sockBuf:          d("socket_receive_buffer_bytes", "Effective socket receive buffer size.", "address", "socket"),
		latency:          d("processing_duration_seconds", "Time to decode and count one datagram."),
	}
	return col
}

// familyDescs returns the descriptors of a family, made once per family.
func (c *Collector) familyDescs(f *aggregate.Family) *familyDescs {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.descs[f]; d != nil {
		return d
	}
	name := f.Spec().Name
	labels := f.LabelNames()
	d := &familyDescs{f: f,
		bytes:   prometheus.NewDesc("flow_"+name+"_bytes_total", "Bytes, corrected for sampling, by "+joinLabels(labels)+".", labels, nil),
		packets: prometheus.NewDesc("flow_"+name+"_packets_total", "Packets, corrected for sampling, by "+joinLabels(labels)+".", labels, nil),
		flows:   prometheus.NewDesc("flow_"+name+"_flows_total", "Flow records (sFlow: samples), not scaled, by "+joinLabels(labels)+".", labels, nil),
	}
	c.descs[f] = d
	return d
}

// families returns the totals and the current families' descriptors, and
// forgets the descriptors of families a reload removed.
func (c *Collector) families() []*familyDescs {
	fams := append([]*aggregate.Family{c.core.Totals()}, c.core.Families()...)
	out := make([]*familyDescs, len(fams))
	for i, f := range fams {
		out[i] = c.familyDescs(f)
	}
	c.mu.Lock()
	if len(c.descs) > len(fams) {
		keep := map[*aggregate.Family]bool{}
		for _, f := range fams {
			keep[f] = true
		}
		for f := range c.descs {
			if !keep[f] {
				delete(c.descs, f)
			}
		}
	}
	c.mu.Unlock()
	return out
}

func joinLabels(l []string) string {
	s := ""
	for i, x := range l {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}

// Describe sends nothing: the collector is unchecked because a reload may
// change the families.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect builds the metrics from the current state.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var pts []aggregate.Point
	for _, fd := range c.families() {
		pts = fd.f.Collect(pts[:0])
		for i := range pts {
			p := &pts[i]
			ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(fd.bytes, prometheus.CounterValue, float64(p.Bytes), p.Start, p.Labels...)
			ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(fd.packets, prometheus.CounterValue, float64(p.Packets), p.Start, p.Labels...)
			ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(fd.flows, prometheus.CounterValue, float64(p.Flows), p.Start, p.Labels...)
		}
		st := fd.f.Stats()
		name := fd.f.Spec().Name
		ch <- prometheus.MustNewConstMetric(c.famSeries, prometheus.GaugeValue, float64(st.Series), name)
		ch <- prometheus.MustNewConstMetric(c.famOther, prometheus.GaugeValue, float64(st.OtherSeries), name)
		ch <- prometheus.MustNewConstMetric(c.famLimit, prometheus.GaugeValue, float64(fd.f.Spec().Limit), name)
		ch <- prometheus.MustNewConstMetric(c.famFolded, prometheus.CounterValue, float64(st.Folded), name)
		ch <- prometheus.MustNewConstMetric(c.famEvicted, prometheus.CounterValue, float64(st.EvictedIdle), name, "idle")
		ch <- prometheus.MustNewConstMetric(c.famEvicted, prometheus.CounterValue, float64(st.EvictedReplaced), name, "replaced")
		ch <- prometheus.MustNewConstMetric(c.famResumed, prometheus.CounterValue, float64(st.Resumed), name)
	}
	exps := c.core.Exporters()
	exps.Each(func(e *health.Exporter) { c.collectExporter(ch, e, e.Addr.String()) })
	if u := exps.Untracked(); u != nil {
		for _, r := range health.Reasons() {
			if v := u.DecodeErrors[r].Load(); v > 0 {
				ch <- prometheus.MustNewConstMetric(c.decodeErrors, prometheus.CounterValue, float64(v), "", r.String())
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.exporters, prometheus.GaugeValue, float64(exps.Len()))
	ch <- prometheus.MustNewConstMetric(c.exportersEvicted, prometheus.CounterValue, float64(exps.Evicted()))
	if c.intake != nil {
		for _, s := range c.intake.Stats() {
			idx := strconv.Itoa(s.Index)
			ch <- prometheus.MustNewConstMetric(c.sockDrops, prometheus.CounterValue, float64(s.Drops), s.Address, idx)
			ch <- prometheus.MustNewConstMetric(c.sockBuf, prometheus.GaugeValue, float64(s.ReceiveBuffer), s.Address, idx)
		}
		b, n, sum := c.intake.Latency().Snapshot()
		ch <- prometheus.MustNewConstHistogram(c.latency, n, sum, b)
	}
}

func (c *Collector) collectExporter(ch chan<- prometheus.Metric, e *health.Exporter, ex string) {
	for _, p := range flow.Protocols {
		if v := e.Datagrams[p].Load(); v > 0 {
			ch <- prometheus.MustNewConstMetric(c.datagrams, prometheus.CounterValue, float64(v), ex, p.String())
		}
		if v := e.Records[p].Load(); v > 0 {
			ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(v), ex, p.String())
		}
	}
	if v := e.Datagrams[flow.ProtoUnknown].Load(); v > 0 {
		ch <- prometheus.MustNewConstMetric(c.datagrams, prometheus.CounterValue, float64(v), ex, flow.ProtoUnknown.String())
	}
	for _, r := range health.Reasons() {
		ch <- prometheus.MustNewConstMetric(c.decodeErrors, prometheus.CounterValue, float64(e.DecodeErrors[r].Load()), ex, r.String())
	}
	ch <- prometheus.MustNewConstMetric(c.templateMissing, prometheus.CounterValue, float64(e.TemplateMissingSets.Load()), ex)
	ch <- prometheus.MustNewConstMetric(c.templates, prometheus.GaugeValue, float64(e.Templates.Load()), ex)
	ch <- prometheus.MustNewConstMetric(c.seqGaps, prometheus.CounterValue, float64(e.SequenceGaps.Load()), ex)
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(e.LostRecords.Load()), ex)
	ch <- prometheus.MustNewConstMetric(c.seqResets, prometheus.CounterValue, float64(e.SequenceResets.Load()), ex)
	if r := e.SamplingRate.Load(); r > 0 {
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, float64(r), ex, flow.RateSource(e.RateSource.Load()).String())
	}
	ch <- prometheus.MustNewConstMetric(c.unresolved, prometheus.CounterValue, float64(e.Unresolved.Load()), ex)
	ch <- prometheus.MustNewConstMetric(c.lastSeen, prometheus.GaugeValue, float64(e.LastSeen.Load())/1e9, ex)
}
