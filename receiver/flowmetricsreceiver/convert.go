package flowmetricsreceiver

import (
	"encoding/binary"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/receiver/flowmetricsreceiver/internal/metadata"
)

// overflowAttribute marks a family's overflow series, as the OpenTelemetry
// SDK's own cardinality limit does.
const overflowAttribute = "otel.metric.overflow"

// attr says how one label becomes an attribute in the semconv style.
type attr struct {
	name    string
	integer bool              // emitted as an Int attribute
	values  map[string]string // value renames
}

// semconvAttrs maps label names to attribute names: semantic conventions
// where one exists, documented flow.* names where none does.
var semconvAttrs = map[string]attr{
	"exporter":   {name: "flow.exporter.address"},
	"in_if":      {name: "flow.interface.in", integer: true},
	"out_if":     {name: "flow.interface.out", integer: true},
	"direction":  {name: "flow.direction"},
	"proto":      {name: "network.transport"},
	"src_port":   {name: "source.port", integer: true},
	"dst_port":   {name: "destination.port", integer: true},
	"port":       {name: "server.port", integer: true},
	"src_addr":   {name: "source.address"},
	"dst_addr":   {name: "destination.address"},
	"src_as":     {name: "source.as.number", integer: true},
	"dst_as":     {name: "destination.as.number", integer: true},
	"ip_version": {name: "network.type", values: map[string]string{"4": "ipv4", "6": "ipv6"}},
	"protocol":   {name: "flow.protocol"},
	"reason":     {name: "error.type"},
	"family":     {name: "flow.family"},
	"cause":      {name: "flow.eviction.cause"},
	"source":     {name: "flow.sampling.source"},
	"address":    {name: "flow.listener.address"},
	"socket":     {name: "flow.listener.socket", integer: true},
	// Enrichment.
	"src_net":     {name: "flow.source.network"},
	"dst_net":     {name: "flow.destination.network"},
	"tenant":      {name: "flow.tenant"},
	"src_country": {name: "flow.source.country"},
	"dst_country": {name: "flow.destination.country"},
	"service":     {name: "flow.service"},
	"if_index":    {name: "flow.interface.index", integer: true},
	"if_name":     {name: "flow.interface.name"},
	"if_alias":    {name: "flow.interface.alias"},
	"result":      {name: "flow.result"},
	"database":    {name: "flow.enrich.database"},
}

// converter turns a metricset into pmetric.Metrics. It remembers the series
// of its last collection so that it can tell consumers which ones ended.
type converter struct {
	style   string
	version string
	// started is the start of the counters that have none of their own:
	// when the receiver started (set by Start).
	started pcommon.Timestamp

	// prev are the Sum and Gauge series of the last collection and cur
	// those of this one, in emission order; seen holds cur's keys. They
	// never hold more than one collection's series, which the families'
	// limits (and max_exporters, for the health metrics) bound.
	prev, cur []reported
	seen      map[string]struct{}
	// ends are the series whose ends this collection carries, kept until
	// the consumer answers (delivered); carry are the ends of a refused
	// collection, sent again with the next one. Each holds at most
	// maxCarriedEnds.
	ends, carry []reported
	group       *seriesGroup // the group metrics is filling
	key         []byte       // scratch for seriesKey
}

// reported is one series as the converter last emitted it: enough to emit
// its end. Kept small, there is one per series.
type reported struct {
	key   string       // seriesKey: the group, whether overflow, the label values
	group *seriesGroup // the metrics the series was emitted in
	start int64        // unix nanos; 0 when not tracked
}

// seriesGroup is the metrics, without their points, that share one set of
// series: a family's bytes, packets and flows, or one health metric.
type seriesGroup struct {
	name    string // the first metric's name, which keys the group's series
	family  string
	metrics []metricset.Metric
}

func newConverter(style string, bi component.BuildInfo) *converter {
	return &converter{style: style, version: bi.Version, started: pcommon.NewTimestampFromTime(time.Now()), seen: map[string]struct{}{}}
}

