package decode

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// The fast path. goflow2's generic data-set decoder boxes every field value
// in an interface and allocates a slice per record (~20 allocations and
// ~700 ns per record). Most datagrams an exporter sends carry only data sets
// whose templates are known, so for those we read the fields straight from
// the datagram at offsets compiled once per template: the record values by
// directLayout.apply (which repeats recordBuilder.field's conversions) when
// no two fields set the same value, the rest through the recordBuilder the
// goflow2 path uses. A template with variable-length fields is read field
// by field by varDataSet, which both paths use (see varlen.go). Any
// datagram the fast path does not fully understand (template or options
// sets, options data, a missing template, a set header out of bounds) goes
// to goflow2 unchanged, which stays the reference:
// TestFastPathMatchesGoflow2, TestDirectLayoutMatchesGoflow2 and their fuzz
// targets check both give the same records and counters.

// fieldOp is one field of a compiled template: 8 bytes, as a template of
// 1024 fields recordBuilder reads (a hostile one) keeps 1024 of them for
// as long as its exporter is tracked (see templateStore.fieldBudget). An
// offset is below 1024 fields of 65534 bytes, well within int32.
type fieldOp struct {
	off      int32
	len, typ uint16
}

// compiledTemplate is a data template, or an options template with
// variable-length fields.
type compiledTemplate struct {
	// size is the record size; with variable-length fields, the shortest
	// record's (each of those taking at least its length octet).
	size int
	// vars, for a template with variable-length fields, are its fields in
	// template order (varlen.go); direct and ops are then unused.
	vars []varOp
	// options marks an options template (compiled only with
	// variable-length fields): its records set sampling rates, and its sets
	// are left to goflow2's path.
	options bool
	// direct, when not nil, reads the fields that set the record's own
	// values; ops then holds only the others (counter totals, sampling).
	direct *directLayout
	ops    []fieldOp // the fields recordBuilder uses, in template order
}

// span is where a field sits in a data record; n < 0 when it is absent.
type span struct{ off, n int32 }

func (s span) uint(data []byte) uint64 { return beUint(data[s.off : s.off+s.n]) }

// directLayout is a template whose fields each set a different record
// value: those are read at fixed offsets by straight-line code, whose
// branches go the same way for every record of the template. A loop over
// the fields and recordBuilder.field's switch per field, whose branches
// change with every field, cost twice as much (BenchmarkDecode).
type directLayout struct {
	bytes, pkts, proto, tcpFlags, srcPort, dstPort, inIf, outIf span
	srcAS, dstAS, direction, start, end                         span
	src, dst                                                    span // n is 4 or 16
	// ipVersion is the version of the template's last address field of the
	// right length (4 or 16 bytes): the one recordBuilder.field sets last.
	ipVersion uint8
}

// newDirectLayout returns the layout of ops, the fields it leaves to
// recordBuilder.field, and false when two fields set the same value: then
// the field loop decides in template order which one stands (the last one,
// or for flowDirection the last valid one), as recordBuilder does for
// goflow2.
func newDirectLayout(ops []fieldOp) (*directLayout, []fieldOp, bool) {
	absent := span{n: -1}
	l := &directLayout{absent, absent, absent, absent, absent, absent, absent, absent,
		absent, absent, absent, absent, absent, absent, absent, 0}
	var rest []fieldOp
	for _, op := range ops {
		at := span{op.off, int32(op.len)}
		var dst *span
		switch op.typ {
		case ieOctetDelta:
			dst = &l.bytes
		case iePacketDelta:
			dst = &l.pkts
		case ieProtocol:
			dst = &l.proto
		case ieTCPFlags:
			dst = &l.tcpFlags
		case ieSrcPort:
			dst = &l.srcPort
		case ieDstPort:
			dst = &l.dstPort
		case ieInIf:
			dst = &l.inIf
		case ieOutIf:
			dst = &l.outIf
		case ieSrcAS:
			dst = &l.srcAS
		case ieDstAS:
			dst = &l.dstAS
		case ieDirection:
			dst = &l.direction
		case ieFlowStartMs:
			dst = &l.start
		case ieFlowEndMs:
			dst = &l.end
		case ieSrcIPv4, ieDstIPv4, ieSrcIPv6, ieDstIPv6:
			v4 := op.typ == ieSrcIPv4 || op.typ == ieDstIPv4
			if (v4 && op.len != 4) || (!v4 && op.len != 16) {
				continue // recordBuilder.field ignores it
			}
			dst = &l.dst
			if op.typ == ieSrcIPv4 || op.typ == ieSrcIPv6 {
				dst = &l.src
			}
			l.ipVersion = 6
			if v4 {
				l.ipVersion = 4
			}
		default:
			rest = append(rest, op)
			continue
		}
		if dst.n >= 0 {
			return nil, nil, false
		}
		*dst = at
	}
	return l, rest, true
}

