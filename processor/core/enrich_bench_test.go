package core

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
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
			benchmarkProcess(b, Config{MaxExporters: 16, Families: tc.specs, Enrich: tc.en})
		})
	}
}
