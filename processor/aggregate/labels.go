package aggregate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// Label is one dimension from the fixed vocabulary a family may use.
type Label uint8

// The label vocabulary. The string form (see String) is the Prometheus label
// name.
const (
	LabelExporter Label = iota
	LabelInIf
	LabelOutIf
	LabelDirection
	LabelProto
	LabelSrcPort
	LabelDstPort
	LabelPort
	LabelSrcAddr
	LabelDstAddr
	LabelSrcAS
	LabelDstAS
	LabelIPVersion
	labelCount
)

var labelNames = [labelCount]string{
	LabelExporter:  "exporter",
	LabelInIf:      "in_if",
	LabelOutIf:     "out_if",
	LabelDirection: "direction",
	LabelProto:     "proto",
	LabelSrcPort:   "src_port",
	LabelDstPort:   "dst_port",
	LabelPort:      "port",
	LabelSrcAddr:   "src_addr",
	LabelDstAddr:   "dst_addr",
	LabelSrcAS:     "src_as",
	LabelDstAS:     "dst_as",
	LabelIPVersion: "ip_version",
}

// String returns the Prometheus label name.
func (l Label) String() string {
	if l < labelCount {
		return labelNames[l]
	}
	return "label" + strconv.Itoa(int(l))
}

// ParseLabel maps a label name to its Label.
func ParseLabel(name string) (Label, error) {
	for i, n := range labelNames {
		if n == name {
			return Label(i), nil
		}
	}
	return 0, fmt.Errorf("unknown label %q (known: %s)", name, strings.Join(labelNames[:], ", "))
}

// LabelNames returns the whole vocabulary.
func LabelNames() []string { return append([]string(nil), labelNames[:]...) }

// OtherValue is the value every non-exporter label takes on a family's
// overflow series.
const OtherValue = "other"

// Key identifies one series of a family. Dimensions the family does not use
// stay zero. It has no pointers so that maps keyed by it are cheap for the
// garbage collector.
type Key struct {
	Exporter         [16]byte
	Src, Dst         [16]byte
	InIf, OutIf      uint32
	SrcAS, DstAS     uint32
	SrcPort, DstPort uint16
	Port             uint16
	Proto            uint8
	IPVersion        uint8
	Direction        uint8
	// Other marks the family's overflow series for the exporter.
	Other bool
}

// ServicePort picks the port that names the application of a flow: the
// lower of the two non-zero ports (servers listen on low ports, clients on
// ephemeral ones).
func ServicePort(src, dst uint16) uint16 {
	switch {
	case src == 0:
		return dst
	case dst == 0:
		return src
	case src < dst:
		return src
	}
	return dst
}

// maskAddr keeps the first bits of a 16-byte address; for IPv4-mapped
// addresses bits counts within the IPv4 part.
func maskAddr(a *[16]byte, v4 bool, bits int) {
	if v4 {
		bits += 96
	}
	if bits >= 128 || bits < 0 {
		return
	}
	i := bits / 8
	if r := bits % 8; r != 0 {
		a[i] &= byte(0xff << (8 - r))
		i++
	}
	for ; i < 16; i++ {
		a[i] = 0
	}
}

var protoNames = map[uint8]string{
	1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre",
	50: "esp", 51: "ah", 58: "ipv6-icmp", 89: "ospf", 103: "pim", 112: "vrrp", 132: "sctp",
}

// ProtoName returns the IANA keyword for common IP protocols, else the number.
func ProtoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

func renderAddr(a [16]byte, bits int, isV4 bool) string {
	addr := netip.AddrFrom16(a)
	if isV4 {
		addr = addr.Unmap()
	}
	if bits >= 0 && bits < addr.BitLen() {
		return netip.PrefixFrom(addr, bits).String()
	}
	return addr.String()
}

// isV4 tells whether a 16-byte address is IPv4-mapped (or all zero for a v4
// record without an address).
func isV4Mapped(a [16]byte) bool {
	for i := 0; i < 10; i++ {
		if a[i] != 0 {
			return false
		}
	}
	return a[10] == 0xff && a[11] == 0xff
}

func addr16(a netip.Addr) [16]byte {
	if !a.IsValid() {
		return [16]byte{}
	}
	return a.As16()
}

