package sampling

import (
	"net/netip"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// BenchmarkApply measures sampling correction of one record: the rate from
// the wire, from an override, from the default, and unresolved.
func BenchmarkApply(b *testing.B) {
	exporter := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name     string
		cfg      Config
		rate     uint32
		source   flow.RateSource
		override bool
	}{
		{"wire", Config{}, 100, flow.RateDomain, false},
		{"override", Config{Overrides: []Override{{netip.MustParsePrefix("192.0.2.0/24"), 10}}}, 100, flow.RateDomain, true},
		{"default", Config{DefaultRate: 64}, 0, flow.RateUnknown, false},
		{"unresolved", Config{}, 0, flow.RateUnknown, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := New(tc.cfg)
			var ov uint32
			if tc.override {
				ov = c.Override(exporter)
			}
			recs := make([]flow.Record, 30)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for j := range recs {
					r := &recs[j]
					r.Bytes, r.Packets, r.SamplingRate, r.RateSource = 1500, 3, tc.rate, tc.source
					c.Apply(r, ov)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*len(recs))
			b.ReportMetric(ns, "ns/record")
			b.ReportMetric(1e9/ns, "records/s")
		})
	}
}
