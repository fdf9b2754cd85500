// Package metricset describes flowmetrics' metrics once, independent of any
// exposition library: names (Prometheus and OpenTelemetry), units, help,
// kinds, label names, and the current points read from the core. The
// Prometheus collector (exporter/promexport) and the OpenTelemetry receiver
// (receiver/flowmetricsreceiver) both convert from it, so the two packagings
// cannot drift apart.
package metricset

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/intake"
)

// Kind is a metric's type.
type Kind uint8

// Metric kinds.
const (
	Counter Kind = iota
	Gauge
	Histogram
)

// Namespace prefixes the pipeline's own metrics; traffic metrics use "flow".
const Namespace = "flowmetrics"

// Metric is one metric with its current points.
type Metric struct {
	// Name is the Prometheus name (with _total for counters).
	Name string
	// OTelName is the OpenTelemetry name; with Unit it translates to Name
	// in the Collector's Prometheus exporter.
	OTelName string
	// Unit is the UCUM unit (By, {packet}, s, ...).
	Unit string
	// Help describes the metric.
	Help string
	Kind Kind
	// LabelNames are the label names in the order of Point.Labels.
	LabelNames []string
	// Family is set for traffic metrics: the family the metric belongs to.
	Family string
	Points []Point
}

// Point is one series.
type Point struct {
	// Labels are the label values in LabelNames order; shared, read-only.
	Labels []string
	Value  float64
	// Start is the series' start time (zero when not tracked).
	Start time.Time
	// Other marks a family's overflow series.
	Other bool
	// Hist is set for histograms.
	Hist *HistogramValue
}

