package aggregate

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

var t0 = time.Unix(1_700_000_000, 0)

func rec(exporter, src string, bytes uint64) flow.Record {
	return flow.Record{
		Exporter: netip.MustParseAddr(exporter), SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr("10.9.9.9"),
		IPVersion: 4, Proto: 6, Bytes: bytes, Packets: 1, ScaledBytes: bytes, ScaledPackets: 1,
	}
}

func srcFamily(limit int, opts Options) *Family {
	return NewFamily(Spec{Name: "src", Labels: []Label{LabelExporter, LabelSrcAddr}, Limit: limit}, opts)
}

// sum returns the family's totals over every series it exposes.
func sum(f *Family) (c Counts, series, other int) {
	for _, p := range f.Collect(nil) {
		c.Bytes += p.Bytes
		c.Packets += p.Packets
		c.Flows += p.Flows
		if p.Other {
			other++
		} else {
			series++
		}
	}
	return c, series, other
}

func byLabels(f *Family) map[string]Counts {
	out := map[string]Counts{}
	for _, p := range f.Collect(nil) {
		k := ""
		for _, l := range p.Labels {
			k += l + "|"
		}
		out[k] = p.Counts
	}
	return out
}

func TestFamilyLimitAndOther(t *testing.T) {
	tests := []struct {
		name       string
		limit      int
		srcs       []string
		wantSeries int
		wantOther  map[string]uint64 // other series per exporter label
	}{
		{"room for all", 3, []string{"10.0.0.1", "10.0.0.2", "10.0.0.1"}, 2, nil},
		{"one folds", 2, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, 2, map[string]uint64{"192.0.2.1|other|": 300}},
		{"many fold", 1, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}, 1, map[string]uint64{"192.0.2.1|other|": 900}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := srcFamily(tt.limit, Options{})
			var recs []flow.Record
			for i, s := range tt.srcs {
				recs = append(recs, rec("192.0.2.1", s, uint64(100*(i+1))))
			}
			f.Add(recs, t0)
			c, series, _ := sum(f)
			var want uint64
			for _, r := range recs {
				want += r.Bytes
			}
			if c.Bytes != want || c.Flows != uint64(len(recs)) {
				t.Errorf("family sums to %d bytes, %d flows; want %d, %d", c.Bytes, c.Flows, want, len(recs))
			}
			if series != tt.wantSeries {
				t.Errorf("series = %d, want %d", series, tt.wantSeries)
			}
			got := byLabels(f)
			for k, v := range tt.wantOther {
				if got[k].Bytes != v {
					t.Errorf("other %q = %d bytes, want %d", k, got[k].Bytes, v)
				}
			}
		})
	}
}

// TestConservationRandom feeds random traffic from several exporters with a
// small limit, short TTL and frequent maintenance, and checks after every
// step that live+frozen series plus the final values of dropped series sum to
// the total of all records, exactly, and that a series that comes back
// resumes from its final value.
func TestConservationRandom(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed))
		opts := Options{TTL: 3 * time.Second, Hold: 2 * time.Second, Window: 5 * time.Second, SketchSize: 16, Tombstones: 1000}
		f := srcFamily(5, opts)
		var want Counts
		now := t0
		dropped := map[string]Counts{} // final values of series no longer exposed
		prev := map[string]Counts{}
		for step := 0; step < 300; step++ {
			n := rng.IntN(20)
			recs := make([]flow.Record, n)
			for i := range recs {
				// Zipf-like: a few heavy sources, a long tail.
				src := netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(3)), byte(rng.ExpFloat64() * 4)})
				ex := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + rng.IntN(3))})
				b := uint64(rng.IntN(1500) + 40)
				recs[i] = flow.Record{Exporter: ex, SrcAddr: src, IPVersion: 4, ScaledBytes: b, ScaledPackets: 1}
				want.Bytes += b
				want.Packets++
				want.Flows++
			}
			f.Add(recs, now)
			now = now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
			f.Maintain(now)
			cur := byLabels(f)
			// A series that disappeared was dropped with its last value;
			// one that reappears resumes (or restarts): never goes back.
			for k, v := range prev {
				if _, ok := cur[k]; !ok {
					dropped[k] = v
				}
			}
			var got Counts
			for k, v := range cur {
				if d, ok := dropped[k]; ok {
					// Resumed from its tombstone: never below its final value.
					if v.Bytes < d.Bytes || v.Flows < d.Flows {
						t.Fatalf("seed %d step %d: %s came back at %+v, below its final %+v", seed, step, k, v, d)
					}
					delete(dropped, k)
				}
				got.Bytes += v.Bytes
				got.Packets += v.Packets
				got.Flows += v.Flows
			}
			for _, d := range dropped {
				got.Bytes += d.Bytes
				got.Packets += d.Packets
				got.Flows += d.Flows
			}
			if got != want {
				t.Fatalf("seed %d step %d: series sum to %+v, records to %+v", seed, step, got, want)
			}
			st := f.Stats()
			if st.Series > 5 {
				t.Fatalf("seed %d step %d: %d series, limit 5", seed, step, st.Series)
			}
			prev = cur
		}
	}
}

