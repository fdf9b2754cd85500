package aggregate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

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
	// Enrichment labels (processor/enrich).
	LabelSrcNet
	LabelDstNet
	LabelTenant
	LabelSrcCountry
	LabelDstCountry
	LabelService
	labelCount
)

var labelNames = [labelCount]string{
	LabelExporter:   "exporter",
	LabelInIf:       "in_if",
	LabelOutIf:      "out_if",
	LabelDirection:  "direction",
	LabelProto:      "proto",
	LabelSrcPort:    "src_port",
	LabelDstPort:    "dst_port",
	LabelPort:       "port",
	LabelSrcAddr:    "src_addr",
	LabelDstAddr:    "dst_addr",
	LabelSrcAS:      "src_as",
	LabelDstAS:      "dst_as",
	LabelIPVersion:  "ip_version",
	LabelSrcNet:     "src_net",
	LabelDstNet:     "dst_net",
	LabelTenant:     "tenant",
	LabelSrcCountry: "src_country",
	LabelDstCountry: "dst_country",
	LabelService:    "service",
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
const OtherValue = flow.OtherValue

// UnknownValue is the value of an enrichment label (src_net, dst_net,
// tenant, src_country, dst_country) when the record matched nothing, and of
// service for a record without ports.
const UnknownValue = flow.UnknownValue

// NoServiceValue is the service of a record without ports (ICMP, GRE...).
const NoServiceValue = flow.NoServiceValue

// Key identifies one series of a family. Dimensions the family does not use
// stay zero. It has no pointers so that maps keyed by it are cheap for the
// garbage collector.
type Key struct {
	Exporter         [16]byte
	Src, Dst         [16]byte
	InIf, OutIf      uint32
	SrcAS, DstAS     uint32
	SrcNet, DstNet   flow.Symbol
	Tenant           flow.Symbol
	Service          flow.Service
	SrcPort, DstPort uint16
	Port             uint16
	Proto            uint8
	IPVersion        uint8
	Direction        uint8
	// SrcCountry and DstCountry are ISO 3166-1 alpha-2 codes.
	SrcCountry, DstCountry [2]byte
	// Other marks the family's overflow series for the exporter.
	Other bool
	_     [2]byte // a whole number of 64-bit words, for Family.key
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

// putAddr stores a's 16-byte form (all zero for the zero Addr) at dst.
//
// It avoids As16 on the hot path: As16's result is built on the stack in two
// 8-byte halves and copied out with one 16-byte load, which stalls on store
// forwarding. As4 (a 4-byte store and load) and AppendBinary (inlined, it
// stores the two words straight into dst) do not.
func putAddr(dst *[16]byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		binary.LittleEndian.PutUint64(dst[:8], 0)
		binary.LittleEndian.PutUint64(dst[8:], 0xffff0000|uint64(binary.LittleEndian.Uint32(v[:]))<<32)
		return
	}
	putAddr6(dst, a)
}

// putAddr6 is putAddr for all but IPv4 addresses.
func putAddr6(dst *[16]byte, a netip.Addr) {
	switch {
	case !a.IsValid():
		*dst = [16]byte{}
	case a.Zone() == "":
		a.AppendBinary(dst[:0]) // exactly 16 bytes, written in place
	default: // a zone would make AppendBinary allocate
		*dst = a.As16()
	}
}

// SetBaseKey fills every dimension of k from a record; a family keeps only
// its own dimensions with one AND against its mask (see Family.AddKeyed).
// Computing it once per record serves every family. It writes k in place:
// the Key is 96 bytes, and returning it by value cost a copy per record.
func SetBaseKey(k *Key, r *flow.Record) {
	putAddr(&k.Exporter, r.Exporter)
	putAddr(&k.Src, r.SrcAddr)
	putAddr(&k.Dst, r.DstAddr)
	k.InIf, k.OutIf = r.InIf, r.OutIf
	k.SrcAS, k.DstAS = r.SrcAS, r.DstAS
	k.SrcNet, k.DstNet, k.Tenant, k.Service = r.SrcNet, r.DstNet, r.Tenant, r.Service
	k.SrcPort, k.DstPort = r.SrcPort, r.DstPort
	k.Port = ServicePort(r.SrcPort, r.DstPort)
	k.Proto, k.IPVersion = r.Proto, r.IPVersion
	// The last word also holds Other and the padding: zero it whole.
	(*[keyWords]uint64)(unsafe.Pointer(k))[keyWords-1] = 0
	k.Direction = uint8(r.Direction)
	k.SrcCountry, k.DstCountry = r.SrcCountry, r.DstCountry
}

// keyWords is Key's size in 64-bit words.
const keyWords = 12

// otherWord is the word of Key that holds Other; every family keeps it.
const otherWord = int(unsafe.Offsetof(Key{}.Other) / 8)

// Key must be exactly keyWords words.
var _ [unsafe.Sizeof(Key{})]struct{} = [keyWords * 8]struct{}{}

// keyMask returns the mask that keeps a family's dimensions, with src/dst
// addresses truncated to bits for IPv4 (v4) or IPv6 records.
func keyMask(m uint32, v4 bool, v4bits, v6bits int) Key {
	var k Key
	ones16 := [16]byte{}
	for i := range ones16 {
		ones16[i] = 0xff
	}
	if m&(1<<LabelExporter) != 0 {
		k.Exporter = ones16
	}
	if m&(1<<LabelSrcAddr) != 0 {
		k.Src = ones16
	}
	if m&(1<<LabelDstAddr) != 0 {
		k.Dst = ones16
	}
	bits := v6bits
	if v4 {
		bits = v4bits
	}
	maskAddr(&k.Src, v4, bits)
	maskAddr(&k.Dst, v4, bits)
	set32 := func(l Label, p *uint32) {
		if m&(1<<l) != 0 {
			*p = ^uint32(0)
		}
	}
	set16 := func(l Label, p *uint16) {
		if m&(1<<l) != 0 {
			*p = ^uint16(0)
		}
	}
	set8 := func(l Label, p *uint8) {
		if m&(1<<l) != 0 {
			*p = ^uint8(0)
		}
	}
	set32(LabelInIf, &k.InIf)
	set32(LabelOutIf, &k.OutIf)
	set32(LabelSrcAS, &k.SrcAS)
	set32(LabelDstAS, &k.DstAS)
	set16(LabelSrcPort, &k.SrcPort)
	set16(LabelDstPort, &k.DstPort)
	set16(LabelPort, &k.Port)
	set8(LabelProto, &k.Proto)
	set8(LabelIPVersion, &k.IPVersion)
	set8(LabelDirection, &k.Direction)
	set32(LabelSrcNet, (*uint32)(&k.SrcNet))
	set32(LabelDstNet, (*uint32)(&k.DstNet))
	set32(LabelTenant, (*uint32)(&k.Tenant))
	set32(LabelService, (*uint32)(&k.Service))
	if m&(1<<LabelSrcCountry) != 0 {
		k.SrcCountry = [2]byte{0xff, 0xff}
	}
	if m&(1<<LabelDstCountry) != 0 {
		k.DstCountry = [2]byte{0xff, 0xff}
	}
	return k
}

// labelSep separates label values in a series' joined labels. It never
// occurs in valid UTF-8, and joinLabels makes every value valid UTF-8 (which
// exposition needs anyway).
const labelSep = "\xff"

// joinLabels joins label values into one string: a series keeps one string
// header and one allocation instead of a slice of strings.
func joinLabels(vals []string) string {
	for i, v := range vals {
		if !utf8.ValidString(v) {
			vals[i] = strings.ToValidUTF8(v, "\uFFFD")
		}
	}
	return strings.Join(vals, labelSep)
}

// splitLabels splits joined labels into dst, which has one element per
// value; the values share joined's memory.
func splitLabels(dst []string, joined string) {
	for i := range len(dst) - 1 {
		j := strings.IndexByte(joined, labelSep[0])
		dst[i], joined = joined[:j], joined[j+1:]
	}
	dst[len(dst)-1] = joined
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
		case LabelSrcNet:
			vals[i] = symbolValue(k.SrcNet)
		case LabelDstNet:
			vals[i] = symbolValue(k.DstNet)
		case LabelTenant:
			vals[i] = symbolValue(k.Tenant)
		case LabelSrcCountry:
			vals[i] = countryValue(k.SrcCountry)
		case LabelDstCountry:
			vals[i] = countryValue(k.DstCountry)
		case LabelService:
			vals[i] = k.Service.String()
			if k.Service == 0 {
				vals[i] = NoServiceValue
			}
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

func symbolValue(s flow.Symbol) string {
	if v := s.String(); v != "" {
		return v
	}
	return UnknownValue
}

func countryValue(c [2]byte) string {
	if c == ([2]byte{}) {
		return UnknownValue
	}
	return string(c[:])
}
