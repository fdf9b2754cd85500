package sampling

import (
	"net/netip"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

func TestApply(t *testing.T) {
	c := New(Config{DefaultRate: 10, Overrides: []Override{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Rate: 100},
		{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Rate: 7},
	}})
	noDefault := New(Config{})
	ll := New(Config{Overrides: []Override{
		{Prefix: netip.MustParsePrefix("fe80::/10"), Rate: 8},
		{Prefix: netip.MustParsePrefix("fe80::1/128"), Rate: 4},
	}})
	tests := []struct {
		name       string
		c          *Corrector
		exporter   string
		wireRate   uint32
		wireSource flow.RateSource
		wantRate   uint32
		wantSource flow.RateSource
		wantOK     bool
	}{
		{"override wins over wire", c, "192.0.2.1", 512, flow.RateSampler, 100, flow.RateOverride, true},
		{"longest override prefix wins", c, "192.0.2.7", 512, flow.RateHeader, 7, flow.RateOverride, true},
		{"wire rate used", c, "198.51.100.1", 512, flow.RateDomain, 512, flow.RateDomain, true},
		{"default when wire is silent", c, "198.51.100.1", 0, flow.RateUnknown, 10, flow.RateDefault, true},
		{"unresolved counted 1:1", noDefault, "198.51.100.1", 0, flow.RateUnknown, 1, flow.RateUnknown, false},
		{"v4-mapped exporter matches v4 override", c, "::ffff:192.0.2.9", 0, flow.RateUnknown, 100, flow.RateOverride, true},
		// A link-local exporter is tracked with its zone (the link it
		// came from); a prefix has none, and netip's Contains is false
		// for every zoned address.
		{"link-local exporter matches its override", ll, "fe80::1%eth0", 512, flow.RateHeader, 4, flow.RateOverride, true},
		{"link-local exporter matches a link-local CIDR", ll, "fe80::2%eth1", 512, flow.RateHeader, 8, flow.RateOverride, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := flow.Record{Exporter: netip.MustParseAddr(tt.exporter), Bytes: 1000, Packets: 3, SamplingRate: tt.wireRate, RateSource: tt.wireSource}
			ok := tt.c.Apply(&r, tt.c.Override(r.Exporter))
			if ok != tt.wantOK || r.SamplingRate != tt.wantRate || r.RateSource != tt.wantSource {
				t.Fatalf("Apply = %v rate %d source %v; want %v %d %v", ok, r.SamplingRate, r.RateSource, tt.wantOK, tt.wantRate, tt.wantSource)
			}
			if r.ScaledBytes != 1000*uint64(tt.wantRate) || r.ScaledPackets != 3*uint64(tt.wantRate) {
				t.Fatalf("scaled = %d bytes %d packets, want x%d", r.ScaledBytes, r.ScaledPackets, tt.wantRate)
			}
			if r.Bytes != 1000 || r.Packets != 3 {
				t.Fatal("raw counts must not change")
			}
		})
	}
}

func TestSaturatingMul(t *testing.T) {
	const max = ^uint64(0)
	for _, tc := range []struct{ a, b, want uint64 }{
		{0, 0, 0},
		{0, max, 0},
		{max, 0, 0},
		{3, 7, 21},
		{1, max, max},
		{max, 1, max},
		{1 << 32, 1 << 31, 1 << 63},
		{1 << 32, 1 << 32, max},     // 2^64: one past the largest
		{1<<32 - 1, 1<<32 + 1, max}, // 2^64 - 1 exactly
		{1<<32 + 1, 1<<32 - 1, max}, // the same the other way round
		{1<<32 + 1, 1 << 32, max},   // just over
		{max / 3, 3, max},           // max is divisible by 3
		{max/3 + 1, 3, max},         // overflows by 2
		{1 << 40, 1 << 30, max},     // a huge count at a huge rate
		{1 << 50, 1 << 13, 1 << 63}, // the core's cap times 8192
		{1<<50 - 1, 8191, (1<<50 - 1) * 8191},
	} {
		if got := saturatingMul(tc.a, tc.b); got != tc.want {
			t.Errorf("saturatingMul(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{Config{Overrides: []Override{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Rate: 0}}}, "overrides[0].rate: must be at least 1"},
		{Config{Overrides: []Override{{Rate: 3}}}, "overrides[0].exporter: not an address or CIDR"},
		{Config{DefaultRate: 5}, ""},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Validate() = %q, want %q", got, tt.want)
		}
	}
}