// keyFor builds the family key of a record.
func (f *Family) keyFor(r *flow.Record) Key {
	var k Key
	m := f.mask
	if m&(1<<LabelExporter) != 0 {
		k.Exporter = addr16(r.Exporter)
	}
	if m&(1<<LabelInIf) != 0 {
		k.InIf = r.InIf
	}
	if m&(1<<LabelOutIf) != 0 {
		k.OutIf = r.OutIf
	}
	if m&(1<<LabelDirection) != 0 {
		k.Direction = uint8(r.Direction)
	}
	if m&(1<<LabelProto) != 0 {
		k.Proto = r.Proto
	}
	if m&(1<<LabelSrcPort) != 0 {
		k.SrcPort = r.SrcPort
	}
	if m&(1<<LabelDstPort) != 0 {
		k.DstPort = r.DstPort
	}
	if m&(1<<LabelPort) != 0 {
		k.Port = ServicePort(r.SrcPort, r.DstPort)
	}
	if m&(1<<LabelIPVersion) != 0 {
		k.IPVersion = r.IPVersion
	}
	if m&(1<<LabelSrcAddr) != 0 {
		k.Src = addr16(r.SrcAddr)
		f.maskKeyAddr(&k.Src, r.IPVersion)
	}
	if m&(1<<LabelDstAddr) != 0 {
		k.Dst = addr16(r.DstAddr)
		f.maskKeyAddr(&k.Dst, r.IPVersion)
	}
	if m&(1<<LabelSrcAS) != 0 {
		k.SrcAS = r.SrcAS
	}
	if m&(1<<LabelDstAS) != 0 {
		k.DstAS = r.DstAS
	}
	return k
}

func (f *Family) maskKeyAddr(a *[16]byte, ipv uint8) {
	if ipv == 4 {
		maskAddr(a, true, f.spec.IPv4Mask)
	} else {
		maskAddr(a, false, f.spec.IPv6Mask)
	}
}

// render returns the label values of a key in the family's label order.
func (f *Family) render(k *Key) []string {
	vals := make([]string, len(f.spec.Labels))
	for i, l := range f.spec.Labels {
		if k.Other && l != LabelExporter {
			vals[i] = OtherValue
			continue
		}
		switch l {
		case LabelExporter:
			if k.Other && k.Exporter == ([16]byte{}) {
				vals[i] = OtherValue
				continue
			}
			vals[i] = renderAddr(k.Exporter, -1, isV4Mapped(k.Exporter))
		case LabelInIf:
			vals[i] = strconv.FormatUint(uint64(k.InIf), 10)
		case LabelOutIf:
			vals[i] = strconv.FormatUint(uint64(k.OutIf), 10)
		case LabelDirection:
			vals[i] = flow.Direction(k.Direction).String()
		case LabelProto:
			vals[i] = ProtoName(k.Proto)
		case LabelSrcPort:
			vals[i] = strconv.Itoa(int(k.SrcPort))
		case LabelDstPort:
			vals[i] = strconv.Itoa(int(k.DstPort))
		case LabelPort:
			vals[i] = strconv.Itoa(int(k.Port))
		case LabelSrcAddr:
			vals[i] = f.renderKeyAddr(k.Src)
		case LabelDstAddr:
			vals[i] = f.renderKeyAddr(k.Dst)
		case LabelSrcAS:
			vals[i] = strconv.FormatUint(uint64(k.SrcAS), 10)
		case LabelDstAS:
			vals[i] = strconv.FormatUint(uint64(k.DstAS), 10)
		case LabelIPVersion:
			vals[i] = strconv.Itoa(int(k.IPVersion))
		}
	}
	return vals
}

func (f *Family) renderKeyAddr(a [16]byte) string {
	if f.spec.HashKey != nil {
		m := hmac.New(sha256.New, f.spec.HashKey)
		m.Write(a[:])
		return hex.EncodeToString(m.Sum(nil)[:8])
	}
	if isV4Mapped(a) {
		return renderAddr(a, f.spec.IPv4Mask, true)
	}
	return renderAddr(a, f.spec.IPv6Mask, false)
}
