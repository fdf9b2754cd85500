package decode

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// sflowMaxRecords bounds the flow records one sample may declare. goflow2
// bounds this itself for every sample format but the expanded flow sample,
// where a hostile count would make it allocate gigabytes: we check first.
const sflowMaxRecords = 1000

// sflowPrecheck walks the datagram's sample headers and refuses (err)
// expanded flow samples that declare more records than fit. It also
// reports (short) a datagram cut short: a sample whose length runs past
// its end, or fewer samples than it declares. goflow2 decodes the samples
// before the cut without an error, so the loss would be counted nowhere.
func sflowPrecheck(b []byte) (short, err error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%d-byte header", len(b))
	}
	off := 8
	switch binary.BigEndian.Uint32(b[4:]) {
	case 1:
		off += 4
	case 2:
		off += 16
	default:
		return nil, nil // goflow2 reports it
	}
	off += 12 // sub-agent, sequence, uptime
	if len(b) < off+4 {
		return nil, nil // goflow2 reports it as truncated
	}
	n := int(binary.BigEndian.Uint32(b[off:]))
	off += 4
	// More samples than goflow2 reads: it refuses the datagram whole
	// (malformed), so a cut in it is no separate problem.
	refused := n > sflowLimit
	for i := 0; i < n; i++ {
		if off+8 > len(b) {
			if !refused {
				short = fmt.Errorf("%d samples declared, %d in the datagram", n, i)
			}
			break
		}
		format := binary.BigEndian.Uint32(b[off:])
		length := int(binary.BigEndian.Uint32(b[off+4:]))
		off += 8
		if length < 0 || length > len(b)-off {
			if refused {
				return nil, nil
			}
			// goflow2 stops there
			return fmt.Errorf("sample %d of %d: %d bytes, %d left in the datagram", i+1, n, length, len(b)-off), nil
		}
		if format == sflow.SAMPLE_FORMAT_EXPANDED_FLOW && length >= 44 {
			cnt := binary.BigEndian.Uint32(b[off+40:])
			if cnt > sflowMaxRecords || int(cnt) > length/8 {
				return nil, fmt.Errorf("expanded flow sample declares %d records in %d bytes", cnt, length)
			}
		}
		off += length
	}
	return short, nil
}

func (d *Decoder) decodeSFlow(b []byte, addr netip.Addr, st *exporterState, ex *health.Exporter, fail func(health.Reason, error)) {
	short, err := sflowPrecheck(b)
	if err != nil {
		fail(health.ReasonMalformed, fmt.Errorf("sflow: %w", err))
		return
	}
	if short != nil {
		fail(health.ReasonTruncated, fmt.Errorf("sflow: %w", short))
	}
	if !d.noFastPath && d.fastSFlow(b, addr, st, ex) {
		return
	}
	p := &d.sf
	*p = sflow.Packet{}
	if err := sflow.DecodeMessageVersion(d.reader(b), p); err != nil {
		fail(reasonOf(err), fmt.Errorf("sflow: %w", err))
		// Samples decoded before the error are still used.
	}
	start := len(d.recs)
	for _, s := range p.Samples {
		switch s := s.(type) {
		case sflow.FlowSample:
			ps := poolSample{headerKey(p.SubAgentId, &s.Header), s.Header.SampleSequenceNumber, s.SamplePool, s.SamplingRate}
			d.sflowSample(addr, p.SubAgentId, ps, s.Input&0x3fffffff, s.Output&0x3fffffff, s.Records)
		case sflow.ExpandedFlowSample:
			ps := poolSample{headerKey(p.SubAgentId, &s.Header), s.Header.SampleSequenceNumber, s.SamplePool, s.SamplingRate}
			d.sflowSample(addr, p.SubAgentId, ps, s.InputIfValue, s.OutputIfValue, s.Records)
		}
	}
	d.sflowRates(st, start)
	st.sequence(ex, newSeqKey(flow.SFlowV5, p.SubAgentId), p.SequenceNumber, uint32(len(d.recs)-start), seqDatagrams)
}

