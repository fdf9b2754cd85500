package promexport

import (
	"io"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// fill returns a core whose src_host family holds n series.
func fill(n int) *core.Core {
	c := core.New(core.Config{
		MaxExporters: 4,
		Families:     []aggregate.Spec{{Name: "src_host", Labels: []aggregate.Label{aggregate.LabelExporter, aggregate.LabelSrcAddr}, Limit: n}},
	})
	ex := c.Exporters().Get(netip.MustParseAddr("192.0.2.1"))
	batch := make([]flow.Record, 0, 1000)
	now := time.Now()
	for i := 0; i < n; i++ {
		batch = append(batch, flow.Record{Exporter: ex.Addr, SrcAddr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			IPVersion: 4, Bytes: 1000, Packets: 1, SamplingRate: 1, RateSource: flow.RateHeader, Protocol: flow.IPFIX})
		if len(batch) == cap(batch) {
			c.Process(ex, batch, now)
			batch = batch[:0]
		}
	}
	c.Process(ex, batch, now)
	return c
}

// BenchmarkScrape100k serves /metrics for a family of 100,000 series (three
// metrics each) through promhttp, as Prometheus would scrape it, and reports
// the core's heap per series.
func BenchmarkScrape100k(b *testing.B) {
	const n = 100_000
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	c := fill(n)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	heapPerSeries := float64(m1.HeapAlloc-m0.HeapAlloc) / n
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(c, nil))
	h := NewHandler(reg, c, HandlerOpts{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	}
	runtime.KeepAlive(c)
	b.ReportMetric(heapPerSeries, "heap_B/series")
}
