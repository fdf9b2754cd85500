package decode

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// v5MaxRecords is the most records a v5 datagram may declare (the format
// allows 30; some devices send up to ~50). More is refused as malformed.
const v5MaxRecords = 64

func (d *Decoder) decodeV5(b []byte, addr netip.Addr, st *exporterState, ex *health.Exporter, fail func(health.Reason, error)) {
	if len(b) < 24 {
		fail(health.ReasonTruncated, fmt.Errorf("netflow v5: %d-byte header", len(b)))
		return
	}
	count := int(b[2])<<8 | int(b[3])
	if count > v5MaxRecords {
		fail(health.ReasonMalformed, fmt.Errorf("netflow v5: %d records declared", count))
		return
	}
	if len(b) < 24+48*count {
		fail(health.ReasonTruncated, fmt.Errorf("netflow v5: %d records declared in %d bytes", count, len(b)))
		return
	}
	if !d.noFastPath {
		d.fastV5(b, count, addr, st, ex)
		return
	}
	p := &d.v5
	p.Records = p.Records[:0]
	if err := netflowlegacy.DecodeMessageVersion(d.reader(b), p); err != nil {
		fail(reasonOf(err), fmt.Errorf("netflow v5: %w", err))
		return
	}
	// Header sampling interval: top 2 bits mode, low 14 bits interval.
	rate := uint32(p.SamplingInterval & 0x3fff)
	src := flow.RateHeader
	if rate == 0 {
		src = flow.RateUnknown
	}
	domain := uint32(p.EngineType)<<8 | uint32(p.EngineId)
	st.sequence(ex, newSeqKey(flow.NetFlowV5, domain), p.FlowSequence, uint32(len(p.Records)), seqRecords)

	bootMs := int64(p.UnixSecs)*1000 + int64(p.UnixNSecs)/1e6 - int64(p.SysUptime)
	for i := range p.Records {
		v := &p.Records[i]
		r := d.newRecord(addr, domain, flow.NetFlowV5)
		r.SrcAddr, r.DstAddr = v4(uint32(v.SrcAddr)), v4(uint32(v.DstAddr))
		r.SrcPort, r.DstPort = v.SrcPort, v.DstPort
		r.Proto, r.IPVersion, r.TCPFlags = v.Proto, 4, v.TCPFlags
		r.InIf, r.OutIf = uint32(v.Input), uint32(v.Output)
		r.SrcAS, r.DstAS = uint32(v.SrcAS), uint32(v.DstAS)
		r.Bytes, r.Packets = uint64(v.DOctets), uint64(v.DPkts)
		r.SamplingRate, r.RateSource = rate, src
		r.Start, r.End = bootMs+int64(v.First), bootMs+int64(v.Last)
	}
}

func v4(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

// fastV5 reads a NetFlow v5 datagram (length already checked) straight from
// its bytes; goflow2's netflowlegacy decoder, which reads every field through
// reflection-based helpers, is the reference it is fuzzed against.
func (d *Decoder) fastV5(b []byte, count int, addr netip.Addr, st *exporterState, ex *health.Exporter) {
	d.fastHits++
	be := binary.BigEndian
	rate := uint32(be.Uint16(b[22:]) & 0x3fff)
	src := flow.RateHeader
	if rate == 0 {
		src = flow.RateUnknown
	}
	domain := uint32(b[20])<<8 | uint32(b[21])
	st.sequence(ex, newSeqKey(flow.NetFlowV5, domain), be.Uint32(b[16:]), uint32(count), seqRecords)
	bootMs := int64(be.Uint32(b[8:]))*1000 + int64(be.Uint32(b[12:]))/1e6 - int64(be.Uint32(b[4:]))
	for i := 0; i < count; i++ {
		w := b[24+48*i : 72+48*i]
		r := d.newRecord(addr, domain, flow.NetFlowV5)
		r.SrcAddr, r.DstAddr = netip.AddrFrom4([4]byte(w[0:4])), netip.AddrFrom4([4]byte(w[4:8]))
		r.InIf, r.OutIf = uint32(be.Uint16(w[12:])), uint32(be.Uint16(w[14:]))
		r.Packets, r.Bytes = uint64(be.Uint32(w[16:])), uint64(be.Uint32(w[20:]))
		r.Start, r.End = bootMs+int64(be.Uint32(w[24:])), bootMs+int64(be.Uint32(w[28:]))
		r.SrcPort, r.DstPort = be.Uint16(w[32:]), be.Uint16(w[34:])
		r.TCPFlags, r.Proto, r.IPVersion = w[37], w[38], 4
		r.SrcAS, r.DstAS = uint32(be.Uint16(w[40:])), uint32(be.Uint16(w[42:]))
		r.SamplingRate, r.RateSource = rate, src
	}
}