// sflowSample appends the record of one flow sample goflow2 decoded, and
// its pool reading (ps) for sflowRates.
func (d *Decoder) sflowSample(addr netip.Addr, subAgent uint32, ps poolSample, in, out uint32, records []sflow.FlowRecord) {
	d.samples = append(d.samples, ps)
	sb := d.startSample(addr, subAgent, in, out)
	for _, rec := range records {
		switch v := rec.Data.(type) {
		case sflow.SampledHeader:
			sb.header(v.Protocol, v.FrameLength, v.HeaderData)
		case sflow.SampledIPv4:
			sb.sampledIP(v.SampledIPBase, 4)
		case sflow.SampledIPv6:
			sb.sampledIP(v.SampledIPBase, 6)
		case sflow.ExtendedGateway:
			dst := v.AS
			if n := len(v.ASPath); n > 0 {
				dst = v.ASPath[n-1]
			}
			sb.gateway(v.SrcAS, dst)
		}
	}
}

// sampleBuilder accumulates one sFlow flow sample's records. Both decode
// paths (goflow2's samples and the sFlow fast path) feed it the same values
// in the same order, so they produce the same records by construction.
type sampleBuilder struct {
	r    *flow.Record
	have bool // addresses came from a header or sampled IP record
}

// startSample appends a sample's record to d.recs and returns a builder
// over it; its rate is set by sflowRates once the datagram is decoded. A
// caller that gives the sample up removes the record again.
func (d *Decoder) startSample(addr netip.Addr, subAgent, in, out uint32) sampleBuilder {
	r := d.newRecord(addr, subAgent, flow.SFlowV5)
	r.InIf, r.OutIf, r.Packets = in, out, 1
	return sampleBuilder{r: r}
}

// setSampleRate sets a sample record's rate: the sample's own (stated),
// or its source's effective rate from the sample pool when pooled.
func setSampleRate(r *flow.Record, rate, stated uint32, pooled bool) {
	r.SamplingRate, r.RateSource = rate, flow.RateHeader
	switch {
	case rate == 0:
		r.RateSource = flow.RateUnknown
	case pooled:
		r.RateSource, r.StatedRate = flow.RatePool, stated
	}
}

// header applies a sampled packet header record (sFlow flow type 1).
func (sb *sampleBuilder) header(proto, frameLength uint32, data []byte) {
	if parseHeader(sb.r, proto, data) {
		sb.have = true
	} else if sb.r.Bytes == 0 {
		sb.r.Bytes = uint64(frameLength)
	}
}

// sampledIP applies a sampled IPv4 or IPv6 record (flow types 3 and 4)
// unless a header already gave the addresses.
func (sb *sampleBuilder) sampledIP(v sflow.SampledIPBase, ipv uint8) {
	if !sb.have {
		sampledIP(sb.r, v, ipv)
		sb.have = true
	}
}

// gateway applies an extended gateway record (flow type 1003): the source
// AS and the last AS of the path (the gateway's own AS without a path).
func (sb *sampleBuilder) gateway(srcAS, dstAS uint32) {
	sb.r.SrcAS, sb.r.DstAS = srcAS, dstAS
}

func sampledIP(r *flow.Record, v sflow.SampledIPBase, ipv uint8) {
	r.Bytes = uint64(v.Length)
	r.Proto = uint8(v.Protocol)
	r.SrcPort, r.DstPort = uint16(v.SrcPort), uint16(v.DstPort)
	r.TCPFlags = uint8(v.TcpFlags)
	r.IPVersion = ipv
	r.SrcAddr, _ = netip.AddrFromSlice(v.SrcIP)
	r.DstAddr, _ = netip.AddrFromSlice(v.DstIP)
}

// Header protocols of sFlow sampled headers.
const (
	headerEthernet = 1
	headerIPv4     = 11
	headerIPv6     = 12
)

