package aggregate

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// TestCountersSaturate: a series' counters stop at the largest uint64
// rather than wrap (which Prometheus would take for a counter reset):
// 2^14 records of 2^50 bytes each, the most the core lets through, reach
// 2^64.
func TestCountersSaturate(t *testing.T) {
	f := NewFamily(Spec{Name: "exporter", Labels: []Label{LabelExporter}, Limit: 10}, Options{})
	exp := netip.MustParseAddr("192.0.2.1")
	recs := make([]flow.Record, 1<<10)
	for i := range recs {
		recs[i] = flow.Record{Exporter: exp, IPVersion: 4, Bytes: 1 << 50, Packets: 1 << 50, ScaledBytes: 1 << 50, ScaledPackets: 1 << 50}
	}
	now := time.Unix(1700000000, 0)
	var last uint64
	for i := range 17 { // 17 × 2^10 × 2^50 > 2^64
		f.Add(recs, now.Add(time.Duration(i)*time.Millisecond))
		pts := f.Collect(nil)
		if len(pts) != 1 {
			t.Fatalf("%d series", len(pts))
		}
		if pts[0].Bytes < last || pts[0].Packets < last {
			t.Fatalf("batch %d: bytes %d, packets %d went down from %d", i, pts[0].Bytes, pts[0].Packets, last)
		}
		last = pts[0].Bytes
	}
	if last != math.MaxUint64 {
		t.Fatalf("bytes %d, want %d", last, uint64(math.MaxUint64))
	}
}
