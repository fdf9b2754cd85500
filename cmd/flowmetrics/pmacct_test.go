package main

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// TestPmacctNfprobeUnsampled replays the pcap through pmacctd's nfprobe
// plugin (NetFlow v9 and IPFIX): totals, per source and per protocol equal
// the pcap's exactly.
func TestPmacctNfprobeUnsampled(t *testing.T) {
	testkit.SkipIfMissing(t, "pmacctd")
	for _, v := range []int{9, 10} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			t.Parallel()
			pcap, truth := writePcap(t, testkit.Spec{Seed: 11, IPv6: true})
			in := start(t)
			if err := testkit.RunPmacctNfprobe(ctxFor(t), pcap, in.flowAddr, v, 0); err != nil {
				t.Fatal(err)
			}
			mfs := in.settle(t, 1)
			assertHealthy(t, mfs)
			assertTotals(t, mfs, truth, 1, false)
		})
	}
}

// TestPmacctNfprobeSampled samples 1:10 at random in pmacct, which states the
// rate in sampler options (48/49/50) and names the sampler in every record.
// The exact datagrams pmacct sent are captured, counted raw by nfdump (which
// does not apply pmacct's rate) and replayed into flowmetrics: its totals
// must be nfdump's raw counts times 10, exactly, and within sampling error of
// the pcap's own.
func TestPmacctNfprobeSampled(t *testing.T) {
	testkit.SkipIfMissing(t, "pmacctd", "nfcapd", "nfdump")
	const n = 10
	for _, v := range []int{9, 10} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			t.Parallel()
			pcap, truth := writePcap(t, testkit.Spec{Seed: 12, Packets: 6000})
			capt, err := testkit.NewCapture(ctxFor(t), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer capt.Close()
			if err := testkit.RunPmacctNfprobe(ctxFor(t), pcap, capt.Addr(), v, n); err != nil {
				t.Fatal(err)
			}
			if err := capt.WaitQuiet(ctxFor(t), 1, 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			dgs := capt.Datagrams()
			raw, err := testkit.NfdumpDatagrams(ctxFor(t), dgs)
			if err != nil {
				t.Fatal(err)
			}
			want := testkit.SumNfdump(raw)
			in := start(t)
			if err := testkit.Replay(ctxFor(t), in.flowAddr, dgs, 0); err != nil {
				t.Fatal(err)
			}
			mfs := in.settle(t, float64(len(raw)))
			assertHealthy(t, mfs)
			if got := sum(mfs, "flow_exporter_bytes_total", nil); got != float64(want.Bytes*n) {
				t.Errorf("bytes = %v, want nfdump's raw %d x %d", got, want.Bytes, n)
			}
			if got := sum(mfs, "flow_exporter_packets_total", nil); got != float64(want.Packets*n) {
				t.Errorf("packets = %v, want nfdump's raw %d x %d", got, want.Packets, n)
			}
			if got := sum(mfs, "flowmetrics_sampling_rate", map[string]string{"source": "sampler_options"}); got != n {
				t.Errorf("sampling rate from sampler options = %v, want %d", got, n)
			}
			// Within sampling error of the truth: ~600 of 6000 packets kept,
			// so the estimate's relative error is about 4%; allow 25%.
			est := sum(mfs, "flow_exporter_packets_total", nil)
			if rel := math.Abs(est-float64(truth.Total.Packets)) / float64(truth.Total.Packets); rel > 0.25 {
				t.Errorf("estimated packets %v vs pcap %d: %.0f%% off", est, truth.Total.Packets, 100*rel)
			}
		})
	}
}

// TestPmacctSfprobe exports sFlow v5 from pmacctd. Unsampled, every packet is
// a sample and the IP bytes read from the sampled headers equal the pcap's
// exactly (marker frames, which sfprobe partly drops at exit, are left out).
// Sampled 1:10, the rate comes from each sample and the estimate is within
// sampling error.
func TestPmacctSfprobe(t *testing.T) {
	testkit.SkipIfMissing(t, "pmacctd")
	for _, rate := range []int{1, 10} {
		t.Run(fmt.Sprintf("rate%d", rate), func(t *testing.T) {
			t.Parallel()
			pcap, truth := writePcap(t, testkit.Spec{Seed: 13, IPv6: true, Packets: 4000, Markers: testkit.SfprobeMarkers(rate)})
			in := start(t)
			if err := testkit.RunPmacctSfprobe(ctxFor(t), pcap, in.flowAddr, rate); err != nil {
				t.Fatal(err)
			}
			mfs := in.settle(t, 1)
			assertHealthy(t, mfs)
			marker := testkit.MarkerSrc.String()
			src := by(mfs, "flow_src_host_bytes_total", "src_addr")
			total := sum(mfs, "flow_exporter_bytes_total", nil) - src[marker]
			pkts := sum(mfs, "flow_exporter_packets_total", nil) - by(mfs, "flow_src_host_packets_total", "src_addr")[marker]
			if rate == 1 {
				if total != float64(truth.Total.Bytes) || pkts != float64(truth.Total.Packets) {
					t.Errorf("unsampled sFlow: %v bytes %v packets, want %d %d", total, pkts, truth.Total.Bytes, truth.Total.Packets)
				}
				for addr, c := range truth.BySrc {
					if src[addr.String()] != float64(c.Bytes) {
						t.Errorf("src %s: %v bytes, want %d", addr, src[addr.String()], c.Bytes)
					}
				}
				return
			}
			if got := sum(mfs, "flowmetrics_sampling_rate", map[string]string{"source": "header"}); got != float64(rate) {
				t.Errorf("rate gauge = %v, want %d", got, rate)
			}
			if math.Mod(pkts, float64(rate)) != 0 {
				t.Errorf("packets %v not a multiple of the rate %d", pkts, rate)
			}
			if rel := math.Abs(pkts-float64(truth.Total.Packets)) / float64(truth.Total.Packets); rel > 0.25 {
				t.Errorf("estimated packets %v vs pcap %d: %.0f%% off", pkts, truth.Total.Packets, 100*rel)
			}
		})
	}
}
