package flowmetricsreceiver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/flowmetrics/flowmetrics/config"
	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// TestInterfaceInfoInvalidUTF8 converts an interface whose SNMP alias is
// Latin-1 (invalid UTF-8, which OTLP's protobuf strings refuse) in both
// attribute styles: the alias attribute carries U+FFFD, and every string
// attribute of every metric is valid UTF-8.
func TestInterfaceInfoInvalidUTF8(t *testing.T) {
	c := core.New(core.Config{MaxExporters: 4})
	ex := netip.MustParseAddr("127.0.0.1")
	c.Interfaces().SetPolled(ex, []enrich.Interface{{Index: 3, Name: "ge-0/0/3", Alias: "B\xfcro uplink"}}, time.Unix(1700000000, 0))
	ms := metricset.Gather(c, nil)
	for _, tt := range []struct{ style, metric, alias string }{
		{AttributesSemconv, "flowmetrics.interface_info", "flow.interface.alias"},
		{AttributesPrometheus, "flowmetrics.interface_info", "if_alias"},
	} {
		t.Run(tt.style, func(t *testing.T) {
			md, _ := newConverter(tt.style, component.BuildInfo{}).metrics(ms, time.Now())
			m, ok := findMetric(md, tt.metric)
			if !ok || m.Gauge().DataPoints().Len() != 1 {
				t.Fatalf("%s: missing or not one point", tt.metric)
			}
			v, _ := m.Gauge().DataPoints().At(0).Attributes().Get(tt.alias)
			if got, want := v.Str(), "B\uFFFDro uplink"; got != want {
				t.Errorf("%s = %q, want %q", tt.alias, got, want)
			}
			rms := md.ResourceMetrics()
			for i := 0; i < rms.Len(); i++ {
				sms := rms.At(i).ScopeMetrics()
				for j := 0; j < sms.Len(); j++ {
					mets := sms.At(j).Metrics()
					for k := 0; k < mets.Len(); k++ {
						checkUTF8(t, mets.At(k).Name(), pointAttrs(mets.At(k)))
					}
				}
			}
		})
	}
}

// pointAttrs returns the attributes of every point of m.
func pointAttrs(m pmetric.Metric) []pcommon.Map {
	var out []pcommon.Map
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
			out = append(out, m.Gauge().DataPoints().At(i).Attributes())
		}
	case pmetric.MetricTypeSum:
		for i := 0; i < m.Sum().DataPoints().Len(); i++ {
			out = append(out, m.Sum().DataPoints().At(i).Attributes())
		}
	case pmetric.MetricTypeHistogram:
		for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
			out = append(out, m.Histogram().DataPoints().At(i).Attributes())
		}
	}
	return out
}

// checkUTF8 fails the test for any string attribute that is not valid
// UTF-8.
func checkUTF8(t *testing.T, metric string, attrs []pcommon.Map) {
	t.Helper()
	for _, a := range attrs {
		for k, v := range a.All() {
			if v.Type() == pcommon.ValueTypeStr && !utf8.ValidString(v.Str()) {
				t.Errorf("%s: attribute %s = %q is not valid UTF-8", metric, k, v.Str())
			}
		}
	}
}

// endPoint is a NoRecordedValue point as a test sees it.
type endPoint struct {
	metric string
	attrs  map[string]any
	start  pcommon.Timestamp
	time   pcommon.Timestamp
}

// endPoints returns every NoRecordedValue point of md, failing the test for
// one that carries a value or shares its metric with another point.
func endPoints(t *testing.T, md pmetric.Metrics) []endPoint {
	t.Helper()
	var out []endPoint
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		m := ms.At(i)
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeSum:
			dps = m.Sum().DataPoints()
		case pmetric.MetricTypeGauge:
			dps = m.Gauge().DataPoints()
		default:
			continue
		}
		for j := 0; j < dps.Len(); j++ {
			dp := dps.At(j)
			if !dp.Flags().NoRecordedValue() {
				continue
			}
			if dp.ValueType() != pmetric.NumberDataPointValueTypeEmpty {
				t.Errorf("%s: the end of %v carries a value (%v)", m.Name(), dp.Attributes().AsRaw(), dp.DoubleValue())
			}
			if dps.Len() != 1 {
				t.Errorf("%s: an end shares its metric with %d other points", m.Name(), dps.Len()-1)
			}
			out = append(out, endPoint{m.Name(), dp.Attributes().AsRaw(), dp.StartTimestamp(), dp.Timestamp()})
		}
	}
	return out
}