// metrics converts ms and returns the number of data points.
//
// A Sum or Gauge series emitted by the previous call and absent from ms (a
// family dropped it after series.frozen_hold, or an exporter was forgotten)
// gets one point with the NoRecordedValue flag and no value, with its
// attributes and start time and timestamp now: the OpenTelemetry form of a
// Prometheus staleness marker, which the Prometheus remote write exporter
// and Prometheus's OTLP receiver turn into a stale NaN and the Prometheus
// exporter into removing the series at once. Later calls do not repeat it.
func (c *converter) metrics(ms []metricset.Metric, now time.Time) (pmetric.Metrics, int) {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	sm.Scope().SetVersion(c.version)
	ts := pcommon.NewTimestampFromTime(now)
	clear(c.seen)
	c.group = nil
	points := 0
	for i := range ms {
		m := &ms[i]
		if len(m.Points) == 0 {
			continue
		}
		om := sm.Metrics().AppendEmpty()
		describe(om, m)
		switch m.Kind {
		case metricset.Counter:
			dps := setCumulativeSum(om).DataPoints()
			dps.EnsureCapacity(len(m.Points))
			for _, p := range m.Points {
				dp := dps.AppendEmpty()
				c.attributes(dp.Attributes(), m.LabelNames, p)
				dp.SetStartTimestamp(c.start(p))
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(p.Value)
			}
			c.remember(m)
			points += len(m.Points)
		case metricset.Gauge:
			dps := om.SetEmptyGauge().DataPoints()
			for _, p := range m.Points {
				dp := dps.AppendEmpty()
				c.attributes(dp.Attributes(), m.LabelNames, p)
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(p.Value)
			}
			c.remember(m)
			points += len(m.Points)
		case metricset.Histogram:
			h := om.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for _, p := range m.Points {
				dp := h.DataPoints().AppendEmpty()
				c.attributes(dp.Attributes(), m.LabelNames, p)
				dp.SetStartTimestamp(c.started)
				dp.SetTimestamp(ts)
				dp.SetCount(p.Hist.Count)
				dp.SetSum(p.Hist.Sum)
				dp.ExplicitBounds().FromRaw(p.Hist.Bounds)
				var prev uint64
				for _, cum := range p.Hist.Counts {
					dp.BucketCounts().Append(cum - prev)
					prev = cum
				}
				dp.BucketCounts().Append(p.Hist.Count - prev)
			}
			points += len(m.Points)
		}
	}
	points += c.ended(sm.Metrics(), ts)
	return md, points
}

// describe sets a metric's name, unit and description.
func describe(om pmetric.Metric, m *metricset.Metric) {
	om.SetName(m.OTelName)
	om.SetUnit(m.Unit)
	om.SetDescription(m.Help)
}

// setCumulativeSum makes om a cumulative monotonic Sum.
func setCumulativeSum(om pmetric.Metric) pmetric.Sum {
	sum := om.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	return sum
}

// start is a counter point's start time: its series' own, else the
// receiver's.
func (c *converter) start(p metricset.Point) pcommon.Timestamp {
	if p.Start.IsZero() {
		return c.started
	}
	return pcommon.NewTimestampFromTime(p.Start)
}

// remember records m's series as emitted by this collection. The metrics of
// a family come one after another and share their series: the series are
// remembered once, with the family's group.
func (c *converter) remember(m *metricset.Metric) {
	g := c.group
	if g == nil || m.Family == "" || m.Family != g.family {
		g = &seriesGroup{name: m.OTelName, family: m.Family}
		c.group = g
	}
	hdr := *m
	hdr.Points = nil
	g.metrics = append(g.metrics, hdr)
	for _, p := range m.Points {
		c.key = seriesKey(c.key[:0], g.name, p)
		if _, dup := c.seen[string(c.key)]; dup {
			continue
		}
		k := string(c.key)
		c.seen[k] = struct{}{}
		r := reported{key: k, group: g}
		if !p.Start.IsZero() {
			r.start = p.Start.UnixNano()
		}
		c.cur = append(c.cur, r)
	}
}

// seriesKey appends the identity of a series to buf: its group's name, a
// zero byte, 1 for an overflow series (else 0), and its label values, each
// preceded by its length (uvarint) so that no two label lists give the
// same key.
func seriesKey(buf []byte, name string, p metricset.Point) []byte {
	buf = append(buf, name...)
	if p.Other {
		buf = append(buf, 0, 1)
	} else {
		buf = append(buf, 0, 0)
	}
	for _, l := range p.Labels {
		buf = binary.AppendUvarint(buf, uint64(len(l)))
		buf = append(buf, l...)
	}
	return buf
}