func TestFreezeHoldDropResume(t *testing.T) {
	opts := Options{TTL: 10 * time.Second, Hold: 5 * time.Second, Tombstones: 4}
	f := srcFamily(1, opts)
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 100)}, t0)
	start := f.Collect(nil)[0].Start

	// Idle past the TTL: frozen, still exposed, traffic goes to other.
	f.Maintain(t0.Add(11 * time.Second))
	pts := f.Collect(nil)
	if len(pts) != 1 || !pts[0].Frozen || pts[0].Bytes != 100 {
		t.Fatalf("after TTL: %+v, want one frozen series of 100 bytes", pts)
	}
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 50)}, t0.Add(12*time.Second))
	if got := byLabels(f)["192.0.2.1|other|"].Bytes; got != 50 {
		t.Fatalf("traffic of a frozen key went to other = %d, want 50", got)
	}
	// Past the hold: dropped, tombstoned.
	f.Maintain(t0.Add(17 * time.Second))
	if got := byLabels(f)["192.0.2.1|10.0.0.1|"]; got.Bytes != 0 {
		t.Fatalf("series still exposed after hold: %+v", got)
	}
	// Back: resumes from 100 with the original start time.
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 7)}, t0.Add(18*time.Second))
	for _, p := range f.Collect(nil) {
		if p.Labels[1] == "10.0.0.1" {
			if p.Bytes != 107 || !p.Start.Equal(start) {
				t.Fatalf("resumed series = %d bytes start %v, want 107 bytes start %v", p.Bytes, p.Start, start)
			}
			return
		}
	}
	t.Fatal("series did not come back")
}

func TestNoTombstoneRestartsFromZero(t *testing.T) {
	opts := Options{TTL: time.Second, Hold: time.Second, Tombstones: 1}
	f := srcFamily(4, opts)
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 100), rec("192.0.2.1", "10.0.0.2", 100)}, t0)
	f.Maintain(t0.Add(2 * time.Second)) // freeze both
	f.Maintain(t0.Add(4 * time.Second)) // drop both; only one tombstone fits
	later := t0.Add(5 * time.Second)
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 1)}, later)
	got := byLabels(f)["192.0.2.1|10.0.0.1|"]
	if got.Bytes != 1 {
		t.Fatalf("without a tombstone the series restarts at 0: got %d bytes, want 1", got.Bytes)
	}
	for _, p := range f.Collect(nil) {
		if p.Labels[1] == "10.0.0.1" && !p.Start.Equal(later) {
			t.Fatalf("restarted series start %v, want %v (a new start time)", p.Start, later)
		}
	}
}

