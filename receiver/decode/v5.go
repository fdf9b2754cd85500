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
	st.sequence(ex, seqKey{flow.NetFlowV5, domain}, p.FlowSequence, uint32(len(p.Records)), seqRecords)

	bootMs := int64(p.UnixSecs)*1000 + int64(p.UnixNSecs)/1e6 - int64(p.SysUptime)
	for i := range p.Records {
		v := &p.Records[i]
		d.recs = append(d.recs, flow.Record{
			Exporter:     addr,
			Domain:       domain,
			Protocol:     flow.NetFlowV5,
			SrcAddr:      v4(uint32(v.SrcAddr)),
			DstAddr:      v4(uint32(v.DstAddr)),
			SrcPort:      v.SrcPort,
			DstPort:      v.DstPort,
			Proto:        v.Proto,
			IPVersion:    4,
			TCPFlags:     v.TCPFlags,
			InIf:         uint32(v.Input),
			OutIf:        uint32(v.Output),
			SrcAS:        uint32(v.SrcAS),
			DstAS:        uint32(v.DstAS),
			Bytes:        uint64(v.DOctets),
			Packets:      uint64(v.DPkts),
			SamplingRate: rate,
			RateSource:   src,
			Start:        bootMs + int64(v.First),
			End:          bootMs + int64(v.Last),
		})
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
	st.sequence(ex, seqKey{flow.NetFlowV5, domain}, be.Uint32(b[16:]), uint32(count), seqRecords)
	bootMs := int64(be.Uint32(b[8:]))*1000 + int64(be.Uint32(b[12:]))/1e6 - int64(be.Uint32(b[4:]))
	for i := 0; i < count; i++ {
		r := b[24+48*i : 72+48*i]
		d.recs = append(d.recs, flow.Record{
			Exporter:     addr,
			Domain:       domain,
			Protocol:     flow.NetFlowV5,
			SrcAddr:      netip.AddrFrom4([4]byte(r[0:4])),
			DstAddr:      netip.AddrFrom4([4]byte(r[4:8])),
			InIf:         uint32(be.Uint16(r[12:])),
			OutIf:        uint32(be.Uint16(r[14:])),
			Packets:      uint64(be.Uint32(r[16:])),
			Bytes:        uint64(be.Uint32(r[20:])),
			Start:        bootMs + int64(be.Uint32(r[24:])),
			End:          bootMs + int64(be.Uint32(r[28:])),
			SrcPort:      be.Uint16(r[32:]),
			DstPort:      be.Uint16(r[34:]),
			TCPFlags:     r[37],
			Proto:        r[38],
			SrcAS:        uint32(be.Uint16(r[40:])),
			DstAS:        uint32(be.Uint16(r[42:])),
			IPVersion:    4,
			SamplingRate: rate,
			RateSource:   src,
		})
	}
}