// keyPoint returns the labels, start and overflow mark of a series from
// what remembers it.
func keyPoint(r *reported) metricset.Point {
	i := len(r.group.name) + 2
	p := metricset.Point{Other: r.key[i-1] == 1}
	if r.start != 0 {
		p.Start = time.Unix(0, r.start)
	}
	for i < len(r.key) {
		n, w := binary.Uvarint([]byte(r.key[i:]))
		i += w
		p.Labels = append(p.Labels, r.key[i:i+int(n)])
		i += int(n)
	}
	return p
}

// ended appends to dst the end of every series the previous collection had
// and this one has not, and makes this collection the previous one. It
// returns the number of points appended.
//
// Each end is a metric of its own: the Collector's Prometheus exporter (up
// to at least contrib v0.161.0) stops reading a metric's points at the
// first NoRecordedValue one, so a second end in the same metric would not
// remove its series there.
//
// The ends of a collection the consumer refused (delivered) are sent
// again, unless their series came back: a memory_limiter that refuses
// one collection must not leave those series lingering until
// metric_expiration or the lookback.
func (c *converter) ended(dst pmetric.MetricSlice, ts pcommon.Timestamp) int {
	n := 0
	clear(c.ends)
	c.ends = c.ends[:0]
	// A carried end's series is in neither prev nor cur of the collection
	// that refused it, so no series is ended twice here.
	for _, from := range [][]reported{c.prev, c.carry} {
		for i := range from {
			r := &from[i]
			if _, ok := c.seen[r.key]; ok {
				continue
			}
			n += c.end(dst, r, ts)
			if len(c.ends) < maxCarriedEnds {
				c.ends = append(c.ends, *r)
			}
		}
	}
	clear(c.carry)
	c.carry = c.carry[:0]
	clear(c.prev) // let go of the old series and groups
	c.prev, c.cur = c.cur, c.prev[:0]
	return n
}

// maxCarriedEnds bounds the ends kept for a refused collection: a
// consumer that refuses collection after collection while series churn
// must not grow the converter without bound. Past it, further ends are
// sent once only. A variable for the tests.
var maxCarriedEnds = 1 << 16

// end appends the end of series r, one metric per metric of its group,
// and returns the number of points appended.
func (c *converter) end(dst pmetric.MetricSlice, r *reported, ts pcommon.Timestamp) int {
	p := keyPoint(r)
	for j := range r.group.metrics {
		m := &r.group.metrics[j]
		om := dst.AppendEmpty()
		describe(om, m)
		var dp pmetric.NumberDataPoint
		if m.Kind == metricset.Counter {
			dp = setCumulativeSum(om).DataPoints().AppendEmpty()
			dp.SetStartTimestamp(c.start(p))
		} else {
			dp = om.SetEmptyGauge().DataPoints().AppendEmpty()
		}
		c.attributes(dp.Attributes(), m.LabelNames, p)
		dp.SetTimestamp(ts)
		dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	}
	return len(r.group.metrics)
}

// delivered tells the converter what the consumer answered for the last
// collection: when it refused it (err not nil), that collection's ends
// go out again with the next one.
func (c *converter) delivered(err error) {
	if err != nil {
		c.carry = append(c.carry[:0], c.ends...)
	}
	clear(c.ends)
	c.ends = c.ends[:0]
}

// attributes writes a point's labels as attributes in the configured style.
func (c *converter) attributes(dst pcommon.Map, names []string, p metricset.Point) {
	dst.EnsureCapacity(len(names) + 1)
	if c.style == AttributesPrometheus {
		for i, n := range names {
			dst.PutStr(n, p.Labels[i])
		}
		return
	}
	for i, n := range names {
		a, ok := semconvAttrs[n]
		if !ok {
			a = attr{name: n}
		}
		if p.Other && n != "exporter" {
			continue // the overflow series keeps only the exporter
		}
		v := p.Labels[i]
		if r, ok := a.values[v]; ok {
			v = r
		}
		if a.integer {
			if iv, err := strconv.ParseInt(v, 10, 64); err == nil {
				dst.PutInt(a.name, iv)
				continue
			}
		}
		dst.PutStr(a.name, v)
	}
	if p.Other {
		dst.PutBool(overflowAttribute, true)
	}
}
