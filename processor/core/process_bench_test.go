package core

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
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
	recs, batch := benchRecords(ex.Addr, 1), make([]flow.Record, 30)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		copy(batch, recs)
		c.Process(ex, batch, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*30), "ns/record")
}

// benchRecords returns 30 records of one exporter: random addresses in
// 10.0/16 and 10.1/16 that fit the limits, random interfaces and source
// ports, HTTPS.
func benchRecords(exporter netip.Addr, seed uint64) []flow.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	recs := make([]flow.Record, 30)
	for i := range recs {
		recs[i] = flow.Record{Exporter: exporter, SrcAddr: netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(200))}),
			DstAddr: netip.AddrFrom4([4]byte{10, 1, byte(rng.IntN(4)), byte(rng.IntN(200))}), IPVersion: 4, Proto: 6,
			SrcPort: uint16(rng.IntN(65536)), DstPort: 443, Bytes: 1000, Packets: 2, SamplingRate: 10, RateSource: flow.RateHeader, Protocol: flow.NetFlowV9,
			InIf: uint32(rng.IntN(8)), OutIf: uint32(rng.IntN(8))}
	}
	return recs
}

// BenchmarkProcessParallel is BenchmarkProcess with one goroutine per
// GOMAXPROCS, each folding a different exporter's batches, as the socket
// readers do. Run it with -cpu 1,2,...: "ns/record" is wall time per record
// over all goroutines, "core-ns/record" that times GOMAXPROCS, which stays
// flat while throughput scales with cores. "shared" is what flowmetrics
// does (one core, so the families' locks and tables are shared);
// "unshared" gives every goroutine a core of its own, the bound without
// that sharing.
func BenchmarkProcessParallel(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := map[bool]string{true: "shared", false: "unshared"}[shared]
		b.Run(name, func(b *testing.B) {
			newCore := func() *Core { return New(Config{MaxExporters: 1024, Families: defaultSpecs()}) }
			c := newCore()
			var next atomic.Uint32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				n := next.Add(1)
				c := c
				if !shared {
					c = newCore()
				}
				ex := c.Exporters().Get(netip.AddrFrom4([4]byte{192, 0, 2, byte(n)}))
				recs, batch := benchRecords(ex.Addr, uint64(n)), make([]flow.Record, 30)
				now := time.Now()
				for pb.Next() {
					copy(batch, recs)
					c.Process(ex, batch, now)
				}
			})
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*30)
			b.ReportMetric(ns, "ns/record")
			b.ReportMetric(ns*float64(runtime.GOMAXPROCS(0)), "core-ns/record")
		})
	}
}
