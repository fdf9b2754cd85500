package flow

import (
	"net/netip"
	"testing"
)

func TestInPrefixes(t *testing.T) {
	prefixes := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("fe80::/10")}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.7", true},
		{"::ffff:192.0.2.7", true}, // IPv4-mapped: matched as IPv4
		{"198.51.100.1", false},
		{"fe80::1", true},
		{"fe80::1%eth0", true}, // the zone is not part of the match
		{"2001:db8::1%eth0", false},
	} {
		if got := InPrefixes(prefixes, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("InPrefixes(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if InPrefixes(nil, netip.MustParseAddr("192.0.2.7")) {
		t.Error("no prefixes hold an address")
	}
}
