package aggregate

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// referenceKey is SetBaseKey written the plain way, through As16.
func referenceKey(r *flow.Record) Key {
	a16 := func(a netip.Addr) [16]byte {
		if !a.IsValid() {
			return [16]byte{}
		}
		return a.As16()
	}
	return Key{
		Exporter: a16(r.Exporter), Src: a16(r.SrcAddr), Dst: a16(r.DstAddr),
		InIf: r.InIf, OutIf: r.OutIf, SrcAS: r.SrcAS, DstAS: r.DstAS,
		SrcNet: r.SrcNet, DstNet: r.DstNet, Tenant: r.Tenant, Service: r.Service,
		SrcPort: r.SrcPort, DstPort: r.DstPort, Port: ServicePort(r.SrcPort, r.DstPort),
		Proto: r.Proto, IPVersion: r.IPVersion, Direction: uint8(r.Direction),
		SrcCountry: r.SrcCountry, DstCountry: r.DstCountry,
	}
}

func TestSetBaseKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	randAddr := func() netip.Addr {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		switch rng.IntN(4) {
		case 0:
			return netip.Addr{}
		case 1:
			return netip.AddrFrom4([4]byte(b[:4]))
		case 2:
			return netip.AddrFrom16(b).WithZone("eth0")
		}
		return netip.AddrFrom16(b)
	}
	addrs := []netip.Addr{{}, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::"), netip.MustParseAddr("::ffff:192.0.2.1"),
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}
	for range 1000 {
		addrs = append(addrs, randAddr())
	}
	var k Key
	for i, a := range addrs {
		r := flow.Record{Exporter: a, SrcAddr: addrs[(i+1)%len(addrs)], DstAddr: addrs[(i+2)%len(addrs)],
			InIf: rng.Uint32(), OutIf: rng.Uint32(), SrcAS: rng.Uint32(), DstAS: rng.Uint32(),
			SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32()), Proto: uint8(rng.Uint32()), IPVersion: 4 + 2*uint8(i%2),
			Direction: flow.Direction(i % 3), SrcCountry: [2]byte{'D', 'E'}, DstCountry: [2]byte{byte(i), 'X'},
			SrcNet: flow.Symbol(rng.Uint32()), DstNet: flow.Symbol(rng.Uint32()), Tenant: flow.Symbol(rng.Uint32()), Service: flow.Service(rng.Uint32())}
		// Garbage left by a previous key must not survive, padding included.
		kb := (*[unsafe.Sizeof(k)]byte)(unsafe.Pointer(&k))
		for j := range kb {
			kb[j] = 0xa5
		}
		SetBaseKey(&k, &r)
		if want := referenceKey(&r); k != want {
			t.Fatalf("%v/%v/%v: SetBaseKey = %+v, want %+v", r.Exporter, r.SrcAddr, r.DstAddr, k, want)
		}
		// != ignores the blank padding field; the families hash whole words.
		if w := (*[keyWords]uint64)(unsafe.Pointer(&k))[keyWords-1]; w>>40 != 0 {
			t.Fatalf("Other or padding left set: last word %#x", w)
		}
	}
}

// A zoned exporter address (a link-local exporter keeps its zone) takes
// putAddr's As16 branch, since AppendBinary would allocate for the zone.
func TestSetBaseKeyZonedNoAlloc(t *testing.T) {
	r := flow.Record{Exporter: netip.MustParseAddr("fe80::1%eth0"), SrcAddr: netip.MustParseAddr("2001:db8::1"), DstAddr: netip.MustParseAddr("10.0.0.1")}
	var k Key
	if n := testing.AllocsPerRun(100, func() { SetBaseKey(&k, &r) }); n != 0 {
		t.Errorf("SetBaseKey allocates %v times per call", n)
	}
	if want := netip.MustParseAddr("fe80::1").As16(); k.Exporter != want {
		t.Errorf("exporter %x, want %x", k.Exporter, want)
	}
}
