package decode

import (
	"fmt"
	"math"
	"testing"
)

// TestCounterPrecedence: which counters a v9/IPFIX record's bytes and
// packets come from (the README's "What a v9/IPFIX record counts"), through
// both decode paths.
func TestCounterPrecedence(t *testing.T) {
	f := func(typ uint16) field { return field{typ, 4} }
	for _, tc := range []struct {
		name           string
		fields         []field
		values         []uint32
		bytes, packets uint64
	}{
		{"deltas", []field{f(1), f(2)}, []uint32{1500, 3}, 1500, 3},
		{"delta beats total", []field{f(85), f(1), f(86), f(2)}, []uint32{99999, 1500, 999, 3}, 1500, 3},
		{"totals", []field{f(85), f(86)}, []uint32{7000, 7}, 7000, 7},
		{"IN and OUT bytes are not summed", []field{f(1), f(2), f(23), f(24)}, []uint32{1500, 3, 1500, 3}, 1500, 3},
		{"NSEL initiator + responder", []field{f(231), f(232), f(298), f(299)}, []uint32{1000, 400, 6, 4}, 1400, 10},
		{"OUT counters alone", []field{f(23), f(24)}, []uint32{800, 2}, 800, 2},
		{"total beats NSEL", []field{f(231), f(85), f(298), f(86)}, []uint32{1000, 5000, 6, 50}, 5000, 50},
	} {
		for _, version := range []uint16{9, 10} {
			t.Run(fmt.Sprintf("%s v%d", tc.name, version), func(t *testing.T) {
				p := newPair()
				var rec []byte
				for _, v := range tc.values {
					rec = cat(rec, u32(v))
				}
				tpl := datagram(version, 1, 7, templateSet(version, 256, tc.fields...))
				p.check(t, tpl)
				recs := p.check(t, datagram(version, 2, 7, dataSet(256, rec)))
				if len(recs) != 1 || recs[0].Bytes != tc.bytes || recs[0].Packets != tc.packets {
					t.Fatalf("records %+v, want %d bytes, %d packets", recs, tc.bytes, tc.packets)
				}
				if p.fast.fastHits == 0 {
					t.Error("the fast path did not take the data set")
				}
			})
		}
	}
}

// TestCounterSumsSaturate: NSEL initiator + responder counters (8 bytes
// each) whose sum passes 2^64 must not wrap to a small, plausible count:
// the sum stays at the maximum, which the core refuses as
// implausible_value, instead of a few bytes counted as real traffic.
func TestCounterSumsSaturate(t *testing.T) {
	f := func(typ uint16) field { return field{typ, 8} }
	u64 := func(v uint64) []byte { return cat(u32(uint32(v>>32)), u32(uint32(v))) }
	const big = ^uint64(0) - 99 // plus 200 wraps to 100
	for _, version := range []uint16{9, 10} {
		p := newPair()
		p.check(t, datagram(version, 1, 7, templateSet(version, 256, f(231), f(232), f(298), f(299))))
		recs := p.check(t, datagram(version, 2, 7, dataSet(256, cat(u64(big), u64(200), u64(big), u64(200)))))
		if len(recs) != 1 || recs[0].Bytes != ^uint64(0) || recs[0].Packets != ^uint64(0) {
			t.Fatalf("v%d: records %+v, want bytes and packets 2^64-1", version, recs)
		}
	}
}

// TestCountBasedRateSaturates: a systematic count-based rate whose interval
// plus space passes 2^64 is the largest rate, not the 0 (no rate, counted
// 1:1 as unresolved) that a wrapped sum gave.
func TestCountBasedRateSaturates(t *testing.T) {
	sf := samplingFields{algorithm: 1, pktInterval: 1, pktSpace: ^uint64(0), any: true}
	if got := sf.rate(); got != math.MaxUint32 {
		t.Fatalf("rate = %d, want %d", got, uint32(math.MaxUint32))
	}
}
