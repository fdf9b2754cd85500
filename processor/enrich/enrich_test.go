package enrich

import (
	"net/netip"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

func TestApplyNetworksAndDirection(t *testing.T) {
	cfg := Config{
		Networks: nets(
			"10.1.0.0/24 office acme",
			"10.2.0.0/24 dc globex",
			"10.3.0.0/24 shared",
			"198.51.100.0/24 partner - external",
		),
		ClassifyDirection: true,
		EphemeralPortMin:  DefaultEphemeralPortMin,
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                   string
		src, dst               string
		dir                    flow.Direction
		wantSrc, wantDst, tent string
		wantDir                flow.Direction
	}{
		{"internal", "10.1.0.1", "10.2.0.1", 0, "office", "dc", "acme", flow.DirectionInternal},
		{"egress to named external", "10.1.0.1", "198.51.100.1", 0, "office", "partner", "acme", flow.DirectionEgress},
		{"ingress from unknown", "203.0.113.1", "10.2.0.1", 0, "", "dc", "globex", flow.DirectionIngress},
		{"tenant from destination", "10.3.0.1", "10.2.0.1", 0, "shared", "dc", "globex", flow.DirectionInternal},
		{"neither", "203.0.113.1", "198.51.100.1", 0, "", "partner", "", flow.DirectionUnknown},
		{"exporter's direction kept", "10.1.0.1", "10.2.0.1", flow.DirectionIngress, "office", "dc", "acme", flow.DirectionIngress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := []flow.Record{{SrcAddr: netip.MustParseAddr(tt.src), DstAddr: netip.MustParseAddr(tt.dst), Direction: tt.dir, Proto: 6, SrcPort: 40000, DstPort: 443}}
			e.Apply(r)
			if r[0].SrcNet.String() != tt.wantSrc || r[0].DstNet.String() != tt.wantDst || r[0].Tenant.String() != tt.tent {
				t.Errorf("nets = %q, %q, tenant %q; want %q, %q, %q", r[0].SrcNet, r[0].DstNet, r[0].Tenant, tt.wantSrc, tt.wantDst, tt.tent)
			}
			if r[0].Direction != tt.wantDir {
				t.Errorf("direction = %s, want %s", r[0].Direction, tt.wantDir)
			}
			if r[0].Service.String() != "https" {
				t.Errorf("service = %q", r[0].Service)
			}
		})
	}
	// Without classification the direction stays unknown.
	cfg.ClassifyDirection = false
	e, _ = New(cfg, nil)
	r := []flow.Record{{SrcAddr: netip.MustParseAddr("10.1.0.1"), DstAddr: netip.MustParseAddr("10.2.0.1")}}
	e.Apply(r)
	if r[0].Direction != flow.DirectionUnknown || r[0].SrcNet.String() != "office" {
		t.Errorf("record = %+v", r[0])
	}
}

// TestApplyResetsStaleFields checks that a reused record slot does not keep
// the previous record's enrichment.
func TestApplyResetsStaleFields(t *testing.T) {
	e, _ := New(Config{Networks: nets("10.1.0.0/24 office acme")}, nil)
	r := []flow.Record{{SrcAddr: netip.MustParseAddr("10.1.0.1")}}
	e.Apply(r)
	r[0].SrcAddr = netip.MustParseAddr("192.0.2.1")
	r[0].SrcCountry = [2]byte{'X', 'X'}
	e.Apply(r)
	if r[0].SrcNet != 0 || r[0].Tenant != 0 || r[0].SrcCountry != ([2]byte{}) {
		t.Errorf("stale enrichment: %+v", r[0])
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{Networks: nets("10.0.0.0/8 x")}, ""},
		{"role", Config{Networks: nets("10.0.0.0/8 x - dmz")}, `networks[0].role: must be "internal" or "external", got "dmz"`},
		{"prefix", Config{Networks: []Network{{Name: "x"}}}, "networks[0].prefix: must be a CIDR"},
		{"interface", Config{Interfaces: []Interface{{Index: 1, Name: "x"}}}, "interfaces[0].exporter: must be an address"},
		{"service", Config{Services: []ServiceName{{Port: 1}}}, "services[0].name: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}
