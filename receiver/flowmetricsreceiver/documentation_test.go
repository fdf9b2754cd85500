package flowmetricsreceiver

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/flowmetrics/flowmetrics/config"
	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/intake"
)

type docIntake struct{}

func (docIntake) Stats() []intake.SocketStats { return []intake.SocketStats{{Address: ":2055"}} }
func (docIntake) Latency() *health.Histogram  { return &health.Histogram{} }

// TestDocumentationIsComplete keeps documentation.md true: every default
// family, every attribute in both styles, and every metric the receiver
// emits with its unit.
func TestDocumentationIsComplete(t *testing.T) {
	b, err := os.ReadFile("documentation.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, f := range config.DefaultFamilies {
		if !strings.Contains(doc, "`"+f.Name+"`") {
			t.Errorf("default family %s missing", f.Name)
		}
	}
	for label, a := range semconvAttrs {
		if !strings.Contains(doc, "`"+label+"`") || !strings.Contains(doc, "`"+a.name+"`") {
			t.Errorf("attribute %s / %s missing", label, a.name)
		}
	}
	def := config.Default()
	c := core.New(def.Core())
	c.Exporters().Get(netip.MustParseAddr("192.0.2.1"))
	lines := strings.Split(doc, "\n")
	for _, m := range metricset.GatherHealth(c, docIntake{}) {
		short := "`." + strings.TrimPrefix(m.OTelName, metricset.Namespace+".") + "`"
		unit := m.Unit
		if unit == "" {
			unit = "(none)"
		}
		found := false
		for _, l := range lines {
			if strings.Contains(l, "`"+m.OTelName+"`") || strings.HasPrefix(l, "| `"+metricset.Namespace+".") && strings.Contains(l, short) {
				found = true
				if !strings.Contains(l, "| "+unit+" |") {
					t.Errorf("%s: its line %q lacks the unit %s", m.OTelName, l, unit)
				}
			}
		}
		if !found {
			t.Errorf("metric %s missing", m.OTelName)
		}
	}
}

// TestDocumentationPrometheusOverflow keeps documentation.md's account of
// the overflow series in the prometheus style true: the exporter label
// keeps the exporter's address, every other label is "other".
func TestDocumentationPrometheusOverflow(t *testing.T) {
	c, _, ex := srcCore(1)
	conv := newConverter(AttributesPrometheus, component.BuildInfo{})
	now := time.Unix(1_700_000_000, 0)
	c.Process(ex, []flow.Record{
		{Exporter: ex.Addr, SrcAddr: netip.MustParseAddr("10.0.0.1"), IPVersion: 4, Bytes: 1, Packets: 1},
		{Exporter: ex.Addr, SrcAddr: netip.MustParseAddr("10.0.0.2"), IPVersion: 4, Bytes: 7, Packets: 1}, // overflows
	}, now)
	md, _ := conv.metrics(metricset.Gather(c, nil), now)
	m, ok := findMetric(md, "flow.src.bytes")
	if !ok {
		t.Fatal("no flow.src.bytes")
	}
	var overflow []map[string]any
	dps := m.Sum().DataPoints()
	for i := 0; i < dps.Len(); i++ {
		if a := dps.At(i).Attributes().AsRaw(); a["src_addr"] == "other" {
			overflow = append(overflow, a)
			if a["exporter"] != "127.0.0.1" || len(a) != 2 || dps.At(i).DoubleValue() != 7 {
				t.Errorf("overflow series %v = %v, want exporter 127.0.0.1, src_addr other, 7 bytes", a, dps.At(i).DoubleValue())
			}
		}
	}
	if len(overflow) != 1 {
		t.Fatalf("overflow series %v, want one", overflow)
	}
	b, err := os.ReadFile("documentation.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(b), "\n", " ")
	_, line, _ := strings.Cut(doc, "In the prometheus style the overflow series")
	line, _, _ = strings.Cut(line, ". ")
	if !strings.Contains(line, "`exporter`") {
		t.Errorf("documentation.md says %q; the overflow series keeps its exporter's address in the exporter label", line)
	}
}
