package flowgen

import "testing"

// BenchmarkData measures building one data datagram per protocol.
func BenchmarkData(b *testing.B) {
	for _, p := range []Protocol{V5, V9, IPFIX, SFlow} {
		b.Run(string(p), func(b *testing.B) {
			g, err := New(Config{Protocol: p, SamplingRate: 10, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			var flows []Flow
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, flows = g.Data(flows)
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*RecordsPerDatagram(p))
			b.ReportMetric(ns, "ns/record")
		})
	}
}
