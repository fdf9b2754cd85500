package decode

import (
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