// apply sets the record values of one data record.
func (l *directLayout) apply(rb *recordBuilder, data []byte) {
	r := rb.r
	if l.bytes.n >= 0 {
		r.Bytes, rb.haveDelta = l.bytes.uint(data), true
	}
	if l.pkts.n >= 0 {
		r.Packets, rb.havePkts = l.pkts.uint(data), true
	}
	if l.proto.n >= 0 {
		r.Proto = uint8(l.proto.uint(data))
	}
	if l.tcpFlags.n >= 0 {
		r.TCPFlags = uint8(l.tcpFlags.uint(data))
	}
	if l.srcPort.n >= 0 {
		r.SrcPort = uint16(l.srcPort.uint(data))
	}
	if l.dstPort.n >= 0 {
		r.DstPort = uint16(l.dstPort.uint(data))
	}
	switch l.src.n {
	case 4:
		r.SrcAddr = netip.AddrFrom4([4]byte(data[l.src.off:]))
	case 16:
		r.SrcAddr = netip.AddrFrom16([16]byte(data[l.src.off:]))
	}
	switch l.dst.n {
	case 4:
		r.DstAddr = netip.AddrFrom4([4]byte(data[l.dst.off:]))
	case 16:
		r.DstAddr = netip.AddrFrom16([16]byte(data[l.dst.off:]))
	}
	if l.ipVersion != 0 {
		r.IPVersion = l.ipVersion
	}
	if l.inIf.n >= 0 {
		r.InIf = uint32(l.inIf.uint(data))
	}
	if l.outIf.n >= 0 {
		r.OutIf = uint32(l.outIf.uint(data))
	}
	if l.srcAS.n >= 0 {
		r.SrcAS = uint32(l.srcAS.uint(data))
	}
	if l.dstAS.n >= 0 {
		r.DstAS = uint32(l.dstAS.uint(data))
	}
	if l.direction.n >= 0 {
		r.Direction = direction(l.direction.uint(data))
	}
	if l.start.n >= 0 {
		r.Start = int64(l.start.uint(data))
	}
	if l.end.n >= 0 {
		r.End = int64(l.end.uint(data))
	}
}

// usedIE lists the information elements recordBuilder reads.
var usedIE = func() map[uint16]bool {
	m := map[uint16]bool{}
	for _, t := range []uint16{ieOctetDelta, iePacketDelta, ieProtocol, ieTCPFlags, ieSrcPort, ieSrcIPv4, ieInIf,
		ieDstPort, ieDstIPv4, ieOutIf, ieSrcAS, ieDstAS, ieOutBytes, ieOutPkts, ieSrcIPv6, ieDstIPv6,
		ieSamplingInterval, ieSamplerID, ieSamplerRandom, ieDirection, ieOctetTotal, iePacketTotal,
		ieFlowStartMs, ieFlowEndMs, ieInitiatorOctets, ieResponderOctets, ieInitiatorPackets, ieResponderPackets,
		ieSelectorID, ieSelectorAlgorithm, iePacketInterval, iePacketSpace, ieSamplingSize, ieSamplingPopulation,
		ieSamplingProb, ieDataLinkFrameSize, ieIPHeaderPacketSection, ieDataLinkFrameSection, ieMPLSPayloadPacketSection,
		ieDataLinkFrameType, ieSectionOffset, ieSectionExportedOctets} {
		m[t] = true
	}
	return m
}()

