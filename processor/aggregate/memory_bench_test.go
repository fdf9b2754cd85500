package aggregate

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// BenchmarkSeriesMemory fills one family with n distinct series and reports
// the live heap it holds per series (heap in use after a GC, before minus
// after, divided by n), for the default families' label shapes. One
// operation fills one family.
func BenchmarkSeriesMemory(b *testing.B) {
	const n = 100_000
	exporter := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name   string
		labels []Label
		rec    func(i int) flow.Record
	}{
		{"src_host", []Label{LabelExporter, LabelSrcAddr}, func(i int) flow.Record {
			return flow.Record{SrcAddr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), IPVersion: 4}
		}},
		{"interface", []Label{LabelExporter, LabelInIf, LabelOutIf, LabelDirection}, func(i int) flow.Record {
			return flow.Record{InIf: uint32(i), OutIf: uint32(i % 7), IPVersion: 4}
		}},
		{"application", []Label{LabelExporter, LabelProto, LabelPort}, func(i int) flow.Record {
			return flow.Record{Proto: uint8(i >> 16), SrcPort: uint16(i), DstPort: uint16(i), IPVersion: 4}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var perSeries float64
			now := time.Now()
			for it := 0; it < b.N; it++ {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				f := NewFamily(Spec{Name: tc.name, Labels: tc.labels, Limit: n}, Options{})
				batch := make([]flow.Record, 0, 1000)
				for i := 0; i < n; i++ {
					r := tc.rec(i)
					r.Exporter, r.ScaledBytes, r.ScaledPackets = exporter, 1000, 1
					batch = append(batch, r)
					if len(batch) == cap(batch) {
						f.Add(batch, now)
						batch = batch[:0]
					}
				}
				f.Add(batch, now)
				batch = nil
				runtime.GC()
				runtime.ReadMemStats(&m1)
				if got := f.Stats().Series; got != n {
					b.Fatalf("%d series, want %d", got, n)
				}
				perSeries = float64(m1.HeapAlloc-m0.HeapAlloc) / n
				runtime.KeepAlive(f)
			}
			b.ReportMetric(perSeries, "heap_B/series")
		})
	}
}