func TestHeavyKeyDisplacesLightSeries(t *testing.T) {
	opts := Options{TTL: time.Hour, Hold: 2 * time.Second, Window: 10 * time.Second, SketchSize: 64}
	f := srcFamily(2, opts)
	// Two light keys take the table.
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 10), rec("192.0.2.1", "10.0.0.2", 10)}, t0)
	f.Maintain(t0)
	// A heavy key arrives and folds into other; the light ones keep trickling.
	for i := 0; i < 10; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.9", 10000), rec("192.0.2.1", "10.0.0.1", 10), rec("192.0.2.1", "10.0.0.2", 20)}, now)
	}
	f.Maintain(t0.Add(10 * time.Second)) // window ends: the lightest is frozen
	if st := f.Stats(); st.EvictedReplaced != 1 {
		t.Fatalf("replaced = %d, want 1", st.EvictedReplaced)
	}
	f.Maintain(t0.Add(13 * time.Second)) // hold over: dropped, heavy key admitted
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.9", 10000)}, t0.Add(14*time.Second))
	got := byLabels(f)
	if got["192.0.2.1|10.0.0.9|"].Bytes != 10000 {
		t.Fatalf("heavy key series = %+v, want 10000 bytes since admission; all: %v", got["192.0.2.1|10.0.0.9|"], got)
	}
	if _, ok := got["192.0.2.1|10.0.0.1|"]; ok {
		t.Fatalf("lightest key 10.0.0.1 still exposed: %v", got)
	}
	if st := f.Stats(); st.Series > 2 {
		t.Fatalf("series = %d, limit 2", st.Series)
	}
}

// TestHeavyKeyWinsThroughFullSketch: the sketch's counters are full of
// one-off keys (and its filter buckets loaded) when a heavy key arrives among
// them; it still proves heavier than the lightest live series and replaces
// it, and only it.
func TestHeavyKeyWinsThroughFullSketch(t *testing.T) {
	opts := Options{TTL: time.Hour, Hold: time.Second, Window: 10 * time.Second, SketchSize: 16}
	f := srcFamily(4, opts)
	light := []flow.Record{rec("192.0.2.1", "10.0.0.1", 50), rec("192.0.2.1", "10.0.0.2", 100), rec("192.0.2.1", "10.0.0.3", 100), rec("192.0.2.1", "10.0.0.4", 100)}
	f.Add(light, t0)
	f.Maintain(t0)
	rng := rand.New(rand.NewPCG(5, 6))
	oneOff := func() flow.Record {
		return rec("192.0.2.1", netip.AddrFrom4([4]byte{172, 16, byte(rng.IntN(256)), byte(rng.IntN(256))}).String(), 40)
	}
	for i := 0; i < 10; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		batch := append([]flow.Record(nil), light...)
		for j := 0; j < 200; j++ {
			batch = append(batch, oneOff())
			if i > 0 && j%20 == 0 { // from the second second on: the counters are full
				batch = append(batch, rec("192.0.2.1", "10.0.0.9", 500))
			}
		}
		f.Add(batch, now)
	}
	f.Maintain(t0.Add(10 * time.Second))
	if st := f.Stats(); st.EvictedReplaced != 1 {
		t.Fatalf("replaced = %d, want 1 (the heavy key for the lightest series)", st.EvictedReplaced)
	}
	f.Maintain(t0.Add(12 * time.Second))
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.9", 500)}, t0.Add(12*time.Second))
	got := byLabels(f)
	if got["192.0.2.1|10.0.0.9|"].Bytes != 500 {
		t.Fatalf("heavy key not admitted: %v", got)
	}
	if _, ok := got["192.0.2.1|10.0.0.1|"]; ok {
		t.Fatalf("the lightest series 10.0.0.1 was not the one replaced: %v", got)
	}
}

func TestFloodOfOneOffKeysDoesNotChurn(t *testing.T) {
	opts := Options{TTL: time.Hour, Window: time.Second, SketchSize: 128}
	f := srcFamily(10, opts)
	// Ten steady keys fill the table.
	var steady []flow.Record
	for i := 0; i < 10; i++ {
		steady = append(steady, rec("192.0.2.1", netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String(), 1000))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	for w := 0; w < 20; w++ {
		f.Add(steady, now)
		flood := make([]flow.Record, 5000)
		for i := range flood {
			a := netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), 1})
			flood[i] = flow.Record{Exporter: steady[0].Exporter, SrcAddr: a, IPVersion: 4, ScaledBytes: 100, ScaledPackets: 1}
		}
		f.Add(flood, now)
		now = now.Add(time.Second)
		f.Maintain(now)
	}
	if st := f.Stats(); st.EvictedReplaced != 0 || st.Series != 10 {
		t.Fatalf("flood churned the table: %+v", st)
	}
}

