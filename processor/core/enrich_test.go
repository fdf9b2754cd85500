package core

import (
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// series renders a family's series as "label=value,...: bytes", sorted.
func series(f *aggregate.Family) []string {
	var out []string
	names := f.LabelNames()
	for _, p := range f.Collect(nil) {
		var kv []string
		for i, v := range p.Labels {
			kv = append(kv, names[i]+"="+v)
		}
		out = append(out, strings.Join(kv, ",")+": "+itoa(p.Bytes))
	}
	sort.Strings(out)
	return out
}

func itoa(v uint64) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
		if v == 0 {
			return string(b)
		}
	}
}

func enrichConfig(networks ...string) enrich.Config {
	cfg := enrich.Config{ClassifyDirection: true, EphemeralPortMin: enrich.DefaultEphemeralPortMin}
	for _, n := range networks {
		f := strings.Fields(n) // prefix name tenant [role]; "-" is empty
		for i := range f {
			if f[i] == "-" {
				f[i] = ""
			}
		}
		nw := enrich.Network{Prefix: netip.MustParsePrefix(f[0]), Name: f[1], Tenant: f[2]}
		if len(f) > 3 {
			nw.Role = f[3]
		}
		cfg.Networks = append(cfg.Networks, nw)
	}
	return cfg
}

// TestProcessEnriches checks that Process enriches after sampling and that
// families render the new labels from the ids; a reload changes the
// networks for new series.
func TestProcessEnriches(t *testing.T) {
	L := func(ls ...aggregate.Label) []aggregate.Label { return ls }
	specs := []aggregate.Spec{
		{Name: "network", Labels: L(aggregate.LabelSrcNet, aggregate.LabelDstNet, aggregate.LabelTenant, aggregate.LabelDirection), Limit: 10},
		{Name: "service", Labels: L(aggregate.LabelProto, aggregate.LabelService), Limit: 10},
		{Name: "country", Labels: L(aggregate.LabelSrcCountry, aggregate.LabelDstCountry), Limit: 10},
	}
	cfg := Config{MaxExporters: 4, Families: specs, Enrich: enrichConfig("10.1.0.0/24 office acme", "198.51.100.0/24 partner - external")}
	c := New(cfg)
	ex := c.Exporters().Get(netip.MustParseAddr("192.0.2.1"))
	rec := func(src, dst string, proto uint8, sp, dp uint16, bytes uint64) flow.Record {
		return flow.Record{Exporter: ex.Addr, SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst), Proto: proto,
			SrcPort: sp, DstPort: dp, Bytes: bytes, Packets: 1, SamplingRate: 10, RateSource: flow.RateHeader}
	}
	c.Process(ex, []flow.Record{
		rec("10.1.0.1", "198.51.100.7", 6, 40000, 443, 100),
		rec("198.51.100.7", "10.1.0.1", 6, 443, 40000, 50),
		rec("203.0.113.1", "203.0.113.2", 17, 40000, 50000, 7),
		rec("10.1.0.1", "10.1.0.2", 1, 0, 2048, 1),
	}, time.Unix(1700000000, 0))
	fams := c.Families()
	want := map[string][]string{
		"network": {
			"src_net=office,dst_net=office,tenant=acme,direction=internal: 10",
			"src_net=office,dst_net=partner,tenant=acme,direction=egress: 1000",
			"src_net=partner,dst_net=office,tenant=acme,direction=ingress: 500",
			"src_net=unknown,dst_net=unknown,tenant=unknown,direction=unknown: 70",
		},
		"service": {"proto=icmp,service=none: 10", "proto=tcp,service=https: 1500", "proto=udp,service=ephemeral: 70"},
		"country": {"src_country=unknown,dst_country=unknown: 1580"},
	}
	for _, f := range fams {
		if got := series(f); strings.Join(got, "\n") != strings.Join(want[f.Spec().Name], "\n") {
			t.Errorf("family %s:\n%s\nwant\n%s", f.Spec().Name, strings.Join(got, "\n"), strings.Join(want[f.Spec().Name], "\n"))
		}
	}

	// Reload: the networks change; the families keep their series and new
	// keys get the new names.
	cfg.Enrich = enrichConfig("10.1.0.0/16 campus initech")
	if created := c.Reconfigure(cfg); len(created) != 0 {
		t.Errorf("created = %v", created)
	}
	c.Process(ex, []flow.Record{rec("10.1.0.1", "203.0.113.9", 6, 40000, 22, 3)}, time.Unix(1700000001, 0))
	got := series(c.Families()[0])
	if len(got) != 5 || !strings.Contains(strings.Join(got, "\n"), "src_net=campus,dst_net=unknown,tenant=initech,direction=egress: 30") {
		t.Errorf("after reload: %v", got)
	}
}
