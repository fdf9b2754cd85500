package aggregate

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// TestEnrichmentLabels checks that the enrichment dimensions key and render
// series, and that a family without them merges records that differ only
// there.
func TestEnrichmentLabels(t *testing.T) {
	office, acme := flow.Intern("office"), flow.Intern("acme")
	https := flow.ServiceFromSymbol(flow.Intern("https"))
	recs := []flow.Record{
		{Exporter: netip.MustParseAddr("192.0.2.1"), IPVersion: 4, SrcNet: office, Tenant: acme, Service: https, SrcCountry: [2]byte{'F', 'R'}, ScaledBytes: 10},
		{Exporter: netip.MustParseAddr("192.0.2.1"), IPVersion: 4, DstNet: office, Service: flow.ServiceFromPort(8081), ScaledBytes: 20},
		{Exporter: netip.MustParseAddr("192.0.2.1"), IPVersion: 6, ScaledBytes: 40},
	}
	tests := []struct {
		labels []Label
		want   []string
	}{
		{[]Label{LabelSrcNet, LabelDstNet, LabelTenant}, []string{"office,unknown,acme=10", "unknown,office,unknown=20", "unknown,unknown,unknown=40"}},
		{[]Label{LabelService}, []string{"8081=20", "https=10", "none=40"}},
		{[]Label{LabelSrcCountry, LabelDstCountry}, []string{"FR,unknown=10", "unknown,unknown=60"}},
		{[]Label{LabelExporter}, []string{"192.0.2.1=70"}},
	}
	for _, tt := range tests {
		f := NewFamily(Spec{Name: "x", Labels: tt.labels, Limit: 10}, Options{})
		f.Add(recs, time.Unix(1700000000, 0))
		var got []string
		for _, p := range f.Collect(nil) {
			got = append(got, strings.Join(p.Labels, ",")+"="+strconv.FormatUint(p.Bytes, 10))
		}
		slices.Sort(got)
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%v: %v, want %v", tt.labels, got, tt.want)
		}
	}
}
