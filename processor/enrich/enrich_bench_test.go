package enrich_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/enrich/enrichtest"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// benchSetup builds an Enricher with n networks (nested /16 → /24) and,
// when geo is set, ASN and country databases of a few thousand prefixes,
// and 30-record batches over those ranges.
func benchSetup(tb testing.TB, n int, geo bool) (*enrich.Enricher, []flow.Record) {
	tb.Helper()
	cfg := enrich.Config{ClassifyDirection: true, EphemeralPortMin: enrich.DefaultEphemeralPortMin}
	for i := range n {
		var p netip.Prefix
		if i%16 == 0 {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 256), byte(i % 256), 0}), 16).Masked()
		} else {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 256), byte(i % 256), 0}), 24)
		}
		cfg.Networks = append(cfg.Networks, enrich.Network{Prefix: p, Name: fmt.Sprintf("net%d", i), Tenant: fmt.Sprintf("t%d", i%7)})
	}
	if geo {
		dir := tb.TempDir()
		cfg.ASNDatabase, cfg.CountryDatabase = filepath.Join(dir, "asn.mmdb"), filepath.Join(dir, "country.mmdb")
		var asns []enrichtest.ASN
		var cs []enrichtest.Country
		for i := range 4096 {
			p := fmt.Sprintf("%d.%d.0.0/16", 1+i/256, i%256)
			asns = append(asns, enrichtest.ASN{Prefix: p, Number: uint32(64512 + i%1000)})
			cs = append(cs, enrichtest.Country{Prefix: p, ISO: string([]byte{'A' + byte(i%26), 'A' + byte(i/26%26)})})
		}
		if err := enrichtest.WriteASN(cfg.ASNDatabase, build1, asns...); err != nil {
			tb.Fatal(err)
		}
		if err := enrichtest.WriteCountry(cfg.CountryDatabase, build1, cs...); err != nil {
			tb.Fatal(err)
		}
	}
	e, err := enrich.New(cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]flow.Record, 30)
	for i := range recs {
		src := netip.AddrFrom4([4]byte{10, byte(rng.IntN(max(1, n/256+1))), byte(rng.IntN(256)), byte(rng.IntN(256))})
		dst := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(16)), byte(rng.IntN(256)), byte(rng.IntN(256)), 1})
		recs[i] = flow.Record{SrcAddr: src, DstAddr: dst, Proto: 6, SrcPort: uint16(32768 + rng.IntN(30000)), DstPort: []uint16{443, 80, 22, 8081}[rng.IntN(4)], IPVersion: 4}
	}
	return e, recs
}

// BenchmarkApply measures enrichment per record: services only, networks
// (1,000 and 50,000 prefixes), mmdb ASN + country, and everything.
func BenchmarkApply(b *testing.B) {
	cases := []struct {
		name string
		nets int
		geo  bool
	}{
		{"services", 0, false},
		{"networks_1k", 1000, false},
		{"networks_50k", 50000, false},
		{"geoip", 0, true},
		{"geoip_100k_hosts", 0, true},
		{"all_1k", 1000, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e, recs := benchSetup(b, c.nets, c.geo)
			if c.name == "geoip_100k_hosts" {
				benchManyHosts(b, e)
				return
			}
			batch := make([]flow.Record, len(recs))
			copy(batch, recs)
			e.Apply(batch) // warm the record caches
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				copy(batch, recs)
				e.Apply(batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}

// TestApplyDoesNotAllocate holds the hot path to zero allocations once the
// databases' records have been seen.
func TestApplyDoesNotAllocate(t *testing.T) {
	e, recs := benchSetup(t, 1000, true)
	batch := make([]flow.Record, len(recs))
	copy(batch, recs)
	e.Apply(batch)
	if n := testing.AllocsPerRun(100, func() {
		copy(batch, recs)
		e.Apply(batch)
	}); n != 0 {
		t.Errorf("Apply allocates %.1f times per batch", n)
	}
}

// benchManyHosts enriches batches whose addresses are drawn, Zipf-like, from
// 100,000 hosts in the databases' ranges, so that the IPv4 answer cache in
// front of the databases misses as it would on real traffic.
func benchManyHosts(b *testing.B, e *enrich.Enricher) {
	rng := rand.New(rand.NewPCG(3, 4))
	zipf := rand.NewZipf(rng, 1.1, 1, 99_999)
	host := func() netip.Addr {
		i := uint32(zipf.Uint64())
		return netip.AddrFrom4([4]byte{byte(1 + i%16), byte(i >> 4), byte(i >> 12), 1})
	}
	pool := make([]flow.Record, 64*30)
	for i := range pool {
		pool[i] = flow.Record{SrcAddr: host(), DstAddr: host(), Proto: 6, SrcPort: 40000, DstPort: 443, IPVersion: 4}
	}
	batch := make([]flow.Record, 30)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		off := (n % 64) * 30
		copy(batch, pool[off:off+30])
		e.Apply(batch)
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*30), "ns/record")
}
