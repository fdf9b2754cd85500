package health

import (
	"net/netip"
	"testing"
)

func TestTableIsBounded(t *testing.T) {
	tab := NewTable(3)
	for i := 0; i < 10; i++ {
		tab.Get(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})).Records[0].Add(1)
	}
	if tab.Len() != 3 || tab.Evicted() != 7 {
		t.Fatalf("len %d evicted %d, want 3 and 7", tab.Len(), tab.Evicted())
	}
	// The most recent exporters are the ones kept.
	var kept []string
	tab.Each(func(e *Exporter) { kept = append(kept, e.Addr.String()) })
	if kept[2] != "192.0.2.9" {
		t.Fatalf("kept %v", kept)
	}
}

func TestTrackReportsTheForgottenExporter(t *testing.T) {
	tab := NewTable(2)
	a := func(i byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, i}) }
	for _, tc := range []struct {
		addr, forgot netip.Addr
	}{
		{a(1), netip.Addr{}},
		{a(2), netip.Addr{}},
		{a(1), netip.Addr{}}, // known: nothing forgotten, 1 becomes the most recent
		{a(3), a(2)},         // 2 is now the least recently seen
		{a(3), netip.Addr{}},
		{a(4), a(1)},
	} {
		e, forgot := tab.Track(tc.addr)
		if e.Addr != tc.addr || forgot != tc.forgot {
			t.Errorf("Track(%v) = %v, forgot %v; want forgot %v", tc.addr, e.Addr, forgot, tc.forgot)
		}
	}
	if tab.Evicted() != 2 || tab.Capacity() != 2 {
		t.Errorf("evicted %d, capacity %d; want 2, 2", tab.Evicted(), tab.Capacity())
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	for _, ns := range []int64{500, 3000, 3000, 20_000_000} {
		h.Observe(ns)
	}
	b, n, sum := h.Snapshot()
	if n != 4 || b[1e-6] != 1 || b[5e-6] != 3 || b[1e-2] != 3 {
		t.Fatalf("buckets %v count %d", b, n)
	}
	if sum < 0.02 || sum > 0.0201 {
		t.Fatalf("sum %v", sum)
	}
}

func TestHistogramObserveN(t *testing.T) {
	var one, many Histogram
	for range 3 {
		one.Observe(7000)
	}
	many.ObserveN(7000, 3)
	many.ObserveN(1, 0) // nothing
	b1, n1, s1 := one.Snapshot()
	b3, n3, s3 := many.Snapshot()
	if n1 != 3 || n3 != 3 || s1 != s3 || b3[1e-5] != 3 || b3[5e-6] != 0 {
		t.Fatalf("ObserveN: buckets %v count %d sum %v, want those of three Observe: %v %d %v", b3, n3, s3, b1, n1, s1)
	}
}

// TestHistogramSnapshotIsConsistent: a snapshot taken while datagrams are
// being observed never has a bucket holding more observations than the
// count (the OpenTelemetry receiver derives the +Inf bucket as count minus
// the last bound's cumulative count: a larger bucket made it wrap to about
// 1.8e19; Prometheus would see le="0.01" above le="+Inf").
func TestHistogramSnapshotIsConsistent(t *testing.T) {
	var h Histogram
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				h.ObserveN(500, 1) // the first bucket
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := 0; i < 20000; i++ {
		b, n, _ := h.Snapshot()
		if top := b[LatencyBuckets[len(LatencyBuckets)-1]]; top > n {
			t.Fatalf("snapshot %d: %d observations at or below the last bound, count %d", i, top, n)
		}
	}
}

// TestTrackProtectsThreeQuarters: exporters that send again are kept apart
// from one-off sources only up to three quarters of the capacity. In a
// table of 8, seven returning exporters do not all fit: the one seen least
// recently goes back with the one-off sources, and the next new source
// forgets it although a source that has sent once (192.0.2.101) is
// tracked. So max_exporters must leave a quarter for new sources, or a
// flood forgets real exporters too.
func TestTrackProtectsThreeQuarters(t *testing.T) {
	tab := NewTable(8)
	a := func(i byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, i}) }
	for range 2 {
		for i := byte(1); i <= 7; i++ {
			tab.Track(a(i))
		}
	}
	if _, forgot := tab.Track(a(101)); forgot.IsValid() {
		t.Fatalf("the 8th source forgot %v in a table of 8", forgot)
	}
	if _, forgot := tab.Track(a(102)); forgot != a(1) {
		t.Fatalf("a new source in a full table forgot %v, want %v (returning, beyond three quarters)", forgot, a(1))
	}
	// Six returning exporters fit: only the flood's sources are forgotten.
	for i := byte(103); i < 120; i++ {
		if _, forgot := tab.Track(a(i)); forgot != a(i-2) {
			t.Fatalf("source %v forgot %v, want %v", a(i), forgot, a(i-2))
		}
	}
}
