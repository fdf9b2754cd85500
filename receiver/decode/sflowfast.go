package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// The sFlow fast path. goflow2's sFlow decoder reads every field through an
// interface, boxes each sample and record, and allocates addresses and
// record slices (~5 allocations and ~700 ns per sample). fastSFlow reads
// the same datagram in place and feeds the same sampleBuilder the goflow2
// path uses. It accepts only datagrams goflow2 decodes without error, by
// goflow2's own rules (lengths, counts, the 1000-entry limits); anything
// else (an error anywhere, drop samples, ACL and function records) goes to
// goflow2 unchanged, the reference. TestSFlowFastPathMatchesGoflow2 and
// FuzzSFlowFastPathMatchesGoflow2 check both give the same records and
// counters.

// sflowLimit is goflow2's bound on samples per datagram and records per
// sample.
const sflowLimit = 1000

// cursor reads big-endian words from a byte slice; ok turns false, for good,
// on the first read past the end.
type cursor struct {
	b  []byte
	ok bool
}

func (c *cursor) u32() uint32 {
	if !c.ok || len(c.b) < 4 {
		c.ok = false
		return 0
	}
	v := binary.BigEndian.Uint32(c.b)
	c.b = c.b[4:]
	return v
}

// next returns the next n bytes.
func (c *cursor) next(n int) []byte {
	if !c.ok || n < 0 || len(c.b) < n {
		c.ok = false
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

// ip reads an sFlow address (version 1 IPv4, 2 IPv6), as goflow2's DecodeIP.
func (c *cursor) ip() []byte {
	switch c.u32() {
	case 1:
		return c.next(4)
	case 2:
		return c.next(16)
	}
	c.ok = false
	return nil
}

// fastSFlow decodes an sFlow v5 datagram (already prechecked) in place. It
// reports false, having changed nothing, when the datagram needs goflow2.
func (d *Decoder) fastSFlow(b []byte, addr netip.Addr, st *exporterState, ex *health.Exporter) bool {
	c := cursor{b: b[4:], ok: true} // version checked by Protocol
	c.ip()
	subAgent, seq := c.u32(), c.u32()
	c.u32() // uptime
	count := c.u32()
	if !c.ok || count > sflowLimit {
		return false
	}
	start := len(d.recs)
	for i := uint32(0); i < count && len(c.b) >= 8; i++ {
		format, length := c.u32(), c.u32()
		if int64(length) > int64(len(c.b)) {
			break // goflow2 stops here without an error
		}
		if !d.fastSFlowSample(format, c.next(int(length)), addr, subAgent) {
			d.recs = d.recs[:start]
			d.samples = d.samples[:0]
			return false
		}
	}
	d.sflowRates(st, start)
	d.fastHits++
	st.sequence(ex, newSeqKey(flow.SFlowV5, subAgent), seq, uint32(len(d.recs)-start), seqDatagrams)
	return true
}

// fastSFlowSample decodes one sample; it reports false where goflow2 would
// fail or where the fast path does not go.
func (d *Decoder) fastSFlowSample(format uint32, b []byte, addr netip.Addr, subAgent uint32) bool {
	c := cursor{b: b, ok: true}
	var seq uint32
	var key poolKey
	var rate, pool, in, out, count uint32
	switch format {
	case sflow.SAMPLE_FORMAT_FLOW:
		// The fixed part, eight words, with one length check.
		if len(b) < 32 {
			return false
		}
		be := binary.BigEndian
		seq, key = be.Uint32(b), flowSampleKey(subAgent, be.Uint32(b[4:]))
		rate, pool = be.Uint32(b[8:]), be.Uint32(b[12:]) // then drops
		in, out = be.Uint32(b[20:])&0x3fffffff, be.Uint32(b[24:])&0x3fffffff
		count = be.Uint32(b[28:])
		c.b = b[32:]
		if count > sflowLimit {
			return false
		}
	case sflow.SAMPLE_FORMAT_EXPANDED_FLOW:
		seq = c.u32()
		key = newPoolKey(subAgent, c.u32(), c.u32()) // source id type, value
		rate = c.u32()
		pool = c.u32()
		c.u32() // drops
		c.u32() // input format
		in = c.u32()
		c.u32() // output format
		out = c.u32()
		count = c.u32() // bounded by sflowPrecheck
	case sflow.SAMPLE_FORMAT_COUNTER, sflow.SAMPLE_FORMAT_EXPANDED_COUNTER:
		c.u32() // sequence number
		return fastCounterSample(format, &c)
	default:
		return false // drop samples (rare) and unknown formats (an error)
	}
	if !c.ok {
		return false
	}
	sb := d.startSample(addr, subAgent, in, out)
	for i := uint32(0); i < count && len(c.b) >= 8; i++ {
		typ, length := c.u32(), c.u32()
		if int64(length) > int64(len(c.b)) {
			break
		}
		if !fastFlowRecord(&sb, typ, c.next(int(length))) {
			d.recs = d.recs[:len(d.recs)-1]
			return false
		}
	}
	d.samples = append(d.samples, poolSample{key, seq, pool, rate})
	return true
}

// fastFlowRecord applies one flow record, checking it the way goflow2's
// DecodeFlowRecord does.
func fastFlowRecord(sb *sampleBuilder, typ uint32, b []byte) bool {
	c := cursor{b: b, ok: true}
	switch typ {
	case sflow.FLOW_TYPE_RAW:
		// protocol, frame length, stripped, header length; then the header
		if len(b) < 16 {
			return false
		}
		sb.header(binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), b[16:])
	case sflow.FLOW_TYPE_ETH:
		c.next(20)
	case sflow.FLOW_TYPE_IPV4, sflow.FLOW_TYPE_IPV6:
		n, ipv := 4, uint8(4)
		if typ == sflow.FLOW_TYPE_IPV6 {
			n, ipv = 16, 6
		}
		var v sflow.SampledIPBase
		v.Length, v.Protocol = c.u32(), c.u32()
		v.SrcIP, v.DstIP = c.next(n), c.next(n)
		v.SrcPort, v.DstPort, v.TcpFlags = c.u32(), c.u32(), c.u32()
		c.u32() // ToS / priority
		if !c.ok {
			return false
		}
		sb.sampledIP(v, ipv)
	case sflow.FLOW_TYPE_EXT_SWITCH:
		c.next(16)
	case sflow.FLOW_TYPE_EXT_ROUTER:
		c.ip()
		c.next(8)
	case sflow.FLOW_TYPE_EXT_GATEWAY:
		return fastGateway(sb, &c)
	case sflow.FLOW_TYPE_EGRESS_QUEUE:
		c.next(4)
	case sflow.FLOW_TYPE_EXT_ACL, sflow.FLOW_TYPE_EXT_FUNCTION:
		return false // strings: rare, left to goflow2
	}
	return c.ok
}

// fastGateway applies an extended gateway record with goflow2's checks: at
// most one AS path segment is read, path and communities are at most 1000
// entries and (as goflow2 compares them) no more than the bytes left
// minus 4.
func fastGateway(sb *sampleBuilder, c *cursor) bool {
	c.ip()
	as, srcAS := c.u32(), c.u32()
	c.u32() // source peer AS
	dstAS := as
	if segments := c.u32(); segments != 0 {
		c.u32() // path segment type
		n := c.u32()
		if !c.ok || n > sflowLimit || int64(n) > int64(len(c.b))-4 {
			return false
		}
		if n > 0 {
			path := c.next(4 * int(n))
			if !c.ok {
				return false
			}
			dstAS = binary.BigEndian.Uint32(path[len(path)-4:])
		}
	}
	communities := c.u32()
	if !c.ok || communities > sflowLimit || int64(communities) > int64(len(c.b))-4 {
		return false
	}
	if communities > 0 {
		c.next(4 * int(communities))
	}
	c.u32() // local preference
	if !c.ok {
		return false
	}
	sb.gateway(srcAS, dstAS)
	return true
}

// fastCounterSample checks a counter sample the way goflow2 decodes it; it
// yields no record.
func fastCounterSample(format uint32, c *cursor) bool {
	c.u32() // source id (type and value for the expanded format)
	if format == sflow.SAMPLE_FORMAT_EXPANDED_COUNTER {
		c.u32()
	}
	count := c.u32()
	if !c.ok || count > sflowLimit {
		return false
	}
	for i := uint32(0); i < count && len(c.b) >= 8; i++ {
		typ, length := c.u32(), c.u32()
		if int64(length) > int64(len(c.b)) {
			break
		}
		rec := c.next(int(length))
		switch typ {
		case sflow.COUNTER_TYPE_IF:
			if len(rec) < 88 {
				return false
			}
		case sflow.COUNTER_TYPE_ETH:
			if len(rec) < 52 {
				return false
			}
		}
	}
	return c.ok
}
