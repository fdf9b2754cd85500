package flowgen

import (
	"net/netip"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/decode"
)

// TestDecodesToWhatWasSent decodes generated streams with flowmetrics'
// decoder: every record, its counters and its sampling rate match the flows
// generated, with no decode error.
func TestDecodesToWhatWasSent(t *testing.T) {
	for _, p := range []Protocol{V5, V9, IPFIX, SFlow} {
		t.Run(string(p), func(t *testing.T) {
			g, err := New(Config{Protocol: p, Domain: 3, SamplingRate: 100, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			d, ex := decode.New(decode.Limits{}), &health.Exporter{}
			addr := netip.MustParseAddr("127.0.0.1")
			if tpl := g.Templates(); tpl != nil {
				if res, errs := d.Decode(tpl, addr, ex); len(errs) > 0 || len(res.Records) != 0 {
					t.Fatalf("templates: %v", errs)
				}
			}
			var flows []Flow
			for i := 0; i < 20; i++ {
				var dg []byte
				dg, flows = g.Data(flows)
				res, errs := d.Decode(dg, addr, ex)
				if len(errs) > 0 || len(res.Records) != len(flows) {
					t.Fatalf("datagram %d: %d records for %d flows, errors %v", i, len(res.Records), len(flows), errs)
				}
				for j, r := range res.Records {
					f := flows[j]
					wantBytes, wantPkts := uint64(f.Bytes), uint64(f.Packets)
					if p == SFlow {
						wantBytes, wantPkts = uint64(f.Bytes/f.Packets), 1
					}
					if r.Bytes != wantBytes || r.Packets != wantPkts || r.SrcAddr != netip.AddrFrom4(f.Src) || r.DstPort != f.DstPort || r.Proto != f.Proto {
						t.Fatalf("record %d = %+v, flow %+v", j, r, f)
					}
					if r.SamplingRate != 100 || r.RateSource == flow.RateUnknown {
						t.Fatalf("rate %d from %v", r.SamplingRate, r.RateSource)
					}
				}
			}
			if ex.SequenceGaps.Load() != 0 {
				t.Fatalf("%d sequence gaps in a generated stream", ex.SequenceGaps.Load())
			}
		})
	}
}
