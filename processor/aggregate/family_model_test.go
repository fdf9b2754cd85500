package aggregate

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// maskedKey is the key a record has in family f, computed the plain way:
// its base key ANDed with the family's whole-Key mask.
func maskedKey(f *Family, r *flow.Record) Key {
	k := referenceKey(r)
	m := keyMask(f.mask, r.IPVersion == 4, f.spec.IPv4Mask, f.spec.IPv6Mask)
	kw := (*[keyWords]uint64)(unsafe.Pointer(&k))
	mw := (*[keyWords]uint64)(unsafe.Pointer(&m))
	for i := range kw {
		kw[i] &= mw[i]
	}
	return k
}

// checkTable checks that every key in f's table (and in its sketch) is
// found again by lookup, that is that addKeyed stored it under the hash
// keyTable.hash gives it (remove, other and the pending keys rely on that).
func checkTable(t *testing.T, f *Family, what string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.each(func(id int32, _ *series) {
		k := f.tab.key(id)
		if got, _, _ := f.lookup(&k); got != id {
			t.Fatalf("%s: key %+v of id %d is found as %d", what, k, id, got)
		}
	})
	for _, id := range f.sketch.heap {
		ck := f.sketch.tab.compactOf(id)
		if got := f.sketch.tab.find(&ck, f.sketch.tab.hash(&ck)); got != id {
			t.Fatalf("%s: sketch key of id %d is found as %d", what, id, got)
		}
	}
}

// TestAddKeyedMatchesModel: for families of random shapes (with and
// without the exporter, with labels in the Other word or not, address
// prefixes, up to every label), batches mixing exporters, address families
// and directions land in the series the plainly masked key names, and
// every key stays findable by its hash; with a small limit the family
// still sums to its records through admission, the sketch, freezing,
// dropping and resumption. Both of addKeyed's loops (addShort for keys
// that differ in at most two words per record, the general one for the
// rest) are checked.
func TestAddKeyedMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	exporters := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::1:0:0:1")}
	addr := func() netip.Addr {
		if rng.IntN(2) == 0 {
			return netip.AddrFrom4([4]byte{10, byte(rng.IntN(2)), byte(rng.IntN(3)), byte(rng.IntN(4))})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(4)), 8: byte(rng.IntN(2))})
	}
	randRec := func(exp netip.Addr) flow.Record {
		r := flow.Record{Exporter: exp, SrcAddr: addr(), DstAddr: addr(), InIf: uint32(rng.IntN(3)), OutIf: uint32(rng.IntN(3)),
			SrcAS: uint32(rng.IntN(3)), DstAS: uint32(rng.IntN(3)), SrcPort: uint16(rng.IntN(3)), DstPort: uint16(rng.IntN(3)),
			Proto: uint8(6 + 11*rng.IntN(2)), Direction: flow.Direction(rng.IntN(4)),
			SrcCountry: [][2]byte{{}, {'F', 'R'}}[rng.IntN(2)], DstCountry: [][2]byte{{}, {'D', 'E'}}[rng.IntN(2)],
			ScaledBytes: uint64(1 + rng.IntN(1000)), ScaledPackets: 1}
		r.IPVersion = 6
		if r.SrcAddr.Is4() {
			r.IPVersion = 4
			r.DstAddr = netip.AddrFrom4([4]byte{10, 9, 9, byte(rng.IntN(3))})
		} else if r.DstAddr.Is4() {
			r.DstAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 15: 9})
		}
		return r
	}
	paths := map[bool]int{} // shapes that take addShort (true) or the general loop
	for shape := range 400 {
		var labels []Label
		switch shape {
		case 0:
			labels = []Label{LabelExporter}
		case 1:
			labels = []Label{LabelDirection}
		case 2:
			labels = []Label{LabelExporter, LabelDirection}
		case 3:
			for l := range labelCount {
				labels = append(labels, l)
			}
		default:
			for l := range labelCount {
				if rng.IntN(4) == 0 {
					labels = append(labels, l)
				}
			}
			if len(labels) == 0 {
				labels = []Label{Label(rng.IntN(int(labelCount)))}
			}
			rng.Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
		}
		spec := Spec{Name: "x", Labels: labels, Limit: 1 << 20, IPv4Mask: []int{0, 24, 31}[rng.IntN(3)], IPv6Mask: []int{0, 64, 127}[rng.IntN(3)]}
		// Unlimited: every record lands in the series of its masked key.
		f := NewFamily(spec, Options{})
		paths[f.short()]++
		want := map[string]uint64{}
		for range 5 {
			recs := make([]flow.Record, rng.IntN(200))
			exp := exporters[rng.IntN(len(exporters))]
			for i := range recs {
				if rng.IntN(10) == 0 { // only tests mix exporters in a batch
					exp = exporters[rng.IntN(len(exporters))]
				}
				recs[i] = randRec(exp)
				k := maskedKey(f, &recs[i])
				want[joinLabels(f.render(&k))] += recs[i].ScaledBytes
			}
			f.Add(recs, t0)
		}
		checkTable(t, f, "unlimited")
		got := map[string]uint64{}
		for _, p := range f.Collect(nil) {
			if p.Other {
				t.Fatalf("labels %v: an overflow series in an unlimited family", labels)
			}
			got[joinLabels(append([]string(nil), p.Labels...))] = p.Bytes
		}
		if len(got) != len(want) {
			t.Fatalf("labels %v: %d series, want %d", labels, len(got), len(want))
		}
		for k, b := range want {
			if got[k] != b {
				t.Fatalf("labels %v: series %q has %d bytes, want %d", labels, k, got[k], b)
			}
		}
		// Limited: conservation and findable keys through the whole cycle.
		spec.Limit = 1 + rng.IntN(8)
		opts := Options{TTL: 3 * time.Second, Hold: 2 * time.Second, Window: 4 * time.Second, SketchSize: 4, Tombstones: 4096, MaxOthers: 3}
		f = NewFamily(spec, opts)
		now := t0
		var total uint64
		prev, dropped := map[string]uint64{}, map[string]uint64{}
		for range 30 {
			recs := make([]flow.Record, rng.IntN(50))
			exp := exporters[rng.IntN(len(exporters))]
			for i := range recs {
				if rng.IntN(10) == 0 {
					exp = exporters[rng.IntN(len(exporters))]
				}
				recs[i] = randRec(exp)
				total += recs[i].ScaledBytes
			}
			f.Add(recs, now)
			checkTable(t, f, "after add")
			now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
			f.Maintain(now)
			checkTable(t, f, "after maintain")
			// Dropped series' final values are in tombstones (enough of
			// them): a key that comes back resumes from its value.
			cur := map[string]uint64{}
			for _, p := range f.Collect(nil) {
				cur[joinLabels(append([]string(nil), p.Labels...))] = p.Bytes
			}
			for k, b := range prev {
				if _, ok := cur[k]; !ok {
					dropped[k] = b
				}
			}
			sum := uint64(0)
			for k, b := range cur {
				if d, ok := dropped[k]; ok {
					if b < d {
						t.Fatalf("labels %v: %q came back at %d, below its final %d", labels, k, b, d)
					}
					delete(dropped, k)
				}
				sum += b
			}
			for _, b := range dropped {
				sum += b
			}
			if st := f.Stats(); sum != total || st.Series > spec.Limit {
				t.Fatalf("labels %v: series and dropped sum to %d, records %d; %+v", labels, sum, total, st)
			}
			prev = cur
		}
	}
	if paths[true] < 50 || paths[false] < 50 {
		t.Fatalf("shapes by path (addShort true): %v, want at least 50 each", paths)
	}
}