// HistogramValue is a cumulative histogram.
type HistogramValue struct {
	// Bounds are the upper bounds; Counts are cumulative per bound.
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// IntakeStats is what Gather reads from the sockets; *intake.Intake
// implements it.
type IntakeStats interface {
	Stats() []intake.SocketStats
	Latency() *health.Histogram
}

// Gather reads the current state of the core (and the sockets, when in is
// not nil) into metrics, traffic families first.
func Gather(c *core.Core, in IntakeStats) []Metric {
	return append(GatherTraffic(c), GatherHealth(c, in)...)
}

// Families returns the per-exporter totals and the configured families, in
// exposition order.
func Families(c *core.Core) []*aggregate.Family {
	return append([]*aggregate.Family{c.Totals()}, c.Families()...)
}

// TrafficMetrics returns the three traffic metrics of a family, without
// points.
func TrafficMetrics(f *aggregate.Family) (bytes, packets, flows Metric) {
	name := f.Spec().Name
	labels := f.LabelNames()
	by := joinLabels(labels)
	bytes = Metric{Name: "flow_" + name + "_bytes_total", OTelName: "flow." + name + ".bytes", Unit: "By",
		Help: "Bytes, corrected for sampling, by " + by + ".", LabelNames: labels, Family: name}
	packets = Metric{Name: "flow_" + name + "_packets_total", OTelName: "flow." + name + ".packets", Unit: "{packet}",
		Help: "Packets, corrected for sampling, by " + by + ".", LabelNames: labels, Family: name}
	flows = Metric{Name: "flow_" + name + "_flows_total", OTelName: "flow." + name + ".flows", Unit: "{flow}",
		Help: "Flow records (sFlow: samples), not scaled, by " + by + ".", LabelNames: labels, Family: name}
	return bytes, packets, flows
}

// GatherTraffic reads every family's series into metrics.
func GatherTraffic(c *core.Core) []Metric {
	var out []Metric
	var pts []aggregate.Point
	for _, f := range Families(c) {
		bytes, packets, flows := TrafficMetrics(f)
		pts = f.Collect(pts[:0])
		bytes.Points = make([]Point, len(pts))
		packets.Points = make([]Point, len(pts))
		flows.Points = make([]Point, len(pts))
		for i, p := range pts {
			bytes.Points[i] = Point{Labels: p.Labels, Value: float64(p.Bytes), Start: p.Start, Other: p.Other}
			packets.Points[i] = Point{Labels: p.Labels, Value: float64(p.Packets), Start: p.Start, Other: p.Other}
			flows.Points[i] = Point{Labels: p.Labels, Value: float64(p.Flows), Start: p.Start, Other: p.Other}
		}
		out = append(out, bytes, packets, flows)
	}
	return out
}

// GatherHealth reads the pipeline's own figures: families, exporters and
// (when in is not nil) sockets.
func GatherHealth(c *core.Core, in IntakeStats) []Metric {
	var out []Metric
	fams := Families(c)
	famSeries := newMetric("family_series", "{series}", "Series held by the family (live and frozen), not counting other.", Gauge, "family")
	famOther := newMetric("family_other_series", "{series}", "Overflow (other) series of the family.", Gauge, "family")
	famLimit := newMetric("family_series_limit", "{series}", "The family's configured series limit.", Gauge, "family")
	famFolded := newMetric("family_other_records_total", "{record}", "Records folded into an other series because the family was full.", Counter, "family")
	famEvicted := newMetric("family_evictions_total", "{series}", "Series frozen, by cause (idle, replaced).", Counter, "family", "cause")
	famResumed := newMetric("family_resumed_series_total", "{series}", "Series that came back and resumed from their last value.", Counter, "family")
	for _, f := range fams {
		name := f.Spec().Name
		st := f.Stats()
		famSeries.add(float64(st.Series), name)
		famOther.add(float64(st.OtherSeries), name)
		famLimit.add(float64(f.Spec().Limit), name)
		famFolded.add(float64(st.Folded), name)
		famEvicted.add(float64(st.EvictedIdle), name, "idle")
		famEvicted.add(float64(st.EvictedReplaced), name, "replaced")
		famResumed.add(float64(st.Resumed), name)
	}
	out = append(out, famSeries, famOther, famLimit, famFolded, famEvicted, famResumed)
	out = append(out, gatherExporters(c.Exporters())...)
	out = append(out, gatherEnrichment(c)...)
	if in != nil {
		out = append(out, gatherIntake(in)...)
	}
	return out
}

func newMetric(name, unit, help string, kind Kind, labels ...string) Metric {
	prom := Namespace + "_" + name
	otel := Namespace + "." + name
	switch {
	case kind == Counter:
		otel = Namespace + "." + trimSuffix(name, "_total")
	case unit == "s":
		otel = Namespace + "." + trimSuffix(name, "_seconds")
	}
	return Metric{Name: prom, OTelName: otel, Unit: unit, Help: help, Kind: kind, LabelNames: labels}
}

func trimSuffix(s, suf string) string {
	if len(s) >= len(suf) && s[len(s)-len(suf):] == suf {
		return s[:len(s)-len(suf)]
	}
	return s
}

func (m *Metric) add(v float64, labels ...string) {
	m.Points = append(m.Points, Point{Labels: labels, Value: v})
}

// addSince adds a counter's point whose count began at start (zero: not
// known).
func (m *Metric) addSince(start time.Time, v float64, labels ...string) {
	m.Points = append(m.Points, Point{Labels: labels, Value: v, Start: start})
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

func gatherExporters(t *health.Table) []Metric {
	datagrams := newMetric("datagrams_total", "{datagram}", "Datagrams received, by exporter and wire protocol.", Counter, "exporter", "protocol")
	records := newMetric("records_total", "{record}", "Flow records (sFlow: flow samples) decoded and counted, by exporter and wire protocol.", Counter, "exporter", "protocol")
	errs := newMetric("decode_errors_total", "{error}", "Datagrams or sets that could not be (fully) decoded, by reason.", Counter, "exporter", "reason")
	missing := newMetric("template_missing_sets_total", "{set}", "NetFlow v9/IPFIX data sets skipped because their template was not (yet) known.", Counter, "exporter")
	templates := newMetric("templates", "{template}", "NetFlow v9/IPFIX templates currently known for the exporter.", Gauge, "exporter")
	gaps := newMetric("sequence_gaps_total", "{gap}", "Gaps in the exporter's sequence numbers.", Counter, "exporter")
	lost := newMetric("sequence_lost_records_total", "{record}", "Flow records (sFlow: samples) estimated lost from sequence gaps.", Counter, "exporter")
	resets := newMetric("sequence_resets_total", "{reset}", "Sequence number jumps read as exporter restarts, not loss.", Counter, "exporter")
	rate := newMetric("sampling_rate", "", "Sampling rate (1:N) in force for the exporter's most recent records, and where it came from; while an sFlow agent's samples are scaled by the effective rate from their sample pool (source sample_pool), also the rate they state (source header).", Gauge, "exporter", "source")
	unresolved := newMetric("sampling_unresolved_records_total", "{record}", "Records for which no sampling rate was known; counted 1:1.", Counter, "exporter")
	lastSeen := newMetric("exporter_last_seen_timestamp_seconds", "s", "Unix time of the exporter's last datagram.", Gauge, "exporter")
	t.Each(func(e *health.Exporter) {
		ex := e.Addr.String()
		for _, p := range append([]flow.Protocol{flow.ProtoUnknown}, flow.Protocols...) {
			if v := e.Datagrams[p].Load(); v > 0 {
				datagrams.addSince(e.Created, float64(v), ex, p.String())
			}
			if v := e.Records[p].Load(); v > 0 {
				records.addSince(e.Created, float64(v), ex, p.String())
			}
		}
		for _, r := range health.Reasons() {
			// A refused datagram is counted before its exporter is
			// tracked, under exporter="": not one per exporter, always 0.
			if r == health.ReasonNotAllowed {
				continue
			}
			errs.addSince(e.Created, float64(e.DecodeErrors[r].Load()), ex, r.String())
		}
		missing.addSince(e.Created, float64(e.TemplateMissingSets.Load()), ex)
		templates.add(float64(e.Templates.Load()), ex)
		gaps.addSince(e.Created, float64(e.SequenceGaps.Load()), ex)
		lost.addSince(e.Created, float64(e.LostRecords.Load()), ex)
		resets.addSince(e.Created, float64(e.SequenceResets.Load()), ex)
		if r := e.SamplingRate.Load(); r > 0 {
			src := flow.RateSource(e.RateSource.Load())
			rate.add(float64(r), ex, src.String())
			// A rate derived from the one the records state (an sFlow
			// pool's effective rate): the stated one too, the rate the
			// exporter is configured with.
			if st := e.StatedRate.Load(); src == flow.RatePool && st > 0 {
				rate.add(float64(st), ex, flow.RateHeader.String())
			}
		}
		unresolved.addSince(e.Created, float64(e.Unresolved.Load()), ex)
		lastSeen.add(float64(e.LastSeen.Load())/1e9, ex)
	})
	u := t.Untracked()
	for _, r := range health.Reasons() {
		if v := u.DecodeErrors[r].Load(); v > 0 {
			errs.add(float64(v), "", r.String())
		}
	}
	exporters := newMetric("exporters", "{exporter}", "Exporters currently tracked.", Gauge)
	exporters.add(float64(t.Len()))
	evicted := newMetric("exporters_evicted_total", "{exporter}", "Exporters forgotten to stay within max_exporters.", Counter)
	evicted.add(float64(t.Evicted()))
	return []Metric{datagrams, records, errs, missing, templates, gaps, lost, resets, rate, unresolved, lastSeen, exporters, evicted}
}

func gatherIntake(in IntakeStats) []Metric {
	drops := newMetric("socket_drops_total", "{datagram}", "Datagrams the kernel dropped on the socket (receive buffer full).", Counter, "address", "socket")
	buf := newMetric("socket_receive_buffer_bytes", "By", "Effective socket receive buffer size.", Gauge, "address", "socket")
	buf.OTelName = Namespace + ".socket_receive_buffer"
	for _, s := range in.Stats() {
		idx := strconv.Itoa(s.Index)
		drops.add(float64(s.Drops), s.Address, idx)
		buf.add(float64(s.ReceiveBuffer), s.Address, idx)
	}
	lat := newMetric("processing_duration_seconds", "s", "Time from a datagram's receipt (when the receive call returned it; time queued in the socket buffer is not included) until its records are counted (datagrams of one exporter read in one batch are counted together).", Histogram)
	b, n, sum := in.Latency().Snapshot()
	h := &HistogramValue{Bounds: health.LatencyBuckets, Count: n, Sum: sum}
	for _, ub := range health.LatencyBuckets {
		h.Counts = append(h.Counts, b[ub])
	}
	lat.Points = []Point{{Hist: h}}
	return []Metric{drops, buf, lat}
}

// gatherEnrichment reads interface names and speeds, SNMP poll results and
// the state of the mmdb databases. Each metric has points only when its
// source is configured.
func gatherEnrichment(c *core.Core) []Metric {
	info := newMetric("interface_info", "", "Interface names and descriptions (static or from SNMP IF-MIB ifName/ifAlias), always 1; join on exporter and if_index (= in_if/out_if).", Gauge, "exporter", "if_index", "if_name", "if_alias")
	info.OTelName = Namespace + ".interface_info"
	// "bits/s" rather than UCUM's "bit/s": the Collector's Prometheus
	// exporter maps only some units to words ("By" to "bytes") and would
	// serve "bit/s" as _bit_per_second, not the name the alerts use.
	speed := newMetric("interface_speed_bits_per_second", "bits/s", "Interface speed (static, or SNMP ifSpeed/ifHighSpeed).", Gauge, "exporter", "if_index")
	speed.OTelName = Namespace + ".interface_speed"
	// The exporter is named as the families name it, without a zone (their
	// keys hold 16 address bytes), so that the join on exporter and if_index
	// finds a link-local exporter's interfaces. The families count fe80::1
	// on two links as one exporter; its interfaces are published once, from
	// the first link in address order (two series with the same labels
	// would fail the scrape).
	type ifKey struct {
		exporter netip.Addr
		index    uint32
	}
	published := map[ifKey]bool{}
	for _, i := range c.Interfaces().Snapshot() {
		k := ifKey{i.Exporter.WithZone(""), i.Index}
		if published[k] {
			continue
		}
		published[k] = true
		ex, idx := k.exporter.String(), strconv.FormatUint(uint64(i.Index), 10)
		// Names and aliases, polled or configured, become label values,
		// which must be valid UTF-8: client_golang's MustNewConstMetric
		// panics on anything else, and OTLP refuses it.
		info.add(1, ex, idx, enrich.CleanText(i.Name), enrich.CleanText(i.Alias))
		if i.Speed > 0 {
			speed.add(float64(i.Speed), ex, idx)
		}
	}
	polls := newMetric("snmp_polls_total", "{poll}", "SNMP IF-MIB polls of the exporter, by result (success, failure).", Counter, "exporter", "result")
	lastPoll := newMetric("snmp_last_success_timestamp_seconds", "s", "Unix time of the exporter's last successful SNMP poll.", Gauge, "exporter")
	polled := newMetric("snmp_interfaces", "{interface}", "Interfaces the exporter's last successful SNMP poll returned.", Gauge, "exporter")
	for _, p := range c.Interfaces().PollStatuses() {
		ex := p.Exporter.String()
		// The counts restart from zero when the exporter was forgotten
		// (max_exporters) and polled again: so does their start.
		polls.addSince(p.Since, float64(p.Successes), ex, "success")
		polls.addSince(p.Since, float64(p.Failures), ex, "failure")
		if !p.LastSuccess.IsZero() {
			lastPoll.add(float64(p.LastSuccess.UnixNano())/1e9, ex)
		}
		polled.add(float64(p.Interfaces), ex)
	}
	loads := newMetric("geoip_database_loads_total", "{load}", "Loads of an mmdb database (at start and when its file changed), by result (success, failure).", Counter, "database", "result")
	build := newMetric("geoip_database_build_timestamp_seconds", "s", "Build time of the mmdb database in use.", Gauge, "database")
	lastOK := newMetric("geoip_database_last_load_successful", "", "Whether the last check of the mmdb database's file found it in use or loaded it (1), or failed to (0: missing, unreadable or invalid; the version loaded before, if any, stays in use).", Gauge, "database")
	for _, g := range c.Enricher().Databases() {
		st := g.Status()
		db := st.Kind.String()
		loads.add(float64(st.Loads), db, "success")
		loads.add(float64(st.Failures), db, "failure")
		ok := 1.0
		if st.LastError != nil {
			ok = 0
		}
		lastOK.add(ok, db)
		if st.Loaded {
			build.add(float64(st.Build.Unix()), db)
		}
	}
	return []Metric{info, speed, polls, lastPoll, polled, loads, build, lastOK}
}
