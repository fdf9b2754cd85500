package decode

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// Append over datagrams whose fast path fails midway (after a sample's
// record was appended) or whose goflow2 decode fails midway: Pending must be
// the same for both paths and equal to the per-datagram records.
func TestSFlowAppendMatchesPerDatagram(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for seed := 0; seed < 300; seed++ {
		fast, ref := New(Limits{}), New(Limits{})
		ref.noFastPath = true
		exF, exR := &health.Exporter{}, &health.Exporter{}
		var perDG []flow.Record
		single := New(Limits{})
		exS := &health.Exporter{}
		for dg := 0; dg < 20; dg++ {
			var samples [][]byte
			for range 1 + rng.IntN(5) {
				samples = append(samples, poolSampleBytes(rng, uint32(rng.IntN(3)), uint32(dg*10+rng.IntN(5)), uint32(1000*dg), 100))
			}
			b := sfDatagram(uint32(dg), 0, -1, samples...)
			if rng.IntN(4) == 0 {
				b = b[:28+rng.IntN(len(b)-28)]
			}
			fast.Append(b, exporter, exF)
			ref.Append(b, exporter, exR)
			rs, _ := single.Decode(b, exporter, exS)
			perDG = append(perDG, rs.Records...)
		}
		pf, pr := fast.Pending(), ref.Pending()
		if !reflect.DeepEqual(pf, pr) {
			t.Fatalf("seed %d: pending differs: fast %d goflow2 %d records", seed, len(pf), len(pr))
		}
		if !reflect.DeepEqual(pf, perDG) {
			t.Fatalf("seed %d: Append pending %d records, per-datagram Decode %d", seed, len(pf), len(perDG))
		}
		for i, r := range pf {
			if r.Protocol != flow.SFlowV5 || r.Packets != 1 || r.Exporter != exporter {
				t.Fatalf("seed %d: record %d is not a finished sFlow record: %+v", seed, i, r)
			}
		}
		if fast.fastHits == 0 {
			t.Fatalf("no fast path")
		}
	}
}
