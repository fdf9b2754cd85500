package flowmetricsreceiver

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/flowmetrics/flowmetrics/config"
	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/processor/core"
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
