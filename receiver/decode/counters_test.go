package decode

import (
	"fmt"
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
