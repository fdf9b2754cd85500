package decode

import (
	"net/netip"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// mplsFrame puts ip under an Ethernet header and an MPLS stack of the
// given labels (the last one marked bottom of stack).
func mplsFrame(labels []uint32, ip []byte) []byte {
	out := cat(make([]byte, 12), u16(0x8847))
	for i, l := range labels {
		e := l<<12 | 64 // TTL 64
		if i == len(labels)-1 {
			e |= 1 << 8
		}
		out = cat(out, u32(e))
	}
	return cat(out, ip)
}

// TestParseHeaderMPLS: sampled headers (sFlow, PSAMP sections) of labelled
// packets, as core links carry them, give the IP packet under the stack.
func TestParseHeaderMPLS(t *testing.T) {
	v4 := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)[14:]
	v6 := ethVLANIPv6UDP(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 472, 5353, 53)[18:]
	many := make([]uint32, maxMPLSLabels+1)
	for _, tc := range []struct {
		name  string
		frame []byte
		ok    bool
		src   string
		bytes uint64
		dport uint16
	}{
		{"one label, IPv4", mplsFrame([]uint32{16}, v4), true, "10.1.1.1", 1400, 443},
		{"three labels, IPv6", mplsFrame([]uint32{16, 17, 18}, v6), true, "2001:db8::1", 512, 53},
		{"pseudowire control word", mplsFrame([]uint32{16}, cat(u32(0), make([]byte, 40))), false, "invalid IP", 0, 0},
		{"stack too deep", mplsFrame(many, v4), false, "invalid IP", 0, 0},
		{"cut inside the stack", mplsFrame([]uint32{16, 17}, v4)[:20], false, "invalid IP", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r flow.Record
			ok := parseHeader(&r, headerEthernet, tc.frame)
			if ok != tc.ok || r.SrcAddr.String() != tc.src || r.Bytes != tc.bytes || r.DstPort != tc.dport {
				t.Errorf("parseHeader = %v, %+v; want %v, src %s, %d bytes, port %d", ok, r, tc.ok, tc.src, tc.bytes, tc.dport)
			}
		})
	}
	// The same frame as an sFlow sampled header: counted by its IP packet.
	d, ex := New(Limits{}), newPair().exFast
	recs := decodeAll(t, d, ex, sflowDatagram(1, 1, mplsFrame([]uint32{16, 17}, v4), 1426))
	if len(recs) != 1 || recs[0].Bytes != 1400 || recs[0].SrcAddr != netip.MustParseAddr("10.1.1.1") || recs[0].DstPort != 443 {
		t.Errorf("sFlow sample of an MPLS frame: %+v", recs)
	}
}
