package decode

import (
	"net/netip"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// varBytes encodes a variable-length IPFIX field value (RFC 7011 7).
func varBytes(b []byte) []byte {
	if len(b) < 255 {
		return cat([]byte{byte(len(b))}, b)
	}
	return cat([]byte{255}, u16(uint16(len(b))), b)
}

// fixed pads or cuts b to n bytes, as an exporter with a fixed-length
// section field sends it.
func fixed(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// ethVLANIPv6UDP returns an 802.1Q-tagged Ethernet/IPv6/UDP header for a
// packet with payloadLen bytes after the IPv6 header.
func ethVLANIPv6UDP(src, dst netip.Addr, payloadLen uint16, sport, dport uint16) []byte {
	eth := cat(make([]byte, 12), u16(0x8100), u16(100), u16(0x86dd))
	s, d := src.As16(), dst.As16()
	ip := cat([]byte{0x60, 0, 0, 0}, u16(payloadLen), []byte{17, 64}, s[:], d[:])
	return cat(eth, ip, u16(sport), u16(dport), u16(payloadLen), u16(0))
}

// TestPacketSections: IPFIX records that carry one sampled packet's first
// bytes (dataLinkFrameSection 315 or ipHeaderPacketSection 313) and its
// frame size (312) instead of counters, as Juniper's inline monitoring
// exports them, count one packet of its IP length, with the addresses,
// protocol and ports read from the section's headers; a section without an
// IP header counts the frame size. The fast path and goflow2's path must
// agree, for variable-length sections (varDataSet) as for fixed-length
// ones.
func TestPacketSections(t *testing.T) {
	v4 := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	src6, dst6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	v6 := ethVLANIPv6UDP(src6, dst6, 472, 5353, 53)
	arp := cat(make([]byte, 12), u16(0x0806), make([]byte, 28))
	ipOnly := v4[14:]

	type want struct {
		src, dst       string
		proto          uint8
		sport, dport   uint16
		bytes, packets uint64
	}
	cases := []struct {
		name    string
		typ     uint16 // section element
		section []byte
		frame   uint16
		want    want
	}{
		{"ethernet ipv4 tcp", ieDataLinkFrameSection, v4, 1418, want{"10.1.1.1", "10.2.2.2", 6, 40000, 443, 1400, 1}},
		{"vlan ipv6 udp", ieDataLinkFrameSection, v6, 534, want{"2001:db8::1", "2001:db8::2", 17, 5353, 53, 512, 1}},
		{"arp: frame size", ieDataLinkFrameSection, arp, 60, want{"invalid IP", "invalid IP", 0, 0, 0, 60, 1}},
		{"ip header section", ieIPHeaderPacketSection, ipOnly, 1418, want{"10.1.1.1", "10.2.2.2", 6, 40000, 443, 1400, 1}},
		{"ipv6 header section", ieIPHeaderPacketSection, v6[18:], 534, want{"2001:db8::1", "2001:db8::2", 17, 5353, 53, 512, 1}},
		{"mpls payload section", ieMPLSPayloadPacketSection, ipOnly, 1426, want{"10.1.1.1", "10.2.2.2", 6, 40000, 443, 1400, 1}},
	}
	for _, tc := range cases {
		for _, length := range []uint16{0xffff, 64} {
			name := tc.name + map[bool]string{true: ", variable length", false: ", fixed length"}[length == 0xffff]
			t.Run(name, func(t *testing.T) {
				p := newPair()
				section := varBytes(tc.section)
				if length != 0xffff {
					section = fixed(tc.section, int(length))
				}
				b := datagram(10, 1, 7,
					// 1 packet selected, 999 skipped: 1:1000 (RFC 5477).
					optionsTemplateSet(10, 300, []field{{149, 4}}, []field{{iePacketInterval, 4}, {iePacketSpace, 4}}),
					dataSet(300, cat(u32(7), u32(1), u32(999))),
				)
				p.check(t, b)
				b = datagram(10, 2, 7,
					templateSet(10, 256, field{ieInIf, 4}, field{ieDataLinkFrameSize, 2}, field{tc.typ, length}),
					dataSet(256, cat(u32(3), u16(tc.frame), section)),
				)
				p.check(t, b) // learns the template through goflow2
				recs := p.check(t, datagram(10, 3, 7, dataSet(256, cat(u32(3), u16(tc.frame), section))))
				if p.fast.fastHits != 1 {
					t.Errorf("the fast path took %d datagrams, want 1", p.fast.fastHits)
				}
				if len(recs) != 1 {
					t.Fatalf("%d records", len(recs))
				}
				r, w := recs[0], tc.want
				if r.SrcAddr.String() != w.src || r.DstAddr.String() != w.dst || r.Proto != w.proto || r.SrcPort != w.sport ||
					r.DstPort != w.dport || r.Bytes != w.bytes || r.Packets != w.packets || r.InIf != 3 {
					t.Errorf("record %+v, want %+v", r, w)
				}
				if r.SamplingRate != 1000 || r.RateSource != flow.RateDomain {
					t.Errorf("rate %d from %v, want 1000 from the domain's options", r.SamplingRate, r.RateSource)
				}
			})
		}
	}
}

// TestPacketSectionDoesNotOverrideCounters: a record with counters and
// addresses of its own keeps them; a section only fills what is missing.
func TestPacketSectionDoesNotOverrideCounters(t *testing.T) {
	p := newPair()
	v4 := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	b := datagram(10, 1, 7,
		templateSet(10, 256, field{1, 4}, field{2, 4}, field{8, 4}, field{ieDataLinkFrameSection, 0xffff}),
		dataSet(256, cat(u32(9000), u32(6), []byte{192, 168, 0, 9}, varBytes(v4))),
	)
	recs := p.check(t, b)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	// The record's own source wins; its IP version makes the section's
	// addresses (and with them protocol and ports) stay out.
	if r.Bytes != 9000 || r.Packets != 6 || r.SrcAddr != netip.MustParseAddr("192.168.0.9") || r.DstAddr.IsValid() {
		t.Errorf("record %+v", r)
	}
}

// TestPacketSectionEdges: a section fills only the counters a record lacks,
// is read only from the frame's start and without padding (RFC 7133
// dataLinkFrameType, sectionOffset, sectionExportedOctets), and falls back
// to the frame size when its IP length is zero; in v9 as in IPFIX, through
// both decode paths.
func TestPacketSectionEdges(t *testing.T) {
	v4 := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	zeroLen := append([]byte(nil), v4...)
	zeroLen[16], zeroLen[17] = 0, 0
	type want struct {
		bytes, packets uint64
		dst            string
		proto          uint8
		dport          uint16
	}
	for _, tc := range []struct {
		name   string
		fields []field
		rec    []byte
		want   want
	}{
		{"packets only", []field{{2, 4}, {312, 2}, {315, 64}}, cat(u32(1), u16(1418), fixed(v4, 64)), want{1400, 1, "10.2.2.2", 6, 443}},
		{"octets only", []field{{1, 4}, {312, 2}, {315, 64}}, cat(u32(1400), u16(1418), fixed(v4, 64)), want{1400, 1, "10.2.2.2", 6, 443}},
		{"more packets than the section: counters stand", []field{{2, 4}, {315, 64}}, cat(u32(5), fixed(v4, 64)), want{0, 5, "10.2.2.2", 6, 443}},
		{"frame size alone", []field{{312, 1}}, []byte{60}, want{60, 1, "invalid IP", 0, 0}},
		{"zero IP length: frame size", []field{{312, 2}, {315, 64}}, cat(u16(1418), fixed(zeroLen, 64)), want{1418, 1, "10.2.2.2", 6, 443}},
		{"own addresses keep out the section's protocol", []field{{12, 4}, {312, 2}, {315, 64}}, cat([]byte{192, 0, 2, 1}, u16(1418), fixed(v4, 64)), want{1400, 1, "192.0.2.1", 0, 0}},
		{"section offset: not read", []field{{409, 2}, {312, 2}, {315, 50}}, cat(u16(14), u16(1418), fixed(v4[14:], 50)), want{1418, 1, "invalid IP", 0, 0}},
		{"not Ethernet: not read", []field{{408, 2}, {312, 2}, {315, 64}}, cat(u16(2), u16(1418), fixed(v4, 64)), want{1418, 1, "invalid IP", 0, 0}},
		{"Ethernet frame type: read", []field{{408, 1}, {312, 2}, {315, 64}}, cat([]byte{1}, u16(1418), fixed(v4, 64)), want{1400, 1, "10.2.2.2", 6, 443}},
		// 30 octets observed (the IP header cut at 16), padded to 64: the
		// zeros are no destination address.
		{"padding is not header", []field{{410, 2}, {312, 2}, {315, 64}}, cat(u16(30), u16(1418), fixed(v4[:30], 64)), want{1418, 1, "invalid IP", 0, 0}},
		{"exported octets cover the header", []field{{410, 2}, {312, 2}, {315, 64}}, cat(u16(54), u16(1418), fixed(v4, 64)), want{1400, 1, "10.2.2.2", 6, 443}},
	} {
		for _, version := range []uint16{9, 10} {
			t.Run(tc.name+map[uint16]string{9: " v9", 10: " ipfix"}[version], func(t *testing.T) {
				p := newPair()
				p.check(t, datagram(version, 1, 7, templateSet(version, 256, tc.fields...)))
				recs := p.check(t, datagram(version, 2, 7, dataSet(256, tc.rec)))
				if p.fast.fastHits == 0 {
					t.Error("the fast path did not take the data set")
				}
				if len(recs) != 1 {
					t.Fatalf("%d records", len(recs))
				}
				r, w := recs[0], tc.want
				if r.Bytes != w.bytes || r.Packets != w.packets || r.DstAddr.String() != w.dst || r.Proto != w.proto || r.DstPort != w.dport {
					t.Errorf("record %+v, want %+v", r, w)
				}
			})
		}
	}
}

// TestSelectorAlgorithmWithoutItsFields: an options record whose
// selectorAlgorithm (304) names a formula whose fields it does not carry,
// but which states the rate another way (samplingInterval 34, or the
// count-based 305/306 beside "random n-out-of-N"), is read by the fields it
// has. Reading the formula alone gave no rate: the exporter's records were
// counted 1:1, as unresolved, though it had said 1:100.
func TestSelectorAlgorithmWithoutItsFields(t *testing.T) {
	rec := flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1)
	for _, tc := range []struct {
		name    string
		options []field
		values  []byte
	}{
		{"count-based with samplingInterval", []field{{304, 2}, {34, 4}}, cat(u16(1), u32(100))},
		{"n-out-of-N with 305/306", []field{{304, 2}, {305, 4}, {306, 4}}, cat(u16(3), u32(1), u32(99))},
		{"probabilistic with samplerRandomInterval", []field{{304, 1}, {50, 4}}, cat([]byte{4}, u32(100))},
		{"count-based with 309/310", []field{{304, 1}, {309, 4}, {310, 4}}, cat([]byte{1}, u32(1), u32(100))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair()
			recs := p.check(t, datagram(10, 0, 1,
				optionsTemplateSet(10, 257, []field{{149, 4}}, tc.options),
				templateSet(10, 256, flowFields...),
				dataSet(257, cat(u32(1), tc.values)),
				dataSet(256, rec)))
			if len(recs) != 1 || recs[0].SamplingRate != 100 || recs[0].RateSource != flow.RateDomain {
				t.Fatalf("records %+v, want one at 1:100 from the domain's options", recs)
			}
		})
	}
}
