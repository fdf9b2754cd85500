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
// dropping and resumption.
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
}
