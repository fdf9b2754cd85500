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