// sumAll sums the values of every point of every Sum metric called name.
func sumAll(md pmetric.Metrics, name string) (total float64) {
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		if m := ms.At(i); m.Name() == name && m.Type() == pmetric.MetricTypeSum {
			total += sumOf(m)
		}
	}
	return total
}

// livePoint returns the one point of a Sum metric called name whose
// source.address is src and that is not an end.
func livePoint(t *testing.T, md pmetric.Metrics, name, src string) (pmetric.NumberDataPoint, bool) {
	t.Helper()
	var found []pmetric.NumberDataPoint
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		if m := ms.At(i); m.Name() == name && m.Type() == pmetric.MetricTypeSum {
			for j := 0; j < m.Sum().DataPoints().Len(); j++ {
				dp := m.Sum().DataPoints().At(j)
				if v, ok := dp.Attributes().Get("source.address"); ok && v.Str() == src && !dp.Flags().NoRecordedValue() {
					found = append(found, dp)
				}
			}
		}
	}
	if len(found) > 1 {
		t.Errorf("%s: %d live points for %s", name, len(found), src)
	}
	if len(found) == 0 {
		return pmetric.NumberDataPoint{}, false
	}
	return found[0], true
}

// TestDroppedSeriesEndsOnce drives a real core, on its own clock, through two
// series going idle, frozen and dropped together: the collection after the
// drop carries one NoRecordedValue point for each of their three metrics,
// each in a metric of its own, with its attributes and start time and no
// value; the next collection none; and when a source comes back its series
// is reported as before, resumed from its tombstone.
func TestDroppedSeriesEndsOnce(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Series.IdleTimeout = time.Minute
	cfg.Series.FrozenHold = 2 * time.Minute
	cfg.Families = []config.FamilyConfig{{Name: "src", Labels: []string{"exporter", "src_addr"}, Limit: 10}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c := core.New(cfg.flow().Core())
	conv := newConverter(AttributesSemconv, component.BuildInfo{})
	ex := c.Exporters().Get(netip.MustParseAddr("127.0.0.1"))
	send := func(now time.Time, src string, bytes uint64) {
		c.Process(ex, []flow.Record{{Exporter: ex.Addr, SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr("10.9.9.9"),
			IPVersion: 4, Proto: 6, Bytes: bytes, Packets: 1, Protocol: flow.NetFlowV5}}, now)
	}
	collect := func(now time.Time) pmetric.Metrics {
		c.Maintain(now)
		ms := metricset.Gather(c, nil)
		md, n := conv.metrics(ms, now)
		if n != md.DataPointCount() {
			t.Errorf("converter counts %d points, emits %d", n, md.DataPointCount())
		}
		// It remembers each series once, not once per metric of a family.
		series := 0
		for _, m := range ms {
			if m.Kind != metricset.Histogram && (m.Family == "" || strings.HasSuffix(m.OTelName, ".bytes")) {
				series += len(m.Points)
			}
		}
		if len(conv.prev) != series {
			t.Errorf("the converter remembers %d series, the collection had %d", len(conv.prev), series)
		}
		return md
	}
	t0 := time.Unix(1_700_000_000, 0)
	send(t0, "10.0.0.1", 100) // stays busy
	send(t0, "10.0.0.2", 500) // goes idle
	send(t0, "10.0.0.3", 700) // too
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	// Live, then frozen (idle_timeout): reported with its final value.
	for _, now := range []time.Time{t0, at(70 * time.Second)} {
		send(now, "10.0.0.1", 100)
		md := collect(now)
		if ends := endPoints(t, md); len(ends) != 0 {
			t.Fatalf("%v: ends %v while the series is held", now.Sub(t0), ends)
		}
		if dp, ok := livePoint(t, md, "flow.src.bytes", "10.0.0.2"); !ok || dp.DoubleValue() != 500 {
			t.Fatalf("%v: 10.0.0.2 not reported with its 500 bytes", now.Sub(t0))
		}
	}

	// Dropped after frozen_hold: one end per metric, then none.
	dropped := at(70*time.Second + 2*time.Minute)
	send(dropped, "10.0.0.1", 100)
	md := collect(dropped)
	ends := endPoints(t, md)
	want := map[string]bool{}
	for _, m := range []string{"flow.src.bytes", "flow.src.packets", "flow.src.flows"} {
		for _, src := range []string{"10.0.0.2", "10.0.0.3"} {
			want[fmt.Sprint(m, map[string]any{"flow.exporter.address": "127.0.0.1", "source.address": src})] = true
		}
	}
	for _, e := range ends {
		k := fmt.Sprint(e.metric, e.attrs) // fmt sorts map keys
		if !want[k] {
			t.Errorf("unexpected end of %s %v", e.metric, e.attrs)
			continue
		}
		delete(want, k)
		if e.start != pcommon.NewTimestampFromTime(t0) || e.time != pcommon.NewTimestampFromTime(dropped) {
			t.Errorf("%s: end start %v time %v, want %v and %v", e.metric, e.start, e.time, t0, dropped)
		}
	}
	if len(want) != 0 {
		t.Errorf("no end for %v", want)
	}
	if _, ok := livePoint(t, md, "flow.src.bytes", "10.0.0.2"); ok {
		t.Error("the dropped series is still reported")
	}
	// The ends carry no value: nothing is counted twice.
	if got := sumAll(md, "flow.src.bytes"); got != 400 {
		t.Errorf("flow.src.bytes sums to %v, want 400 (10.0.0.1 alone)", got)
	}
	if got := sumAll(md, "flow.exporter.bytes"); got != 1600 {
		t.Errorf("flow.exporter.bytes sums to %v, want 1600", got)
	}
	if ends := endPoints(t, collect(dropped.Add(10*time.Second))); len(ends) != 0 {
		t.Errorf("ends again: %v", ends)
	}

	// Back: resumed from its tombstone, reported as a live series again.
	back := dropped.Add(20 * time.Second)
	send(back, "10.0.0.2", 50)
	md = collect(back)
	if ends := endPoints(t, md); len(ends) != 0 {
		t.Errorf("ends when the series came back: %v", ends)
	}
	dp, ok := livePoint(t, md, "flow.src.bytes", "10.0.0.2")
	if !ok || dp.DoubleValue() != 550 || dp.StartTimestamp() != pcommon.NewTimestampFromTime(t0) || dp.Flags().NoRecordedValue() {
		t.Errorf("10.0.0.2 back: found %v, %v bytes from %v; want 550 from %v", ok, dp.DoubleValue(), dp.StartTimestamp(), t0)
	}
}

// TestRenamedInterfaceInfoEnds: when SNMP renames an interface, the
// interface_info gauge series with the old alias ends in the next
// collection (so joins on it do not see two names at once).
func TestRenamedInterfaceInfoEnds(t *testing.T) {
	c := core.New(core.Config{MaxExporters: 4})
	conv := newConverter(AttributesPrometheus, component.BuildInfo{})
	ex := netip.MustParseAddr("127.0.0.1")
	now := time.Unix(1_700_000_000, 0)
	c.Interfaces().SetPolled(ex, []enrich.Interface{{Index: 3, Name: "ge-0/0/3", Alias: "old uplink"}}, now)
	conv.metrics(metricset.Gather(c, nil), now)
	c.Interfaces().SetPolled(ex, []enrich.Interface{{Index: 3, Name: "ge-0/0/3", Alias: "new uplink"}}, now.Add(time.Minute))
	md, _ := conv.metrics(metricset.Gather(c, nil), now.Add(time.Minute))
	ends := endPoints(t, md)
	if len(ends) != 1 || ends[0].metric != "flowmetrics.interface_info" || ends[0].attrs["if_alias"] != "old uplink" || ends[0].start != 0 {
		t.Fatalf("ends %v, want the old alias's interface_info", ends)
	}
	if m, _ := findMetric(md, "flowmetrics.interface_info"); m.Type() != pmetric.MetricTypeGauge {
		t.Errorf("interface_info is a %v", m.Type())
	}
}

// srcCore returns a core with one family, src (exporter and source
// address) of the given limit, series frozen after a minute idle and
// dropped a minute later; a converter; and exporter 127.0.0.1.
func srcCore(limit int) (*core.Core, *converter, *health.Exporter) {
	c := core.New(core.Config{MaxExporters: 4, Options: aggregate.Options{TTL: time.Minute, Hold: time.Minute},
		Families: []aggregate.Spec{{Name: "src", Labels: []aggregate.Label{aggregate.LabelExporter, aggregate.LabelSrcAddr}, Limit: limit}}})
	return c, newConverter(AttributesSemconv, component.BuildInfo{}), c.Exporters().Get(netip.MustParseAddr("127.0.0.1"))
}

// TestOverflowSeriesEnds: an exporter's overflow series that goes idle and
// is dropped ends like any series, marked as the overflow series.
func TestOverflowSeriesEnds(t *testing.T) {
	c, conv, ex := srcCore(1)
	t0 := time.Unix(1_700_000_000, 0)
	c.Process(ex, []flow.Record{
		{Exporter: ex.Addr, SrcAddr: netip.MustParseAddr("10.0.0.1"), IPVersion: 4, Bytes: 1, Packets: 1},
		{Exporter: ex.Addr, SrcAddr: netip.MustParseAddr("10.0.0.2"), IPVersion: 4, Bytes: 1, Packets: 1}, // overflows
	}, t0)
	conv.metrics(metricset.Gather(c, nil), t0)
	for _, now := range []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute)} { // frozen, dropped
		c.Maintain(now)
		md, _ := conv.metrics(metricset.Gather(c, nil), now)
		ends := endPoints(t, md)
		if now == t0.Add(time.Minute) {
			if len(ends) != 0 {
				t.Fatalf("ends while frozen: %v", ends)
			}
			continue
		}
		overflow := 0
		for _, e := range ends {
			if e.attrs[overflowAttribute] == true {
				overflow++
				if len(e.attrs) != 2 || e.attrs["flow.exporter.address"] != "127.0.0.1" {
					t.Errorf("overflow end attributes %v", e.attrs)
				}
			}
		}
		if overflow != 3 {
			t.Errorf("%d ends of the overflow series, want 3 (bytes, packets, flows); ends %v", overflow, ends)
		}
	}
}

