package decode_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/config"
	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/receiver/decode"
)

// pipelineProtocols are the wire formats of the pipeline benchmarks.
var pipelineProtocols = []flowgen.Protocol{flowgen.V5, flowgen.V9, flowgen.IPFIX, flowgen.SFlow}

// stream returns one flowgen exporter's template datagram (nil for v5 and
// sFlow) and n data datagrams, sampled 1:100.
func stream(b *testing.B, p flowgen.Protocol, n int) (tpl []byte, data [][]byte) {
	g, err := flowgen.New(flowgen.Config{Protocol: p, Domain: 1, SamplingRate: 100, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	tpl = g.Templates()
	for i := 0; i < n; i++ {
		dg, _ := g.Data(nil)
		data = append(data, append([]byte(nil), dg...))
	}
	return tpl, data
}

func perRecord(b *testing.B, records int) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(records)
	b.ReportMetric(ns, "ns/record")
	b.ReportMetric(1e9/ns, "records/s")
}

// BenchmarkPipeline is the core's work per datagram without the socket, as
// the intake does it: decode, then core.Process (sampling correction,
// totals and the default families of config.Default()). The stream is
// flowgen's (Zipf over 10,000 hosts, more than the families' limits, so
// part of the traffic folds into "other" and feeds the admission sketch);
// the families are warmed up first, so this is the steady state.
func BenchmarkPipeline(b *testing.B) {
	addr := netip.MustParseAddr("192.0.2.1")
	for _, p := range pipelineProtocols {
		tpl, data := stream(b, p, 1024)
		b.Run(string(p), func(b *testing.B) {
			cfg := config.Default()
			c := core.New(cfg.Core())
			d := decode.New(decode.Limits{})
			ex := c.Exporters().Get(addr)
			now := time.Now()
			run := func(dg []byte) int {
				res, _ := d.Decode(dg, addr, ex)
				c.Process(ex, res.Records, now)
				return len(res.Records)
			}
			if tpl != nil {
				run(tpl)
			}
			for _, dg := range data {
				run(dg)
			}
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for i := 0; i < b.N; i++ {
				n += run(data[i%len(data)])
			}
			perRecord(b, n)
		})
	}
}

// BenchmarkProcessDefault is core.Process alone with config.Default()'s
// families, on records decoded beforehand from a flowgen stream (30-record
// batches, one datagram each; steady state as in BenchmarkPipeline).
func BenchmarkProcessDefault(b *testing.B) {
	addr := netip.MustParseAddr("192.0.2.1")
	tpl, data := stream(b, flowgen.IPFIX, 1024)
	d := decode.New(decode.Limits{})
	cfg := config.Default()
	c := core.New(cfg.Core())
	ex := c.Exporters().Get(addr)
	d.Decode(tpl, addr, ex)
	var batches [][]flow.Record
	for _, dg := range data {
		res, _ := d.Decode(dg, addr, ex)
		batches = append(batches, append([]flow.Record(nil), res.Records...))
	}
	now := time.Now()
	scratch := make([]flow.Record, 0, 64)
	for _, bt := range batches {
		c.Process(ex, append(scratch[:0], bt...), now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		bt := batches[i%len(batches)]
		c.Process(ex, append(scratch[:0], bt...), now)
		n += len(bt)
	}
	perRecord(b, n)
}

// BenchmarkFamilyCost is what each of config.Default()'s families adds to a
// record's cost, for sizing custom ones: "none" is decoding, sampling
// correction, enrichment and the exporter totals alone; each other case
// adds one family; "all" is the default set. Records are folded 16
// datagrams at a time, as a receive batch of one exporter is, on a
// flowgen stream warmed up to its steady state (the host families full).
// Subtract "none" from a case for that family's cost per record.
func BenchmarkFamilyCost(b *testing.B) {
	addr := netip.MustParseAddr("192.0.2.1")
	type familySet struct {
		name     string
		families []config.FamilyConfig
	}
	cases := []familySet{{"none", []config.FamilyConfig{}}}
	for _, f := range config.DefaultFamilies {
		cases = append(cases, familySet{f.Name, []config.FamilyConfig{f}})
	}
	cases = append(cases, familySet{"all", config.DefaultFamilies})
	for _, p := range []flowgen.Protocol{flowgen.V5, flowgen.SFlow} {
		_, data := stream(b, p, 1024)
		for _, tc := range cases {
			b.Run(string(p)+"/"+tc.name, func(b *testing.B) {
				cfg := config.Default()
				cfg.Families = tc.families
				c := core.New(cfg.Core())
				d := decode.New(decode.Limits{})
				ex := c.Exporters().Get(addr)
				now := time.Now()
				batch := func(i int) int {
					for j := range 16 {
						d.Append(data[(16*i+j)%len(data)], addr, ex)
					}
					n := len(d.Pending())
					c.Process(ex, d.Pending(), now)
					d.Reset()
					return n
				}
				for i := range 2 * len(data) / 16 {
					batch(i)
				}
				b.ReportAllocs()
				b.ResetTimer()
				n := 0
				for i := 0; i < b.N; i++ {
					n += batch(i)
				}
				perRecord(b, n)
			})
		}
	}
}