// TestLifecycleMatchesModel drives small families through admission,
// replacement, freezing, dropping, tombstones (too few of them, at times)
// and option changes, collecting after every step, and checks what a
// reader of the exposition relies on: series are identified by labels and
// start time; a series never goes down while it keeps its start; a frozen
// series (not "other") keeps its value until it is dropped, at least Hold
// after it froze; a series that comes back with its old start continues
// from its last value; current series plus those gone for good sum exactly
// to the records; no two series share labels; the limits hold.
func TestLifecycleMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	exporters := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4")}
	type ident struct {
		labels string
		start  int64
	}
	type seen struct {
		c        Counts
		frozenAt time.Time // zero while live
		other    bool
	}
	for shape := range 300 {
		var labels []Label
		switch shape % 4 {
		case 0:
			labels = []Label{LabelExporter}
		case 1:
			labels = []Label{LabelExporter, LabelSrcAddr}
		case 2:
			labels = []Label{LabelSrcAddr, LabelProto}
		default:
			labels = []Label{LabelDstAddr, LabelExporter, LabelDstPort}
		}
		spec := Spec{Name: "x", Labels: labels, Limit: 1 + rng.IntN(6),
			IPv4Mask: []int{0, 24, 30}[rng.IntN(3)], IPv6Mask: []int{0, 64, 126}[rng.IntN(3)]}
		randOpts := func() Options {
			return Options{TTL: time.Duration(1+rng.IntN(4)) * time.Second, Hold: time.Duration(1+rng.IntN(3)) * time.Second,
				Window: time.Duration(1+rng.IntN(4)) * time.Second, SketchSize: 1 + rng.IntN(6),
				Tombstones: 1 + rng.IntN(8), MaxOthers: 1 + rng.IntN(3)}
		}
		opts := randOpts()
		maxOthers := opts.MaxOthers // a smaller bound later does not evict
		f := NewFamily(spec, opts)
		nKeys := 2 + rng.IntN(20)
		weights := make([]uint64, nKeys) // some keys heavy, most light
		for i := range weights {
			weights[i] = uint64(1 + rng.IntN(10))
			if rng.IntN(4) == 0 {
				weights[i] *= 1000
			}
		}
		recOf := func(k int, exp netip.Addr) flow.Record {
			r := flow.Record{Exporter: exp, Proto: 6, DstPort: uint16(k % 3), ScaledBytes: weights[k], ScaledPackets: 1, IPVersion: 4}
			if k%2 == 0 {
				r.SrcAddr = netip.AddrFrom4([4]byte{10, 0, byte(k), byte(k * 7)})
				r.DstAddr = netip.AddrFrom4([4]byte{10, 1, 0, byte(k)})
			} else {
				r.IPVersion = 6
				r.SrcAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(k)})
				r.DstAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: 1, 15: byte(k)})
			}
			return r
		}
		now := t0
		var total Counts
		last := map[ident]seen{}   // series of the last collection
		gone := map[ident]Counts{} // series no longer exposed (maybe back later)
		for step := range 60 {
			if n := rng.IntN(3); n > 0 {
				// A few hot keys this step, others idle.
				hot := rng.Perm(nKeys)[:1+rng.IntN(nKeys)]
				recs := make([]flow.Record, 0, 40)
				exp := exporters[rng.IntN(len(exporters))]
				for range rng.IntN(40) {
					if rng.IntN(8) == 0 {
						exp = exporters[rng.IntN(len(exporters))]
					}
					recs = append(recs, recOf(hot[rng.IntN(len(hot))], exp))
				}
				for i := range recs {
					total.Bytes += recs[i].ScaledBytes
					total.Packets += recs[i].ScaledPackets
					total.Flows++
				}
				f.Add(recs, now)
			}
			if rng.IntN(15) == 0 {
				opts = randOpts()
				maxOthers = max(maxOthers, opts.MaxOthers)
				f.SetOptions(opts)
			}
			now = now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
			f.Maintain(now)
			checkTable(t, f, "after maintain")
			cur := map[ident]seen{}
			byLabel := map[string]bool{}
			var sum Counts
			for _, p := range f.Collect(nil) {
				l := joinLabels(append([]string(nil), p.Labels...))
				if byLabel[l] {
					t.Fatalf("shape %d step %d: two series with labels %q", shape, step, l)
				}
				byLabel[l] = true
				id := ident{l, p.Start.UnixNano()}
				s := seen{c: p.Counts, other: p.Other}
				prev, was := last[id]
				if p.Frozen {
					s.frozenAt = now
					if was && !prev.frozenAt.IsZero() {
						s.frozenAt = prev.frozenAt
					}
				}
				if was {
					if p.Bytes < prev.c.Bytes || p.Packets < prev.c.Packets || p.Flows < prev.c.Flows {
						t.Fatalf("shape %d step %d: %q went down in place, %+v after %+v", shape, step, l, p.Counts, prev.c)
					}
					if !prev.frozenAt.IsZero() && !p.Other && (!p.Frozen || p.Counts != prev.c) {
						t.Fatalf("shape %d step %d: frozen %q changed: %+v frozen=%v after %+v", shape, step, l, p.Counts, p.Frozen, prev.c)
					}
				} else if g, ok := gone[id]; ok {
					if p.Bytes < g.Bytes || p.Packets < g.Packets || p.Flows < g.Flows {
						t.Fatalf("shape %d step %d: %q resumed at %+v below its final %+v", shape, step, l, p.Counts, g)
					}
					delete(gone, id)
				}
				cur[id] = s
				sum.Bytes += p.Bytes
				sum.Packets += p.Packets
				sum.Flows += p.Flows
			}
			for id, s := range last {
				if _, ok := cur[id]; ok {
					continue
				}
				if s.frozenAt.IsZero() {
					t.Fatalf("shape %d step %d: %q dropped without being exposed frozen", shape, step, id.labels)
				}
				if now.Sub(s.frozenAt) < opts.Hold {
					t.Fatalf("shape %d step %d: %q dropped %v after it froze, hold %v", shape, step, id.labels, now.Sub(s.frozenAt), opts.Hold)
				}
				gone[id] = s.c
			}
			for _, g := range gone {
				sum.Bytes += g.Bytes
				sum.Packets += g.Packets
				sum.Flows += g.Flows
			}
			if sum != total {
				t.Fatalf("shape %d step %d: series and gone sum to %+v, records %+v", shape, step, sum, total)
			}
			st := f.Stats()
			if st.Series > spec.Limit || st.OtherSeries > maxOthers+1 {
				t.Fatalf("shape %d step %d: %d series (limit %d), %d other (max %d)", shape, step, st.Series, spec.Limit, st.OtherSeries, maxOthers)
			}
			last = cur
		}
	}
}