// parseHeader reads addresses, ports and the IP length from a sampled
// packet header. Bytes are the IP packet's length (as NetFlow and IPFIX
// count them), not the frame's. It reports false when no IP header is found.
func parseHeader(r *flow.Record, proto uint32, h []byte) bool {
	switch proto {
	case headerEthernet:
		if len(h) < 14 {
			return false
		}
		et := binary.BigEndian.Uint16(h[12:])
		h = h[14:]
		for (et == 0x8100 || et == 0x88a8) && len(h) >= 4 {
			et = binary.BigEndian.Uint16(h[2:])
			h = h[4:]
		}
		switch et {
		case 0x0800:
			return parseIPv4(r, h)
		case 0x86dd:
			return parseIPv6(r, h)
		case 0x8847, 0x8848: // MPLS unicast, multicast
			return parseMPLS(r, h)
		}
		return false
	case headerIPv4:
		return parseIPv4(r, h)
	case headerIPv6:
		return parseIPv6(r, h)
	}
	return false
}

// maxMPLSLabels bounds the label stack parseMPLS walks.
const maxMPLSLabels = 8

// parseMPLS skips an MPLS label stack (4 bytes a label, the last with the
// bottom-of-stack bit) and reads the IP packet under it, told apart by its
// version nibble; a pseudowire (control word 0, Ethernet inside) or a
// longer stack is not read.
func parseMPLS(r *flow.Record, h []byte) bool {
	for range maxMPLSLabels {
		if len(h) < 4 {
			return false
		}
		bottom := h[2]&1 == 1
		h = h[4:]
		if !bottom {
			continue
		}
		return parseIP(r, h)
	}
	return false
}

// parseIP reads an IPv4 or IPv6 packet, told apart by its version nibble.
func parseIP(r *flow.Record, h []byte) bool {
	if len(h) == 0 {
		return false
	}
	switch h[0] >> 4 {
	case 4:
		return parseIPv4(r, h)
	case 6:
		return parseIPv6(r, h)
	}
	return false
}

func parseIPv4(r *flow.Record, h []byte) bool {
	if len(h) < 20 || h[0]>>4 != 4 {
		return false
	}
	ihl := int(h[0]&0x0f) * 4
	r.IPVersion = 4
	r.Bytes = uint64(binary.BigEndian.Uint16(h[2:]))
	r.Proto = h[9]
	r.SrcAddr = netip.AddrFrom4([4]byte(h[12:16]))
	r.DstAddr = netip.AddrFrom4([4]byte(h[16:20]))
	fragOff := binary.BigEndian.Uint16(h[6:]) & 0x1fff
	if ihl >= 20 && len(h) >= ihl && fragOff == 0 {
		parseL4(r, h[ihl:])
	}
	return true
}

func parseIPv6(r *flow.Record, h []byte) bool {
	if len(h) < 40 || h[0]>>4 != 6 {
		return false
	}
	r.IPVersion = 6
	r.Bytes = uint64(binary.BigEndian.Uint16(h[4:])) + 40
	r.SrcAddr = netip.AddrFrom16([16]byte(h[8:24]))
	r.DstAddr = netip.AddrFrom16([16]byte(h[24:40]))
	next, h := h[6], h[40:]
ext:
	for i := 0; i < 8; i++ { // extension headers, bounded
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(h) < 8 {
				break ext
			}
			l := (int(h[1]) + 1) * 8
			if l > len(h) {
				break ext
			}
			next, h = h[0], h[l:]
		case 44: // fragment
			if len(h) < 8 {
				break ext
			}
			first := binary.BigEndian.Uint16(h[2:])&0xfff8 == 0
			next, h = h[0], h[8:]
			if !first {
				r.Proto = next
				return true
			}
		default:
			break ext
		}
	}
	r.Proto = next
	parseL4(r, h)
	return true
}

func parseL4(r *flow.Record, h []byte) {
	switch r.Proto {
	case 6:
		if len(h) >= 14 {
			r.TCPFlags = h[13]
		}
		fallthrough
	case 17, 132:
		if len(h) >= 4 {
			r.SrcPort = binary.BigEndian.Uint16(h)
			r.DstPort = binary.BigEndian.Uint16(h[2:])
		}
	}
}
