package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// Information element ids (IANA IPFIX; NetFlow v9 shares 1-127).
const (
	ieOctetDelta         = 1
	iePacketDelta        = 2
	ieProtocol           = 4
	ieTCPFlags           = 6
	ieSrcPort            = 7
	ieSrcIPv4            = 8
	ieInIf               = 10
	ieDstPort            = 11
	ieDstIPv4            = 12
	ieOutIf              = 14
	ieSrcAS              = 16
	ieDstAS              = 17
	ieOutBytes           = 23
	ieOutPkts            = 24
	ieSrcIPv6            = 27
	ieDstIPv6            = 28
	ieSamplingInterval   = 34
	ieSamplerID          = 48
	ieSamplerRandom      = 50
	ieIPVersion          = 60
	ieDirection          = 61
	ieOctetTotal         = 85
	iePacketTotal        = 86
	ieFlowStartMs        = 152
	ieFlowEndMs          = 153
	ieInitiatorOctets    = 231
	ieResponderOctets    = 232
	ieInitiatorPackets   = 298
	ieResponderPackets   = 299
	ieSelectorID         = 302
	ieSelectorAlgorithm  = 304
	iePacketInterval     = 305
	iePacketSpace        = 306
	ieSamplingSize       = 309
	ieSamplingPopulation = 310
	ieSamplingProb       = 311
	// PSAMP packet sections (RFC 5477): a record carrying one sampled
	// packet's first bytes instead of counters, as Juniper's inline
	// monitoring exports.
	ieDataLinkFrameSize     = 312
	ieIPHeaderPacketSection = 313
	ieDataLinkFrameSection  = 315
	// mplsPayloadPacketSection starts at the IP header under the labels.
	ieMPLSPayloadPacketSection = 317
	// RFC 7133: what the section holds when it is not a whole Ethernet
	// frame's start: the frame type (1 is IEEE 802.3 Ethernet), the offset
	// the section starts at, and how many of its octets were observed (the
	// rest is padding).
	ieDataLinkFrameType     = 408
	ieSectionOffset         = 409
	ieSectionExportedOctets = 410
)

