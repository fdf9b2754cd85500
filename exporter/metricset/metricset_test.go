package metricset_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/otlptranslator"

	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/intake"
)

type intakeStats struct{}

func (intakeStats) Stats() []intake.SocketStats { return []intake.SocketStats{{Address: ":2055"}} }
func (intakeStats) Latency() *health.Histogram  { return &health.Histogram{} }

// TestOTelNamesTranslateToPrometheusNames checks that the Collector's
// Prometheus exporter (and Prometheus's own OTLP receiver), which name a
// metric from its OpenTelemetry name, unit and type with otlptranslator,
// serve every metric under the standalone exporter's name: the alerts and
// dashboards use those names.
func TestOTelNamesTranslateToPrometheusNames(t *testing.T) {
	c := core.New(core.Config{MaxExporters: 4, Families: []aggregate.Spec{
		{Name: "interface", Labels: []aggregate.Label{aggregate.LabelExporter, aggregate.LabelInIf}, Limit: 10},
		{Name: "src_host", Labels: []aggregate.Label{aggregate.LabelSrcAddr}, Limit: 10},
		{Name: "as_pair_v2", Labels: []aggregate.Label{aggregate.LabelSrcAS, aggregate.LabelDstAS}, Limit: 10},
	}})
	ex := c.Exporters().Get(netip.MustParseAddr("192.0.2.1"))
	c.Process(ex, []flow.Record{{Exporter: ex.Addr, Bytes: 100, Packets: 1, ScaledBytes: 100, ScaledPackets: 1, IPVersion: 4}}, time.Now())
	namer := otlptranslator.MetricNamer{WithMetricSuffixes: true}
	types := map[metricset.Kind]otlptranslator.MetricType{
		metricset.Counter: otlptranslator.MetricTypeMonotonicCounter, metricset.Gauge: otlptranslator.MetricTypeGauge,
		metricset.Histogram: otlptranslator.MetricTypeHistogram,
	}
	ms := metricset.Gather(c, intakeStats{})
	if len(ms) < 30 {
		t.Fatalf("only %d metrics gathered", len(ms))
	}
	for _, m := range ms {
		got, err := namer.Build(otlptranslator.Metric{Name: m.OTelName, Unit: m.Unit, Type: types[m.Kind]})
		if err != nil || got != m.Name {
			t.Errorf("%s (unit %q) is served as %q (%v) behind the Collector, want %s", m.OTelName, m.Unit, got, err, m.Name)
		}
	}
}

// TestFamilyNamesTranslate checks that a family name passes
// aggregate.Spec.Validate exactly when the Collector's Prometheus exporter
// serves the family's traffic metrics under the standalone names.
func TestFamilyNamesTranslate(t *testing.T) {
	namer := otlptranslator.MetricNamer{WithMetricSuffixes: true}
	for _, name := range []string{"app", "as_pair_v2", "x9", "bytes", "packets", "flows", "per_second", "app_total", "total", "totals", "_app", "app_", "a__b"} {
		spec := aggregate.Spec{Name: name, Labels: []aggregate.Label{aggregate.LabelExporter}, Limit: 1}
		translates := true
		bytes, packets, flows := metricset.TrafficMetrics(aggregate.NewFamily(spec, aggregate.Options{}))
		for _, m := range []metricset.Metric{bytes, packets, flows} {
			got, err := namer.Build(otlptranslator.Metric{Name: m.OTelName, Unit: m.Unit, Type: otlptranslator.MetricTypeMonotonicCounter})
			translates = translates && err == nil && got == m.Name
		}
		if valid := spec.Validate() == nil; valid != translates {
			t.Errorf("family %q: valid %v, but served under its own names behind the Collector: %v", name, valid, translates)
		}
	}
}

// TestExporterCountersStartWhenTracked: an exporter forgotten to stay
// within max_exporters starts its counters from zero when it comes back;
// their start time must move with them, or OpenTelemetry consumers read a
// cumulative counter that went backwards within one start.
func TestExporterCountersStartWhenTracked(t *testing.T) {
	c := core.New(core.Config{MaxExporters: 1})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	records := func() metricset.Point {
		t.Helper()
		for _, m := range metricset.GatherHealth(c, nil) {
			for _, p := range m.Points {
				if m.Name == "flowmetrics_records_total" && p.Labels[0] == a.String() {
					return p
				}
			}
		}
		t.Fatal("no records_total point for", a)
		return metricset.Point{}
	}
	c.Exporters().Get(a).Records[flow.NetFlowV5].Add(5)
	first := records()
	c.Exporters().Get(b) // forgets a
	time.Sleep(time.Millisecond)
	c.Exporters().Get(a).Records[flow.NetFlowV5].Add(2)
	second := records()
	if first.Value != 5 || second.Value != 2 {
		t.Fatalf("records %v then %v, want 5 then 2", first.Value, second.Value)
	}
	if first.Start.IsZero() || !second.Start.After(first.Start) {
		t.Errorf("start %v then %v: the restarted counter must have a later start", first.Start, second.Start)
	}
}

