package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// The fast path. goflow2's generic data-set decoder boxes every field value
// in an interface and allocates a slice per record (~20 allocations and
// ~700 ns per record). Most datagrams an exporter sends carry only data sets
// whose templates are known, so for those we read the fields straight from
// the datagram at offsets compiled once per template and feed them to the
// same recordBuilder the goflow2 path uses. Any datagram the fast path does
// not fully understand (template or options sets, options data, variable
// length fields, a missing template, any malformation) goes to goflow2
// unchanged, which stays the reference: TestFastPathMatchesGoflow2 and
// FuzzFastPathMatchesGoflow2 check both give the same records and counters.

// fieldOp is one field of a compiled template.
type fieldOp struct {
	off, len int
	typ      uint16
}

// compiledTemplate is a data template with fixed-length fields only.
type compiledTemplate struct {
	size int
	ops  []fieldOp // only the fields recordBuilder uses
}

// usedIE lists the information elements recordBuilder reads.
var usedIE = func() map[uint16]bool {
	m := map[uint16]bool{}
	for _, t := range []uint16{ieOctetDelta, iePacketDelta, ieProtocol, ieTCPFlags, ieSrcPort, ieSrcIPv4, ieInIf,
		ieDstPort, ieDstIPv4, ieOutIf, ieSrcAS, ieDstAS, ieOutBytes, ieOutPkts, ieSrcIPv6, ieDstIPv6,
		ieSamplingInterval, ieSamplerID, ieSamplerRandom, ieDirection, ieOctetTotal, iePacketTotal,
		ieFlowStartMs, ieFlowEndMs, ieInitiatorOctets, ieResponderOctets, ieInitiatorPackets, ieResponderPackets,
		ieSelectorID, ieSelectorAlgorithm, iePacketInterval, iePacketSpace, ieSamplingSize, ieSamplingPopulation,
		ieSamplingProb} {
		m[t] = true
	}
	return m
}()

// compile returns the compiled form of a data template, or nil when it has
// a variable-length field.
func compile(t netflow.TemplateRecord) *compiledTemplate {
	c := &compiledTemplate{}
	for _, f := range t.Fields {
		if f.Length == 0xffff {
			return nil
		}
		if !f.PenProvided && usedIE[f.Type] {
			c.ops = append(c.ops, fieldOp{off: c.size, len: int(f.Length), typ: f.Type})
		}
		c.size += int(f.Length)
	}
	if c.size == 0 {
		return nil
	}
	return c
}

// fastNetFlow decodes a NetFlow v9 or IPFIX datagram made only of data sets
// with compiled templates. It reports false, having changed nothing, when
// the datagram needs goflow2. The caller has checked the header's length.
func (d *Decoder) fastNetFlow(b []byte, st *exporterState, addr netip.Addr, proto flow.Protocol, ex *health.Exporter) bool {
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
		if id < 256 || l < 4 || o+l > end || st.templates.compiled[templateKey(version, domain, id)] == nil {
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
		c := st.templates.compiled[templateKey(version, domain, id)]
		data := b[o+4 : o+l]
		dr := st.domainRate(domain)
		for len(data) >= c.size {
			rb := recordBuilder{r: d.newRecord(addr, domain, proto)}
			for _, op := range c.ops {
				rb.field(op.typ, data[op.off:op.off+op.len])
			}
			rb.finish(st, domain, dr)
			data = data[c.size:]
		}
		o += l
	}
	d.fastHits++
	ex.Templates.Store(int64(len(st.templates.templates)))
	unit := seqRecords
	if proto == flow.NetFlowV9 {
		unit = seqDatagrams
	}
	st.sequence(ex, seqKey{proto, domain}, seq, uint32(len(d.recs)-start), unit)
	return true
}