// beUint reads a big-endian unsigned integer of 1 to 8 bytes (reduced-size
// encoding, RFC 7011 6.2). Longer values keep their last 8 bytes.
func beUint(b []byte) uint64 {
	switch len(b) { // the common widths without a loop
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	case 8:
		return binary.BigEndian.Uint64(b)
	}
	if len(b) > 8 {
		b = b[len(b)-8:]
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func fieldBytes(f *netflow.DataField) []byte {
	b, _ := f.Value.([]byte)
	return b
}

// samplingFields collects the RFC 5477 / NetFlow v9 fields that state a rate.
type samplingFields struct {
	interval, random, pktInterval, pktSpace, size, population uint64
	algorithm                                                 uint64
	probability                                               float64
	samplerID                                                 uint64
	hasSampler, any                                           bool
}

func (s *samplingFields) set(f *netflow.DataField) bool {
	if f.PenProvided {
		return false
	}
	return s.setValue(f.Type, fieldBytes(f))
}

// setValue records one sampling-related field; it reports whether typ is one.
func (s *samplingFields) setValue(typ uint16, b []byte) bool {
	switch typ {
	case ieSamplingInterval:
		s.interval = beUint(b)
	case ieSamplerRandom:
		s.random = beUint(b)
	case iePacketInterval:
		s.pktInterval = beUint(b)
	case iePacketSpace:
		s.pktSpace = beUint(b)
	case ieSamplingSize:
		s.size = beUint(b)
	case ieSamplingPopulation:
		s.population = beUint(b)
	case ieSelectorAlgorithm:
		s.algorithm = beUint(b)
	case ieSamplingProb:
		switch len(b) {
		case 8:
			s.probability = math.Float64frombits(binary.BigEndian.Uint64(b))
		case 4:
			s.probability = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		}
	case ieSamplerID, ieSelectorID:
		s.samplerID, s.hasSampler = beUint(b), true
		return true
	default:
		return false
	}
	s.any = true
	return true
}

// rate returns the 1:N rate the fields state, 0 if none. The selector
// algorithm (IE 304) decides which fields count: 1 systematic count-based
// (interval+space)/interval, 3 random n-out-of-N population/size, 4 uniform
// probabilistic 1/probability. Without it, or when the record lacks the
// fields of the formula it names (it states the rate another way): 34,
// then 50, then the PSAMP fields in the same order.
func (s *samplingFields) rate() uint32 {
	countBased := func() uint64 {
		if s.pktInterval == 0 {
			return 0
		}
		return flow.SatAdd(s.pktInterval, s.pktSpace) / s.pktInterval
	}
	nOutOfN := func() uint64 {
		if s.size == 0 {
			return 0
		}
		return s.population / s.size
	}
	prob := func() uint64 {
		if s.probability <= 0 || s.probability > 1 || math.IsNaN(s.probability) {
			return 0
		}
		return uint64(math.Round(1 / s.probability))
	}
	var r uint64
	switch s.algorithm {
	case 1:
		r = countBased()
	case 3:
		r = nOutOfN()
	case 4:
		r = prob()
	}
	if r == 0 {
		switch {
		case s.interval != 0:
			r = s.interval
		case s.random != 0:
			r = s.random
		case s.population != 0 && s.size != 0:
			r = nOutOfN()
		case s.pktInterval != 0:
			r = countBased()
		default:
			r = prob()
		}
	}
	if r > math.MaxUint32 {
		r = math.MaxUint32
	}
	return uint32(r)
}

func (d *Decoder) decodeNetFlow(b []byte, addr netip.Addr, st *exporterState, proto flow.Protocol, ex *health.Exporter, fail func(health.Reason, error)) {
	if proto == flow.IPFIX {
		if len(b) < 16 {
			fail(health.ReasonTruncated, fmt.Errorf("ipfix: %d-byte header", len(b)))
			return
		}
		if l := int(binary.BigEndian.Uint16(b[2:])); l > len(b) {
			fail(health.ReasonTruncated, fmt.Errorf("ipfix: message length %d, datagram %d bytes", l, len(b)))
			return
		} else if l < 16 {
			fail(health.ReasonMalformed, fmt.Errorf("ipfix: message length %d", l))
			return
		}
	} else if len(b) < 20 {
		fail(health.ReasonTruncated, fmt.Errorf("netflow v9: %d-byte header", len(b)))
		return
	}
	// The fast path takes only messages whose sets all fit (it refuses
	// any that runs past the end), so only what it declines is walked
	// again for a cut.
	if !d.noFastPath && d.fastNetFlow(b, st, addr, proto, ex, fail) {
		return
	}
	cut := setOverrun(b, proto)
	if cut == nil {
		d.goflowNetFlow(b, addr, st, proto, ex, fail)
		return
	}
	// A message cut short is one problem: counted once as truncated. goflow2
	// reports a cut inside a template set, and the variable-length decoder
	// one inside a record, themselves; only a cut that nothing reports
	// (between records, say) is counted here.
	reported := false
	d.goflowNetFlow(b, addr, st, proto, ex, func(r health.Reason, err error) {
		reported = reported || r == health.ReasonTruncated
		fail(r, err)
	})
	if !reported {
		fail(health.ReasonTruncated, cut)
	}
}

// goflowNetFlow decodes a v9 or IPFIX message, its header checked, with
// goflow2.
func (d *Decoder) goflowNetFlow(b []byte, addr netip.Addr, st *exporterState, proto flow.Protocol, ex *health.Exporter, fail func(health.Reason, error)) {
	var (
		sets   []any
		domain uint32
		seq    uint32
		err    error
		name   = netflowName(proto)
	)
	if proto == flow.IPFIX {
		p := &d.ipfix
		p.FlowSets = nil
		err = netflow.DecodeMessageVersion(d.reader(b), d.templatesFor(st), &d.v9, p)
		sets, domain, seq = p.FlowSets, p.ObservationDomainId, p.SequenceNumber
	} else {
		p := &d.v9
		p.FlowSets = nil
		err = netflow.DecodeMessageVersion(d.reader(b), d.templatesFor(st), p, &d.ipfix)
		sets, domain, seq = p.FlowSets, p.SourceId, p.SequenceNumber
	}
	d.gt.templateStore = nil
	ex.Templates.Store(int64(st.templates.len()))
	// Every refused template is counted; the first of each reason is
	// also returned (for the log: a datagram of thousands of bad
	// templates makes one error, not thousands).
	var reported uint64 // a bit per health.Reason
	for _, e := range d.gt.refused {
		if r := reasonOf(e); reported&(1<<r) != 0 {
			ex.CountError(r)
		} else {
			reported |= 1 << r
			fail(r, fmt.Errorf("%s: %w", name, e))
		}
	}
	clear(d.gt.refused) // keep no error alive until the next datagram
	if err != nil {
		// Missing templates are counted per set below; anything else once.
		var others error
		for _, e := range unjoin(err) {
			if !errors.Is(e, netflow.ErrorTemplateNotFound) {
				others = e
				break
			}
		}
		if others != nil {
			fail(reasonOf(others), fmt.Errorf("%s: %w", name, others))
		}
	}

	// The data sets of templates with variable-length fields, kept from
	// goflow2 (varlen.go), are decoded below where goflow2's would be.
	misses := d.pairMisses(sets)
	if d.refVarSet != nil {
		for i, m := range misses {
			if m.c != nil {
				var overrun bool
				if sets[i], overrun = d.refVarSet(netflowVersion(proto), m.t, sets[i].(netflow.RawFlowSet).Records); overrun {
					fail(health.ReasonTruncated, overrunError(proto, m.id))
				}
				misses[i] = templateMiss{}
			}
		}
	}

	// Options first, so a rate sent in the same datagram as (even after)
	// the data applies to it. IPFIX sequence numbers count options records
	// too (RFC 7011 10.3.1).
	var optRecords, refused uint32
	for i, s := range sets {
		switch s := s.(type) {
		case netflow.OptionsDataFlowSet:
			for i := range s.Records {
				if !d.options(st, domain, &s.Records[i]) {
					refused++
				}
				optRecords++
			}
		case netflow.RawFlowSet:
			switch c := misses[i].c; {
			case s.Id < 256:
			case c == nil:
				ex.TemplateMissingSets.Add(1)
				ex.CountError(health.ReasonTemplateMissing)
			case c.options:
				n, r, overrun := d.varOptionsSet(st, domain, c, s.Records)
				optRecords, refused = optRecords+n, refused+r
				if overrun {
					fail(health.ReasonTruncated, overrunError(proto, s.Id))
				}
			}
		}
	}
	if refused > 0 {
		fail(health.ReasonSamplerLimit, fmt.Errorf("%s: %d sampling rates refused: the exporter already has %d samplers", name, refused, d.limits.MaxSamplers))
	}
	start := len(d.recs)
	for i, s := range sets {
		switch s := s.(type) {
		case netflow.DataFlowSet:
			for i := range s.Records {
				d.dataRecord(st, addr, domain, proto, s.Records[i].Values)
			}
		case netflow.RawFlowSet:
			if c := misses[i].c; c != nil && !c.options {
				if dr := st.domainRate(domain); d.varDataSet(st, addr, domain, proto, c, s.Records, &dr) {
					fail(health.ReasonTruncated, overrunError(proto, s.Id))
				}
			}
		}
	}
	n := uint32(len(d.recs) - start)
	unit := seqRecords
	if proto == flow.NetFlowV9 {
		unit = seqDatagrams
	} else {
		n += optRecords
	}
	st.sequence(ex, newSeqKey(proto, domain), seq, n, unit)
}

// setOverrun returns an error for a v9 or IPFIX message (its header
// checked) cut short: a set whose length runs past the end of the message
// (IPFIX: its length; v9: the datagram), among the sets goflow2 reads (v9:
// at most the header's count). goflow2 decodes the records before the cut
// without an error, so the loss would be counted nowhere. A set header cut
// short, or a set length below 4, is left to goflow2, which reports it.
func setOverrun(b []byte, proto flow.Protocol) error {
	off, end, maxSets := 20, len(b), int(binary.BigEndian.Uint16(b[2:]))
	if proto == flow.IPFIX {
		off, end, maxSets = 16, int(binary.BigEndian.Uint16(b[2:])), math.MaxInt
	}
	for o, i := off, 0; o < end && i < maxSets; i++ {
		if end-o < 4 {
			return nil
		}
		id, l := binary.BigEndian.Uint16(b[o:]), int(binary.BigEndian.Uint16(b[o+2:]))
		if l < 4 {
			return nil
		}
		if l > end-o {
			return fmt.Errorf("%s: set %d of %d bytes, %d left in the message", netflowName(proto), id, l, end-o)
		}
		o += l
	}
	return nil
}

// templatesFor returns the exporter's template store as goflow2 is to see
// it (goflowTemplates).
func (d *Decoder) templatesFor(st *exporterState) *goflowTemplates {
	d.gt.templateStore, d.gt.misses, d.gt.refused = st.templates, d.gt.misses[:0], d.gt.refused[:0]
	return &d.gt
}

// netflowName is how errors name a v9 or IPFIX protocol.
func netflowName(proto flow.Protocol) string {
	if proto == flow.IPFIX {
		return "ipfix"
	}
	return "netflow v9"
}

// netflowVersion is the NetFlow version number of a v9 or IPFIX protocol.
func netflowVersion(proto flow.Protocol) uint16 {
	if proto == flow.IPFIX {
		return 10
	}
	return 9
}

// unjoin flattens errors.Join trees and wrapping chains that contain joins.
func unjoin(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			if inner := x.Unwrap(); inner != nil {
				if _, isJoin := inner.(interface{ Unwrap() []error }); isJoin {
					walk(inner)
					return
				}
			}
			out = append(out, e)
		default:
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

// options reads an options data record: a sampling rate for a sampler id or
// for the whole observation domain.
//
// It reports false when the rate was refused because the exporter already
// has MaxSamplers entries, all in use by data (see usedMap).
func (d *Decoder) options(st *exporterState, domain uint32, rec *netflow.OptionsDataRecord) bool {
	var sf samplingFields
	for i := range rec.ScopesValues {
		sf.set(&rec.ScopesValues[i])
	}
	for i := range rec.OptionsValues {
		sf.set(&rec.OptionsValues[i])
	}
	return d.setRate(st, domain, &sf)
}

// setRate stores the sampling rate an options record's fields state, as
// options says.
func (d *Decoder) setRate(st *exporterState, domain uint32, sf *samplingFields) bool {
	if !sf.any {
		return true
	}
	r := sf.rate()
	if r == 0 {
		return true
	}
	if sf.hasSampler {
		return st.samplers.put(samplerKey{domain, uint32(sf.samplerID)}, r, d.limits.MaxSamplers)
	}
	return st.domains.put(domain, r, d.limits.MaxSamplers)
}

// recordBuilder accumulates one data record's fields. Both decode paths
// (goflow2's data sets and the compiled fast path) feed it the same
// (type, bytes) pairs, except the record values a template's directLayout
// reads itself with the same conversions; differential tests and fuzzing
// against goflow2 check that the records agree.
type recordBuilder struct {
	r                              *flow.Record // the record being built, in place in Decoder.recs
	sf                             samplingFields
	octTotal, pktTotal, outB, outP uint64
	initB, respB, initP, respP     uint64
	haveDelta, havePkts            bool
	// section is a packet section (IE 315 from the frame's start, IE 313
	// and 317 from the IP header), a slice of the datagram; frameSize is IE 312.
	// frameType (408), sectionOffset (409) and exported (410) say where
	// the section starts and how much of it is real (RFC 7133).
	section                  []byte
	sectionIP                bool
	frameSize                uint64
	frameType, sectionOffset uint64
	exported                 uint64
	haveFrameType, haveExp   bool
}

// field applies one non-enterprise field value.
func (rb *recordBuilder) field(typ uint16, b []byte) {
	r := rb.r
	switch typ {
	case ieOctetDelta:
		r.Bytes, rb.haveDelta = beUint(b), true
	case iePacketDelta:
		r.Packets, rb.havePkts = beUint(b), true
	case ieOctetTotal:
		rb.octTotal = beUint(b)
	case iePacketTotal:
		rb.pktTotal = beUint(b)
	case ieOutBytes:
		rb.outB = beUint(b)
	case ieOutPkts:
		rb.outP = beUint(b)
	case ieInitiatorOctets:
		rb.initB = beUint(b)
	case ieResponderOctets:
		rb.respB = beUint(b)
	case ieInitiatorPackets:
		rb.initP = beUint(b)
	case ieResponderPackets:
		rb.respP = beUint(b)
	case ieProtocol:
		r.Proto = uint8(beUint(b))
	case ieTCPFlags:
		r.TCPFlags = uint8(beUint(b))
	case ieSrcPort:
		r.SrcPort = uint16(beUint(b))
	case ieDstPort:
		r.DstPort = uint16(beUint(b))
	case ieSrcIPv4:
		if len(b) == 4 {
			r.SrcAddr, r.IPVersion = netip.AddrFrom4([4]byte(b)), 4
		}
	case ieDstIPv4:
		if len(b) == 4 {
			r.DstAddr, r.IPVersion = netip.AddrFrom4([4]byte(b)), 4
		}
	case ieSrcIPv6:
		if len(b) == 16 {
			r.SrcAddr, r.IPVersion = netip.AddrFrom16([16]byte(b)), 6
		}
	case ieDstIPv6:
		if len(b) == 16 {
			r.DstAddr, r.IPVersion = netip.AddrFrom16([16]byte(b)), 6
		}
	case ieInIf:
		r.InIf = uint32(beUint(b))
	case ieOutIf:
		r.OutIf = uint32(beUint(b))
	case ieSrcAS:
		r.SrcAS = uint32(beUint(b))
	case ieDstAS:
		r.DstAS = uint32(beUint(b))
	case ieDirection:
		if d := direction(beUint(b)); d != flow.DirectionUnknown {
			r.Direction = d
		}
	case ieFlowStartMs:
		r.Start = int64(beUint(b))
	case ieFlowEndMs:
		r.End = int64(beUint(b))
	case ieDataLinkFrameSection:
		rb.section, rb.sectionIP = b, false
	case ieIPHeaderPacketSection, ieMPLSPayloadPacketSection:
		rb.section, rb.sectionIP = b, true
	case ieDataLinkFrameSize:
		rb.frameSize = beUint(b)
	case ieDataLinkFrameType:
		rb.frameType, rb.haveFrameType = beUint(b), true
	case ieSectionOffset:
		rb.sectionOffset = beUint(b)
	case ieSectionExportedOctets:
		rb.exported, rb.haveExp = beUint(b), true
	default:
		rb.sf.setValue(typ, b)
	}
}

// packet completes a record that carries a sampled packet rather than
// counters (PSAMP: a packet section and/or the frame's size): one packet of
// its IP length (as NetFlow and IPFIX count bytes), or of its frame size
// when the section holds no readable IP header. Counters the record has
// stand; the section fills those it lacks (no bytes with at most one
// packet, or no packets). A record without addresses of its own takes the
// section's, and the section's protocol and ports unless it has a
// protocol. sFlow's raw packet headers are read the same way
// (parseHeader). A section is read only from the frame's (or IP header's)
// start: not at a sectionOffset, nor as Ethernet when dataLinkFrameType
// says another link layer, and without the padding beyond
// sectionExportedOctets (RFC 7133).
func (rb *recordBuilder) packet() {
	r := rb.r
	var p flow.Record
	parsed := false
	section := rb.section
	if rb.haveExp && rb.exported < uint64(len(section)) {
		section = section[:rb.exported]
	}
	ethernet := !rb.haveFrameType || rb.frameType == 1
	if rb.sectionOffset == 0 {
		switch {
		case rb.sectionIP:
			parsed = parseIP(&p, section)
		case ethernet:
			parsed = parseHeader(&p, headerEthernet, section)
		}
	}
	size := rb.frameSize
	if parsed && p.Bytes != 0 {
		size = p.Bytes
	}
	if size != 0 || parsed {
		switch {
		case r.Bytes == 0 && r.Packets <= 1:
			r.Bytes, r.Packets = size, 1
		case r.Packets == 0:
			r.Packets = 1
		}
	}
	if !parsed || r.IPVersion != 0 {
		return
	}
	r.IPVersion, r.SrcAddr, r.DstAddr = p.IPVersion, p.SrcAddr, p.DstAddr
	if r.Proto == 0 {
		r.Proto, r.SrcPort, r.DstPort, r.TCPFlags = p.Proto, p.SrcPort, p.DstPort, p.TCPFlags
	}
}

// direction maps flowDirection (IE 61) to the record's; other values are
// DirectionUnknown.
func direction(v uint64) flow.Direction {
	switch v {
	case 0:
		return flow.DirectionIngress
	case 1:
		return flow.DirectionEgress
	}
	return flow.DirectionUnknown
}

// domainRate is an observation domain's sampling rate from options data,
// looked up once per data set rather than once per record. The domain's
// entry is marked used (usedMap) by the first record that takes the rate,
// on every decode path alike, not by the lookup.
type domainRate struct {
	rate   uint32
	ok     bool
	marked bool
}

func (st *exporterState) domainRate(domain uint32) domainRate {
	r, ok := st.domains.peek(domain)
	return domainRate{rate: r, ok: ok}
}

// finish resolves counters and the sampling rate of the record in place.
func (rb *recordBuilder) finish(st *exporterState, domain uint32, dr *domainRate) {
	r := rb.r
	// Byte counters, in order of trust: deltas; totals; NSEL
	// initiator+responder; OUT_BYTES alone. IN and OUT bytes are never
	// summed: some firewalls send both with the same value.
	if !rb.haveDelta {
		switch {
		case rb.octTotal != 0:
			r.Bytes = rb.octTotal
		case rb.initB != 0 || rb.respB != 0:
			r.Bytes = flow.SatAdd(rb.initB, rb.respB)
		default:
			r.Bytes = rb.outB
		}
	}
	if !rb.havePkts {
		switch {
		case rb.pktTotal != 0:
			r.Packets = rb.pktTotal
		case rb.initP != 0 || rb.respP != 0:
			r.Packets = flow.SatAdd(rb.initP, rb.respP)
		default:
			r.Packets = rb.outP
		}
	}
	if len(rb.section) > 0 || rb.frameSize != 0 {
		rb.packet()
	}
	// Rate: the record's own sampling fields, then its sampler id's
	// options, then the domain's options.
	sf := &rb.sf
	var rate uint32
	if sf.any {
		rate = sf.rate()
	}
	if rate != 0 {
		r.SamplingRate, r.RateSource = rate, flow.RateRecord
	} else if rate, ok := rb.samplerRate(st, domain); ok {
		r.SamplingRate, r.RateSource = rate, flow.RateSampler
	} else if dr.ok {
		r.SamplingRate, r.RateSource = dr.rate, flow.RateDomain
		if !dr.marked {
			st.domains.get(domain)
			dr.marked = true
		}
	}
	r.SamplerID = uint32(sf.samplerID)
}

// samplerRate is the rate of the record's sampler id from options data.
func (rb *recordBuilder) samplerRate(st *exporterState, domain uint32) (uint32, bool) {
	if !rb.sf.hasSampler {
		return 0, false
	}
	return st.samplers.get(samplerKey{domain, uint32(rb.sf.samplerID)})
}

func (d *Decoder) dataRecord(st *exporterState, addr netip.Addr, domain uint32, proto flow.Protocol, values []netflow.DataField) {
	rb := recordBuilder{r: d.newRecord(addr, domain, proto)}
	for i := range values {
		f := &values[i]
		if f.PenProvided {
			continue
		}
		rb.field(f.Type, fieldBytes(f))
	}
	dr := st.domainRate(domain)
	rb.finish(st, domain, &dr)
}