// TestRefusedEndsAreSentAgain: when the consumer refuses the collection
// that carried some series' ends (a memory_limiter, say), the next
// collection carries them again, except for a series that came back; once
// a collection is delivered they are not sent again. The ends kept for a
// refused collection are bounded.
func TestRefusedEndsAreSentAgain(t *testing.T) {
	c, conv, ex := srcCore(10)
	t0 := time.Unix(1_700_000_000, 0)
	send := func(now time.Time, srcs ...string) {
		for _, src := range srcs {
			c.Process(ex, []flow.Record{{Exporter: ex.Addr, SrcAddr: netip.MustParseAddr(src), IPVersion: 4, Bytes: 100, Packets: 1}}, now)
		}
	}
	refused := errors.New("data refused due to high memory usage")
	// step collects at t0+d and answers err; it returns the ended
	// source addresses, one per end point.
	step := func(d time.Duration, err error) []string {
		now := t0.Add(d)
		c.Maintain(now)
		md, n := conv.metrics(metricset.Gather(c, nil), now)
		if n != md.DataPointCount() {
			t.Errorf("%v: converter counts %d points, emits %d", d, n, md.DataPointCount())
		}
		conv.delivered(err)
		var out []string
		for _, e := range endPoints(t, md) {
			out = append(out, fmt.Sprint(e.attrs["source.address"]))
		}
		slices.Sort(out)
		return out
	}
	check := func(d time.Duration, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%v: ends of %v, want %v", d, got, want)
		}
	}
	two, three := []string{"10.0.0.2", "10.0.0.2", "10.0.0.2"}, []string{"10.0.0.3", "10.0.0.3", "10.0.0.3"}
	send(t0, "10.0.0.1", "10.0.0.2", "10.0.0.3")
	check(0, step(0, nil))
	send(t0.Add(time.Minute), "10.0.0.1")
	check(time.Minute, step(time.Minute, nil)) // .2 and .3 frozen
	send(t0.Add(2*time.Minute), "10.0.0.1")
	check(2*time.Minute, step(2*time.Minute, refused), append(two, three...)...) // dropped; refused
	send(t0.Add(130*time.Second), "10.0.0.1", "10.0.0.2")                        // .2 comes back
	check(130*time.Second, step(130*time.Second, refused), three...)             // .3 again; refused again
	send(t0.Add(140*time.Second), "10.0.0.1")
	check(140*time.Second, step(140*time.Second, nil), three...) // .3 again, delivered
	check(150*time.Second, step(150*time.Second, nil))           // and no more

	// Bounded: with room for one series, a refused collection's first
	// ended series is sent again and the other is not.
	defer func(n int) { maxCarriedEnds = n }(maxCarriedEnds)
	maxCarriedEnds = 1
	send(t0.Add(160*time.Second), "10.0.0.4", "10.0.0.5")
	check(160*time.Second, step(160*time.Second, nil))
	for _, d := range []time.Duration{220 * time.Second, 280 * time.Second} { // frozen, dropped
		send(t0.Add(d), "10.0.0.1", "10.0.0.2")
		c.Maintain(t0.Add(d))
	}
	ends := step(290*time.Second, refused)
	if len(ends) != 6 { // .4 and .5, three metrics each
		t.Fatalf("ends of %v, want those of 10.0.0.4 and 10.0.0.5", ends)
	}
	if again := step(300*time.Second, nil); len(again) != 3 || again[0] != again[2] {
		t.Errorf("ends sent again: %v, want the three of one series", again)
	}
}
