package aggregate

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// fuzzRecordBytes is how many input bytes make one record in
// FuzzShortMatchesGeneral.
const fuzzRecordBytes = 8

// fuzzRecord builds a record from 8 bytes, with few values per field so
// that keys repeat (the previous-record shortcut), families fill up
// (admission, the sketch, the overflow series) and exporters change
// within a batch.
//
// Bit 7 of b[4] swaps the exporter for a sibling: the sibling of
// 2001:db8::1 differs from it only in the key's first word (the first
// four exporters differ from one another in the second word), the
// sibling of :: is the invalid address (the same zero key). b[5]>>6 sets
// an IP version other than the addresses' (0, 41, or the other family's):
// a record takes the IPv6 masks unless it says 4.
func fuzzRecord(b []byte) flow.Record {
	exporters := [8]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::"),
		netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("2001:db8:0:1::1"), {}}
	r := flow.Record{Exporter: exporters[b[0]&3|b[4]>>5&4], Direction: flow.Direction(b[0] >> 3 & 3),
		Proto: [2]uint8{6, 17}[b[0]>>5&1], SrcPort: uint16(b[3] & 7), DstPort: uint16(b[4]&7) << 8,
		InIf: uint32(b[5] & 3), OutIf: uint32(b[5] >> 2 & 3), SrcAS: uint32(b[6] & 3), DstAS: uint32(b[6] >> 2 & 3),
		SrcCountry: [2][2]byte{{}, {'F', 'R'}}[b[6]>>4&1], DstCountry: [2][2]byte{{}, {'D', 'E'}}[b[6]>>5&1],
		ScaledBytes: uint64(b[7]) << (b[6] >> 6 * 20), ScaledPackets: 1 + uint64(b[7]&3)}
	if b[0]&4 == 0 {
		r.IPVersion = 4
		r.SrcAddr = netip.AddrFrom4([4]byte{10, 0, b[1] >> 4, b[1] & 15})
		r.DstAddr = netip.AddrFrom4([4]byte{10, 1, b[2] >> 4, b[2] & 15})
	} else {
		r.IPVersion = 6
		r.SrcAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 8: b[1] >> 4, 15: b[1] & 15})
		r.DstAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb9, 8: b[2] >> 4, 15: b[2] & 15})
	}
	switch b[5] >> 6 {
	case 1:
		r.IPVersion = 0
	case 2:
		r.IPVersion = 41
	case 3:
		r.IPVersion = 10 - r.IPVersion
	}
	return r
}

// FuzzShortMatchesGeneral feeds the same batches to two families of one
// spec, one folding them with addShort and the other with addGeneral, and
// requires the same series (labels, counts, start, overflow, frozen), the
// same stats and the same sketch after every batch and every maintenance
// step: the shortcut loop must be the general one, only faster.
//
// Input: three bytes choose the labels, one the limit and prefix lengths;
// then records of fuzzRecordBytes each, a record whose first byte is 0xff
// ending the batch and advancing the clock by its second byte in seconds
// (with maintenance).
func FuzzShortMatchesGeneral(f *testing.F) {
	f.Add([]byte{0x01, 0x03, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 2, 2, 3, 4, 5, 6, 7, 8, 0xff, 40, 0, 0, 0, 0, 0, 0, 1, 3, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{0x00, 0x01, 0x00, 0x11, 4, 1, 1, 1, 1, 1, 1, 1, 5, 1, 1, 1, 1, 1, 1, 1, 6, 1, 1, 1, 1, 1, 1, 1, 0xff, 200, 0, 0, 0, 0, 0, 0, 7, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{0x09, 0x00, 0x04, 0x20, 0, 17, 34, 0, 0, 0, 0xc0, 255, 3, 18, 35, 0, 0, 0, 0xc0, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		var labels []Label
		mask := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16
		for l := range labelCount {
			if mask&(1<<l) != 0 && l != LabelSrcNet && l != LabelDstNet && l != LabelTenant && l != LabelService {
				labels = append(labels, l)
			}
		}
		if len(labels) == 0 {
			return
		}
		spec := Spec{Name: "x", Labels: labels, Limit: 1 + int(data[3]&7),
			IPv4Mask: [4]int{0, 8, 24, 31}[data[3]>>3&3], IPv6Mask: [4]int{0, 16, 64, 127}[data[3]>>5&3]}
		opts := Options{TTL: 30 * time.Second, Hold: 20 * time.Second, Window: 40 * time.Second, SketchSize: 4, Tombstones: 8, MaxOthers: 2}
		short, general := NewFamily(spec, opts), NewFamily(spec, opts)
		if !short.short() {
			return // both would fold with addGeneral
		}
		// The same hash seeds, so that the tables and sketches evolve alike.
		general.tab.seed, general.tab.k0 = short.tab.seed, short.tab.k0
		general.sketch = newSpaceSaving(general.opts.SketchSize, &general.tab)

		now := t0
		var recs []flow.Record
		compare := func(what string) {
			t.Helper()
			if a, b := short.Collect(nil), general.Collect(nil); !reflect.DeepEqual(a, b) {
				t.Fatalf("labels %v, %s: addShort gave %+v, addGeneral %+v", labels, what, a, b)
			}
			if a, b := short.Stats(), general.Stats(); a != b {
				t.Fatalf("labels %v, %s: stats %+v and %+v", labels, what, a, b)
			}
			if a, b := short.sketch.top(), general.sketch.top(); !reflect.DeepEqual(a, b) {
				t.Fatalf("labels %v, %s: sketch %+v and %+v", labels, what, a, b)
			}
		}
		flush := func() {
			base := make([]Key, len(recs))
			for i := range recs {
				SetBaseKey(&base[i], &recs[i])
			}
			short.mu.Lock()
			short.addShort(recs, base, now)
			short.mu.Unlock()
			general.mu.Lock()
			general.addGeneral(recs, base, now)
			general.mu.Unlock()
			compare("after a batch")
			recs = recs[:0]
		}
		for b := data[4:]; len(b) >= fuzzRecordBytes; b = b[fuzzRecordBytes:] {
			if b[0] == 0xff {
				flush()
				now = now.Add(time.Duration(b[1]) * time.Second)
				short.Maintain(now)
				general.Maintain(now)
				compare("after maintenance")
				continue
			}
			recs = append(recs, fuzzRecord(b))
		}
		flush()
	})
}