func TestMaskAndRender(t *testing.T) {
	tests := []struct {
		name     string
		v4, v6   int
		src      string
		ipv      uint8
		wantAddr string
	}{
		{"v4 /24", 24, 64, "10.1.2.3", 4, "10.1.2.0/24"},
		{"v4 whole", 0, 0, "10.1.2.3", 4, "10.1.2.3"},
		{"v6 /64", 24, 64, "2001:db8:1:2:3:4:5:6", 6, "2001:db8:1:2::/64"},
		{"v4 /20", 20, 0, "10.1.255.3", 4, "10.1.240.0/20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFamily(Spec{Name: "x", Labels: []Label{LabelSrcAddr, LabelProto, LabelPort}, Limit: 10, IPv4Mask: tt.v4, IPv6Mask: tt.v6}, Options{})
			r := flow.Record{SrcAddr: netip.MustParseAddr(tt.src), IPVersion: tt.ipv, Proto: 17, SrcPort: 53, DstPort: 40000, ScaledBytes: 1}
			f.Add([]flow.Record{r}, t0)
			p := f.Collect(nil)[0]
			if p.Labels[0] != tt.wantAddr || p.Labels[1] != "udp" || p.Labels[2] != "53" {
				t.Fatalf("labels = %v, want [%s udp 53]", p.Labels, tt.wantAddr)
			}
		})
	}
}

func TestMaxOthersBoundsOverflowSeries(t *testing.T) {
	f := NewFamily(Spec{Name: "x", Labels: []Label{LabelExporter, LabelSrcAddr}, Limit: 1}, Options{MaxOthers: 3})
	var recs []flow.Record
	for i := 0; i < 50; i++ {
		recs = append(recs, rec(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String(), "10.0.0.1", 1))
		recs = append(recs, rec(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String(), "10.0.0.2", 1))
	}
	f.Add(recs, t0)
	c, _, other := sum(f)
	if other > 4 || c.Bytes != 100 {
		t.Fatalf("other series = %d (want <= 3 + shared), bytes = %d (want 100)", other, c.Bytes)
	}
}

func TestHashedAddresses(t *testing.T) {
	spec := Spec{Name: "x", Labels: []Label{LabelSrcAddr}, Limit: 10, IPv4Mask: 24, HashKey: []byte("k1")}
	f := NewFamily(spec, Options{})
	f.Add([]flow.Record{rec("192.0.2.1", "10.1.2.3", 1), rec("192.0.2.1", "10.1.2.99", 2), rec("192.0.2.1", "10.1.3.1", 4)}, t0)
	got := byLabels(f)
	if len(got) != 2 {
		t.Fatalf("series %v, want two /24s", got)
	}
	for k := range got {
		if strings.Contains(k, "10.1.") || len(k) != 17 {
			t.Fatalf("label %q exposes the address or is not 16 hex digits", k)
		}
	}
	spec.HashKey = []byte("k2")
	g := NewFamily(spec, Options{})
	g.Add([]flow.Record{rec("192.0.2.1", "10.1.2.3", 1)}, t0)
	for k := range byLabels(g) {
		if _, same := got[k]; same {
			t.Fatalf("another key gave the same hash %q", k)
		}
	}
}

