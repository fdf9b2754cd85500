package main

import (
	"fmt"
	"testing"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// TestPSAMPSections exports a pcap as IPFIX PSAMP records (one per sampled
// packet: the frame's first 128 bytes and its size, no counters, no
// addresses, as Juniper's inline monitoring does), encoded by python3-ipfix
// rather than by goflow2 or by us, unsampled and 1:10. Every family must
// sum to the sampled frames' IP bytes and packets times the rate, with the
// per-source and per-protocol breakdown read from the frames' headers.
func TestPSAMPSections(t *testing.T) {
	testkit.SkipIfNoPSAMPExporter(t)
	for _, n := range []int{1, 10} {
		t.Run(fmt.Sprintf("rate%d", n), func(t *testing.T) {
			t.Parallel()
			pcap, truth := writePcap(t, testkit.Spec{Seed: 21, IPv6: true})
			want := truth.SampledEvery(n)
			in := start(t)
			sent, err := testkit.RunPSAMPExport(ctxFor(t), pcap, in.flowAddr, n, 128)
			if err != nil {
				t.Fatal(err)
			}
			if sent != len(want.Frames) {
				t.Fatalf("the exporter sent %d records, want %d (every %d-th of %d frames)", sent, len(want.Frames), n, len(truth.Frames))
			}
			mfs := in.settle(t, float64(sent))
			assertHealthy(t, mfs)
			assertTotals(t, mfs, want, uint64(n), false)
			if got := sum(mfs, "flowmetrics_sampling_rate", map[string]string{"source": "domain_options"}); got != float64(n) {
				t.Errorf("sampling rate gauge (domain_options) = %v, want %d", got, n)
			}
		})
	}
}
