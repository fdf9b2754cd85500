package core

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

func defaultSpecs() []aggregate.Spec {
	L := func(ls ...aggregate.Label) []aggregate.Label { return ls }
	return []aggregate.Spec{
		{Name: "interface", Labels: L(aggregate.LabelExporter, aggregate.LabelInIf, aggregate.LabelOutIf, aggregate.LabelDirection), Limit: 2000},
		{Name: "protocol", Labels: L(aggregate.LabelExporter, aggregate.LabelProto, aggregate.LabelIPVersion), Limit: 200},
		{Name: "application", Labels: L(aggregate.LabelExporter, aggregate.LabelProto, aggregate.LabelPort), Limit: 1000},
		{Name: "src_host", Labels: L(aggregate.LabelExporter, aggregate.LabelSrcAddr), Limit: 1000},
		{Name: "dst_host", Labels: L(aggregate.LabelExporter, aggregate.LabelDstAddr), Limit: 1000},
		{Name: "as_pair", Labels: L(aggregate.LabelExporter, aggregate.LabelSrcAS, aggregate.LabelDstAS), Limit: 1000},
	}
}

// BenchmarkProcess measures sampling correction and folding into the totals
// and the six default families, for 30-record batches (one datagram) with a
// mix of addresses that fits the limits (steady state: no admission).
func BenchmarkProcess(b *testing.B) {
	benchmarkProcess(b, Config{MaxExporters: 16, Families: defaultSpecs()})
}

// benchmarkProcess runs core.Process over 30-record batches of one exporter
// (random addresses in 10.0/16 and 10.1/16 that fit the limits, random
// interfaces and source ports, HTTPS) and reports ns/record.
func benchmarkProcess(b *testing.B, cfg Config) {
	c := New(cfg)
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
}
