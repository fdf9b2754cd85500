// Package flow defines Record, the one small value every decoder produces and
// every later stage (sampling correction, enrichment, aggregation) consumes.
//
// A Record is a plain value with no pointers besides the netip.Addr zone, so a
// decoder can fill a reused slice of them without allocating.
package flow

import "net/netip"

// Protocol names the wire protocol a record arrived in.
type Protocol uint8

// Wire protocols flowmetrics decodes.
const (
	ProtoUnknown Protocol = iota
	NetFlowV5
	NetFlowV9
	IPFIX
	SFlowV5
)

// String returns the label value used in metrics for the protocol.
func (p Protocol) String() string {
	switch p {
	case NetFlowV5:
		return "netflow_v5"
	case NetFlowV9:
		return "netflow_v9"
	case IPFIX:
		return "ipfix"
	case SFlowV5:
		return "sflow_v5"
	}
	return "unknown"
}

// Protocols lists every known protocol, in label order.
var Protocols = []Protocol{NetFlowV5, NetFlowV9, IPFIX, SFlowV5}

// Direction is the flow direction as the exporter stated it (IPFIX IE 61) or
// as enrichment classified it.
type Direction uint8

// Flow directions.
const (
	DirectionUnknown Direction = iota
	DirectionIngress
	DirectionEgress
	// DirectionInternal is traffic between two internal networks; only
	// enrichment sets it.
	DirectionInternal
)

// String returns the label value used in metrics for the direction.
func (d Direction) String() string {
	switch d {
	case DirectionIngress:
		return "ingress"
	case DirectionEgress:
		return "egress"
	case DirectionInternal:
		return "internal"
	}
	return "unknown"
}

// RateSource tells where a record's sampling rate came from; higher values
// win over lower ones when several are known.
type RateSource uint8

// Sampling rate sources, lowest precedence first.
const (
	RateUnknown  RateSource = iota // no rate stated anywhere
	RateDefault                    // the configured default
	RateHeader                     // v5 header or sFlow sample's own rate
	RatePool                       // sFlow: the effective rate measured from the sample pool
	RateDomain                     // options data for the observation domain
	RateSampler                    // options data for the sampler id the record names
	RateRecord                     // a sampling field in the data record itself
	RateOverride                   // operator override for the exporter
)

// String returns the label value used in metrics for the rate source.
func (s RateSource) String() string {
	switch s {
	case RateDefault:
		return "default"
	case RateHeader:
		return "header"
	case RatePool:
		return "sample_pool"
	case RateDomain:
		return "domain_options"
	case RateSampler:
		return "sampler_options"
	case RateRecord:
		return "record"
	case RateOverride:
		return "override"
	}
	return "unresolved"
}

// Record is one flow (NetFlow/IPFIX) or one sampled packet (sFlow) after
// decoding. Bytes and Packets are as the exporter reported them; the
// sampling stage writes the corrected values into ScaledBytes and
// ScaledPackets.
type Record struct {
	// Exporter is the address of the device that sent the datagram.
	Exporter netip.Addr
	// Domain is the NetFlow v9 source id, IPFIX observation domain id or
	// sFlow sub-agent id.
	Domain uint32
	// StatedRate is the rate the record itself stated when SamplingRate is
	// another one derived from it (RatePool: an sFlow source's effective
	// rate from its sample pool), else 0.
	StatedRate uint32

	SrcAddr, DstAddr netip.Addr
	SrcPort, DstPort uint16
	// Proto is the IP protocol number (6 TCP, 17 UDP, ...).
	Proto uint8
	// IPVersion is 4 or 6, 0 when the record carries no address.
	IPVersion uint8
	TCPFlags  uint8
	Direction Direction
	Protocol  Protocol
	// RateSource tells where SamplingRate came from.
	RateSource RateSource

	InIf, OutIf  uint32
	SrcAS, DstAS uint32

	// Bytes and Packets are the counts the exporter reported.
	Bytes, Packets uint64
	// SamplingRate is N for 1:N sampling; 0 while unknown.
	SamplingRate uint32
	// SamplerID is the sampler the record names (v9 48/302), 0 if none.
	SamplerID uint32

	// ScaledBytes and ScaledPackets are Bytes and Packets multiplied by the
	// rate in force, filled in by the sampling stage.
	ScaledBytes, ScaledPackets uint64

	// Start and End are the flow's first and last packet times in Unix
	// milliseconds, 0 when unknown.
	Start, End int64

	// Enrichment (processor/enrich), zero when unknown or not configured.

	// SrcNet and DstNet name the most specific configured network of each
	// address.
	SrcNet, DstNet Symbol
	// Tenant is the tenant of the source network, else of the destination
	// network.
	Tenant Symbol
	// Service names the flow's application (well-known port name, a port
	// group such as "ephemeral", or the bare service port).
	Service Service
	// SrcCountry and DstCountry are ISO 3166-1 alpha-2 codes from the
	// country database.
	SrcCountry, DstCountry [2]byte
}