// compile returns the compiled form of a data template, or nil when it has
// no field that takes a byte.
func compile(t netflow.TemplateRecord) *compiledTemplate {
	if c := compileVariable(false, t.Fields); c != nil {
		return c
	}
	c := &compiledTemplate{}
	n := 0
	for _, f := range t.Fields {
		if !f.PenProvided && usedIE[f.Type] {
			n++
		}
	}
	if n > 0 {
		c.ops = make([]fieldOp, 0, n) // kept: no room to spare
	}
	for _, f := range t.Fields {
		if !f.PenProvided && usedIE[f.Type] {
			c.ops = append(c.ops, fieldOp{off: int32(c.size), len: f.Length, typ: f.Type})
		}
		c.size += int(f.Length)
	}
	if c.size == 0 {
		return nil
	}
	if l, rest, ok := newDirectLayout(c.ops); ok {
		c.direct, c.ops = l, slices.Clone(rest)
	}
	return c
}

// fastNetFlow decodes a NetFlow v9 or IPFIX datagram made only of data sets
// with compiled templates. It reports false, having changed nothing, when
// the datagram needs goflow2. The caller has checked the header's length.
// A data set whose last record runs past its end is counted through fail,
// as goflow2's path counts it.
func (d *Decoder) fastNetFlow(b []byte, st *exporterState, addr netip.Addr, proto flow.Protocol, ex *health.Exporter, fail func(health.Reason, error)) bool {
	var (
		version     uint16 = 9
		domain, seq uint32
		off, end    = 20, len(b)
		maxSets     = int(binary.BigEndian.Uint16(b[2:])) // v9: goflow2 reads at most count sets
	)
	if proto == flow.IPFIX {
		version, off, end, maxSets = 10, 16, int(binary.BigEndian.Uint16(b[2:])), 1<<30
		seq, domain = binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:])
	} else {
		seq, domain = binary.BigEndian.Uint32(b[12:]), binary.BigEndian.Uint32(b[16:])
	}
	// Pass 1: every set must be a data set of a compiled template.
	sets := 0
	for o := off; o < end && sets < maxSets; sets++ {
		if end-o < 4 {
			return false
		}
		id, l := binary.BigEndian.Uint16(b[o:]), int(binary.BigEndian.Uint16(b[o+2:]))
		if id < 256 || l < 4 || o+l > end {
			return false
		}
		if c := st.templates.compiled(templateKey(version, domain, id)); c == nil || c.options {
			return false
		}
		o += l
	}
	if sets == 0 {
		return false
	}
	// Pass 2: decode.
	start := len(d.recs)
	for o, i := off, 0; i < sets; i++ {
		id, l := binary.BigEndian.Uint16(b[o:]), int(binary.BigEndian.Uint16(b[o+2:]))
		k := templateKey(version, domain, id)
		c := st.templates.use(k) // marks it used, as goflowTemplates.GetTemplate does
		data := b[o+4 : o+l]
		dr := st.domainRate(domain)
		if c.vars != nil {
			if d.varDataSet(st, addr, domain, proto, c, data, &dr) {
				fail(health.ReasonTruncated, overrunError(proto, id))
			}
			o += l
			continue
		}
		for len(data) >= c.size {
			rb := recordBuilder{r: d.newRecord(addr, domain, proto)}
			if c.direct != nil {
				c.direct.apply(&rb, data)
			}
			for _, op := range c.ops {
				rb.field(op.typ, data[op.off:int(op.off)+int(op.len)])
			}
			rb.finish(st, domain, &dr)
			data = data[c.size:]
		}
		o += l
	}
	d.fastHits++
	ex.Templates.Store(int64(st.templates.len()))
	unit := seqRecords
	if proto == flow.NetFlowV9 {
		unit = seqDatagrams
	}
	st.sequence(ex, newSeqKey(proto, domain), seq, uint32(len(d.recs)-start), unit)
	return true
}