// TestMixedExporterBatch checks that a batch mixing exporters keeps each
// exporter's series apart, however the addresses differ: addKeyed copies
// the exporter words once per run of records from one exporter, and
// consecutive records with equal labels reuse the previous series.
func TestMixedExporterBatch(t *testing.T) {
	tests := []struct {
		name string
		exps []string // records cycle through these, all with the same source
	}{
		{"ipv4 exporters", []string{"192.0.2.1", "192.0.2.2"}},
		{"ipv6 exporters differing in the high half", []string{"2001:db8::1", "2001:db9::1"}},
		{"ipv6 exporters differing in the low half", []string{"2001:db8::1", "2001:db8::2"}},
		{"ipv4 and ipv6", []string{"192.0.2.1", "2001:db8::1", "192.0.2.9"}},
		{"runs of one exporter", []string{"192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFamily(Spec{Name: "proto", Labels: []Label{LabelExporter, LabelProto}, Limit: 10}, Options{})
			want := map[string]uint64{}
			var recs []flow.Record
			for i := range 30 {
				e := tc.exps[i%len(tc.exps)]
				b := uint64(1 + i)
				recs = append(recs, rec(e, "10.0.0.1", b))
				want[netip.MustParseAddr(e).String()+"|tcp|"] += b
			}
			f.Add(recs, t0)
			got := map[string]uint64{}
			for k, c := range byLabels(f) {
				got[k] = c.Bytes
			}
			if len(got) != len(want) {
				t.Fatalf("series %v, want %v", got, want)
			}
			for k, b := range want {
				if got[k] != b {
					t.Errorf("%s: %d bytes, want %d (all: %v)", k, got[k], b, got)
				}
			}
		})
	}
}

// TestExporterOnlyFamilyHasUniqueLabels: in a family whose only label is
// the exporter (the built-in exporter totals, or a user's), an exporter's
// own overflow series would carry the very labels of its series, and a
// Prometheus page would list one exporter twice. Its overflow is therefore
// the shared exporter "other": when the family is full, and when a frozen
// exporter's traffic comes back during series.frozen_hold.
func TestExporterOnlyFamilyHasUniqueLabels(t *testing.T) {
	unique := func(t *testing.T, f *Family) map[string]Counts {
		t.Helper()
		got := map[string]Counts{}
		for _, p := range f.Collect(nil) {
			k := strings.Join(p.Labels, "|")
			if _, dup := got[k]; dup {
				t.Fatalf("two series with labels %q: %+v", k, f.Collect(nil))
			}
			got[k] = p.Counts
		}
		return got
	}
	t.Run("frozen exporter comes back", func(t *testing.T) {
		f := NewFamily(Spec{Name: "e", Labels: []Label{LabelExporter}, Limit: 10}, Options{})
		f.Maintain(t0)
		f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 10)}, t0)
		now := t0.Add(DefaultOptions.TTL + time.Second)
		f.Maintain(now) // frozen, exposed for the hold
		f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 20)}, now)
		got := unique(t, f)
		if got["192.0.2.1"].Bytes != 10 || got[OtherValue].Bytes != 20 {
			t.Errorf("series = %+v, want the frozen 10 bytes and 20 under %q", got, OtherValue)
		}
	})
	t.Run("full family admits an exporter later", func(t *testing.T) {
		f := NewFamily(Spec{Name: "e", Labels: []Label{LabelExporter}, Limit: 1}, Options{})
		now := t0
		f.Maintain(now)
		f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 10)}, now)
		var sent uint64 = 10
		for range 200 { // the heavy exporter displaces the light one
			now = now.Add(time.Second)
			f.Add([]flow.Record{rec("192.0.2.2", "10.0.0.1", 1000)}, now)
			sent += 1000
			f.Maintain(now)
			unique(t, f)
		}
		got := unique(t, f)
		var total uint64
		for _, c := range got {
			total += c.Bytes
		}
		if got["192.0.2.2"].Bytes == 0 || total+10*f.Stats().Dropped < sent-10 {
			t.Errorf("series = %+v, want 192.0.2.2 admitted and every byte in some series", got)
		}
	})
}

// TestSeriesFillsOneCacheLine: what a record updates in its series (the
// counts, last seen, window, frozen) lies in one 64-byte cache line only
// if the series is 64 bytes and its arena chunk 64-byte aligned; at 80
// bytes, half the series straddled two lines.
func TestSeriesFillsOneCacheLine(t *testing.T) {
	if size := unsafe.Sizeof(series{}); size != 64 {
		t.Fatalf("series is %d bytes, want 64", size)
	}
	f := srcFamily(10, Options{})
	f.Add([]flow.Record{rec("192.0.2.1", "10.0.0.1", 100)}, time.Now())
	if addr := uintptr(unsafe.Pointer(&f.arena[0][0])); addr%64 != 0 {
		t.Errorf("arena chunk at %#x, not 64-byte aligned", addr)
	}
}
