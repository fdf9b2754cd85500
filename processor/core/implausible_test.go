package core

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// TestImplausiblePackets: a record of 2^64-1 packets (an IPFIX
// packetDeltaCount of all ones) is dropped as implausible like one of too
// many bytes; counted, a second one wrapped every family's packet counter.
func TestImplausiblePackets(t *testing.T) {
	ex1 := netip.MustParseAddr("192.0.2.1")
	c := New(Config{MaxExporters: 4})
	ex := c.Exporters().Get(ex1)
	for i := range 2 {
		c.Process(ex, []flow.Record{
			{Exporter: ex1, Proto: 6, Bytes: 1000, Packets: math.MaxUint64, Protocol: flow.IPFIX},
			{Exporter: ex1, Proto: 6, Bytes: 1000, Packets: 10, Protocol: flow.IPFIX},
		}, time.Unix(1700000000+int64(i), 0))
	}
	var pkts uint64
	for _, p := range c.Totals().Collect(nil) {
		pkts += p.Packets
	}
	if pkts != 20 || ex.DecodeErrors[health.ReasonImplausible].Load() != 2 || ex.Records[flow.IPFIX].Load() != 2 {
		t.Fatalf("packets %d, implausible %d, records %d; want 20, 2, 2", pkts, ex.DecodeErrors[health.ReasonImplausible].Load(), ex.Records[flow.IPFIX].Load())
	}
}

// TestRecordsCountedPerProtocol: records are counted per run of one
// protocol; a batch that mixes protocols (and drops implausible records
// between them) must still count each record under its own protocol.
func TestRecordsCountedPerProtocol(t *testing.T) {
	v5, v9, ipfix, bad := flow.NetFlowV5, flow.NetFlowV9, flow.IPFIX, flow.ProtoUnknown
	cases := []struct {
		name  string
		batch []flow.Protocol // bad: an implausible IPFIX record
		want  map[flow.Protocol]uint64
	}{
		{"one protocol", []flow.Protocol{v9, v9, v9}, map[flow.Protocol]uint64{v9: 3}},
		{"mixed", []flow.Protocol{v5, v5, v9, v9, v5, ipfix}, map[flow.Protocol]uint64{v5: 3, v9: 2, ipfix: 1}},
		{"implausible first", []flow.Protocol{bad, v5, v5}, map[flow.Protocol]uint64{v5: 2}},
		{"implausible between", []flow.Protocol{v9, bad, v9, bad, v5}, map[flow.Protocol]uint64{v9: 2, v5: 1}},
		{"all implausible", []flow.Protocol{bad, bad}, map[flow.Protocol]uint64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr("192.0.2.1")
			c := New(Config{MaxExporters: 4})
			ex := c.Exporters().Get(a)
			var recs []flow.Record
			for _, p := range tc.batch {
				r := flow.Record{Exporter: a, Proto: 6, Bytes: 100, Packets: 1, Protocol: p}
				if p == bad {
					r.Protocol, r.Packets = flow.IPFIX, math.MaxUint64
				}
				recs = append(recs, r)
			}
			c.Process(ex, recs, time.Unix(1700000000, 0))
			for _, p := range append([]flow.Protocol{bad}, flow.Protocols...) {
				if got := ex.Records[p].Load(); got != tc.want[p] {
					t.Errorf("%v records = %d, want %d", p, got, tc.want[p])
				}
			}
		})
	}
}