// TestSNMPPollCountersStartWhenTracked: the SNMP poll counts of an
// exporter the poller forgot (the health table dropped it to stay within
// max_exporters) start again from zero when it is polled again; their
// start time must move with them, as the exporter's own counters' do.
func TestSNMPPollCountersStartWhenTracked(t *testing.T) {
	c := core.New(core.Config{MaxExporters: 1})
	a := netip.MustParseAddr("192.0.2.1")
	polls := func() map[string]metricset.Point {
		t.Helper()
		out := map[string]metricset.Point{}
		for _, m := range metricset.GatherHealth(c, nil) {
			if m.Name != "flowmetrics_snmp_polls_total" {
				continue
			}
			for _, p := range m.Points {
				out[p.Labels[1]] = p
			}
		}
		return out
	}
	for range 3 {
		c.Interfaces().PollFailed(a)
	}
	first := polls()
	c.Interfaces().Retain(func(netip.Addr) bool { return false })
	time.Sleep(time.Millisecond)
	c.Interfaces().PollFailed(a)
	second := polls()
	for _, result := range []string{"success", "failure"} {
		f, s := first[result], second[result]
		if want := map[string][2]float64{"success": {0, 0}, "failure": {3, 1}}[result]; f.Value != want[0] || s.Value != want[1] {
			t.Fatalf("%s polls %v then %v, want %v", result, f.Value, s.Value, want)
		}
		if f.Start.IsZero() || !s.Start.After(f.Start) {
			t.Errorf("%s polls start %v then %v: the restarted counter must have a later start", result, f.Start, s.Start)
		}
	}
}

// TestNotAllowedOnlyUntracked: a datagram refused by allowed_exporters is
// counted before its exporter is tracked, under exporter="" (as the README
// states), so a tracked exporter's not_allowed count is always 0. Serving
// it anyway put one always-zero series per exporter beside the real one,
// suggesting that allowed exporters had datagrams refused.
func TestNotAllowedOnlyUntracked(t *testing.T) {
	c := core.New(core.Config{MaxExporters: 4})
	c.Exporters().Get(netip.MustParseAddr("192.0.2.1")).CountError(health.ReasonTruncated)
	c.Exporters().Untracked().CountError(health.ReasonNotAllowed)
	got := map[string]float64{} // exporter/reason -> value
	for _, m := range metricset.GatherHealth(c, nil) {
		if m.Name != "flowmetrics_decode_errors_total" {
			continue
		}
		for _, p := range m.Points {
			got[p.Labels[0]+"/"+p.Labels[1]] = p.Value
		}
	}
	for _, tc := range []struct {
		key     string
		present bool
		value   float64
	}{
		{"/not_allowed", true, 1},
		{"192.0.2.1/not_allowed", false, 0},
		{"192.0.2.1/truncated", true, 1},
		{"192.0.2.1/malformed", true, 0},
	} {
		v, ok := got[tc.key]
		if ok != tc.present || v != tc.value {
			t.Errorf("decode_errors_total %s: present %v value %v, want present %v value %v", tc.key, ok, v, tc.present, tc.value)
		}
	}
}

// TestInterfaceInfoJoinsLinkLocalExporters: a family's exporter label has
// no zone (its key holds 16 address bytes), so interface_info and the
// interface speed, which are joined with the families on exporter and
// if_index, must name a link-local exporter without its zone too, or the
// join (the README's, the dashboards', FlowmetricsInterfaceUtilisationHigh)
// finds nothing for it. Two links' fe80::1, which the families already
// count as one exporter, must not give two series with the same labels
// (which a scrape refuses).
func TestInterfaceInfoJoinsLinkLocalExporters(t *testing.T) {
	eth0, eth1 := netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("fe80::1%eth1")
	cfg := core.Config{MaxExporters: 4, Families: []aggregate.Spec{
		{Name: "interface", Labels: []aggregate.Label{aggregate.LabelExporter, aggregate.LabelInIf}, Limit: 10},
	}}
	cfg.Enrich.Interfaces = []enrich.Interface{
		{Exporter: eth0, Index: 3, Name: "ge-0/0/3", Speed: 1e9},
		{Exporter: eth1, Index: 3, Name: "xe-0/0/3", Speed: 1e10},
		{Exporter: netip.MustParseAddr("192.0.2.1"), Index: 3, Name: "et-0/0/3", Speed: 1e11},
	}
	c := core.New(cfg)
	ex := c.Exporters().Get(eth0)
	c.Process(ex, []flow.Record{{Exporter: ex.Addr, InIf: 3, Bytes: 100, Packets: 1, ScaledBytes: 100, ScaledPackets: 1, IPVersion: 6}}, time.Now())
	traffic := map[string]bool{}
	seen := map[string]map[string]bool{}
	for _, m := range metricset.Gather(c, intakeStats{}) {
		switch m.Name {
		case "flow_interface_bytes_total":
			for _, p := range m.Points {
				traffic[p.Labels[0]+" "+p.Labels[1]] = true
			}
		case "flowmetrics_interface_info", "flowmetrics_interface_speed_bits_per_second":
			seen[m.Name] = map[string]bool{}
			for _, p := range m.Points {
				k := p.Labels[0] + " " + p.Labels[1]
				if seen[m.Name][k] {
					t.Errorf("%s: two series for exporter %s if_index %s", m.Name, p.Labels[0], p.Labels[1])
				}
				seen[m.Name][k] = true
			}
		}
	}
	if len(traffic) != 1 {
		t.Fatalf("interface family series: %v, want one", traffic)
	}
	for k := range traffic {
		for _, name := range []string{"flowmetrics_interface_info", "flowmetrics_interface_speed_bits_per_second"} {
			if !seen[name][k] {
				t.Errorf("%s has no series for the traffic's exporter and interface %q (has %v)", name, k, seen[name])
			}
		}
	}
}
