package flowmetricsreceiver

import (
	"net/netip"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
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
