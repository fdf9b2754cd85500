package core

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// BenchmarkProcessEnriched is BenchmarkProcess with enrichment (1,000
// networks, services, direction classification) and the default families
// plus service and network families.
func BenchmarkProcessEnriched(b *testing.B) {
	L := func(ls ...aggregate.Label) []aggregate.Label { return ls }
	specs := append(defaultSpecs(),
		aggregate.Spec{Name: "service", Labels: L(aggregate.LabelExporter, aggregate.LabelProto, aggregate.LabelService), Limit: 500},
		aggregate.Spec{Name: "network", Labels: L(aggregate.LabelExporter, aggregate.LabelSrcNet, aggregate.LabelDstNet, aggregate.LabelTenant, aggregate.LabelDirection), Limit: 2000},
	)
	ecfg := enrich.Config{ClassifyDirection: true, EphemeralPortMin: enrich.DefaultEphemeralPortMin}
	for i := range 1000 {
		ecfg.Networks = append(ecfg.Networks, enrich.Network{
			Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 256), byte(i % 256), 0}), 24),
			Name:   fmt.Sprintf("net%d", i%50), Tenant: fmt.Sprintf("t%d", i%7)})
	}
	for _, tc := range []struct {
		name  string
		specs []aggregate.Spec
		en    enrich.Config
	}{
		{"default_families_no_networks", defaultSpecs(), enrich.Config{}},
		{"default_families_enriched", defaultSpecs(), ecfg},
		{"plus_service_network_families", specs, ecfg},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := New(Config{MaxExporters: 16, Families: tc.specs, Enrich: tc.en})
			ex := c.Exporters().Get(netip.MustParseAddr("192.0.2.1"))
			rng := rand.New(rand.NewPCG(1, 1))
			recs := make([]flow.Record, 30)
			batch := make([]flow.Record, 30)
			for i := range recs {
				recs[i] = flow.Record{Exporter: ex.Addr, SrcAddr: netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(200))}),
					DstAddr: netip.AddrFrom4([4]byte{10, 1, byte(rng.IntN(4)), byte(rng.IntN(200))}), IPVersion: 4, Proto: 6,
					SrcPort: uint16(rng.IntN(65536)), DstPort: 443, Bytes: 1000, Packets: 2, SamplingRate: 10, RateSource: flow.RateHeader, Protocol: flow.NetFlowV9,
					InIf: uint32(rng.IntN(8)), OutIf: uint32(rng.IntN(8))}
			}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				copy(batch, recs)
				c.Process(ex, batch, now)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*30), "ns/record")
		})
	}
}
