package flowmetricsreceiver

import (
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

// converter turns a metricset into pmetric.Metrics.
type converter struct {
	style   string
	version string
	started pcommon.Timestamp
}

func newConverter(style string, bi component.BuildInfo) *converter {
	return &converter{style: style, version: bi.Version, started: pcommon.NewTimestampFromTime(time.Now())}
}

// metrics converts ms and returns the number of data points.
func (c *converter) metrics(ms []metricset.Metric, now time.Time) (pmetric.Metrics, int) {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	sm.Scope().SetVersion(c.version)
	ts := pcommon.NewTimestampFromTime(now)
	points := 0
	for i := range ms {
		m := &ms[i]
		if len(m.Points) == 0 {
			continue
		}
		om := sm.Metrics().AppendEmpty()
		om.SetName(m.OTelName)
		om.SetUnit(m.Unit)
		om.SetDescription(m.Help)
		switch m.Kind {
		case metricset.Counter:
			sum := om.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps := sum.DataPoints()
			dps.EnsureCapacity(len(m.Points))
			for _, p := range m.Points {
				dp := dps.AppendEmpty()
				c.attributes(dp.Attributes(), m.LabelNames, p)
				start := c.started
				if !p.Start.IsZero() {
					start = pcommon.NewTimestampFromTime(p.Start)
				}
				dp.SetStartTimestamp(start)
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(p.Value)
			}
			points += len(m.Points)
		case metricset.Gauge:
			dps := om.SetEmptyGauge().DataPoints()
			for _, p := range m.Points {
				dp := dps.AppendEmpty()
				c.attributes(dp.Attributes(), m.LabelNames, p)
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(p.Value)
			}
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
	return md, points
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
