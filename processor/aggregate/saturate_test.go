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

// TestAdmissionArithmeticSaturates: the admission window's figures do not
// wrap either. Records of 2^50 bytes, the most the core lets through, put
// 2^64 bytes into a window with 2^14 records: a live series that carried
// 2^63 bytes in the window is not displaced by a key 2,000 times lighter
// (twice its window wrapped), and a key that carried 2^64 bytes is not
// judged lighter than a series of 2^40 (its sketch counter wrapped).
func TestAdmissionArithmeticSaturates(t *testing.T) {
	opts := Options{TTL: time.Hour, Hold: time.Second, Window: 10 * time.Second, SketchSize: 4}
	big := func(src string, n int) []flow.Record {
		recs := make([]flow.Record, n)
		for i := range recs {
			recs[i] = rec("192.0.2.1", src, 1<<50)
			recs[i].ScaledPackets = 1 << 50
		}
		return recs
	}
	t.Run("live series of 2^63 bytes", func(t *testing.T) {
		f := srcFamily(1, opts)
		f.Maintain(t0)
		f.Add(big("10.0.0.1", 1<<13), t0)              // admitted: 2^63 bytes and more in the window
		f.Add(big("10.0.0.9", 3), t0.Add(time.Second)) // folded: 3 × 2^50
		f.Maintain(t0.Add(10 * time.Second))
		if st := f.Stats(); st.EvictedReplaced != 0 {
			t.Fatalf("a key of 3×2^50 bytes displaced a series of 2^63: %+v", st)
		}
	})
	t.Run("candidate of 2^64 bytes", func(t *testing.T) {
		f := srcFamily(1, opts)
		f.Maintain(t0)
		f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 1<<40)}, t0)
		f.Add(big("10.0.0.9", 1<<14), t0.Add(time.Second))
		f.Maintain(t0.Add(10 * time.Second))
		if st := f.Stats(); st.EvictedReplaced != 1 {
			t.Fatalf("a key of 2^64 bytes did not displace a series of 2^40: %+v", st)
		}
	})
}
