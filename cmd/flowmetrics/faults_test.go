package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/decode"
)

// captureSoftflowd records the datagrams softflowd sends for a pcap.
func captureSoftflowd(t *testing.T, pcap string, version, sampling int) []testkit.Datagram {
	t.Helper()
	capt, err := testkit.NewCapture(ctxFor(t), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Close()
	if err := testkit.RunSoftflowd(ctxFor(t), pcap, capt.Addr(), version, sampling); err != nil {
		t.Fatal(err)
	}
	if err := capt.WaitQuiet(ctxFor(t), 1, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return capt.Datagrams()
}

// flowRecords counts the flow records in a v5 or IPFIX datagram with our
// decoder. The templates are carried over between calls on ex, the
// exporter's health entry, which holds the decoder state.
func flowRecords(d *decode.Decoder, ex *health.Exporter, b []byte) int {
	res, _ := d.Decode(b, testkit.MarkerSrc, ex)
	return len(res.Records)
}

// TestSequenceLossAndRestart replays softflowd's real export with every
// fourth datagram dropped on the sending side, then replays it again (the
// exporter "restarted": sequence numbers start over, templates are resent).
// The lost records are estimated exactly from v5 and IPFIX sequence numbers,
// the restart is counted as a reset and not as loss, and the records that
// arrived are counted exactly.
func TestSequenceLossAndRestart(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	for _, v := range []int{5, 10} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			pcap, _ := writePcap(t, testkit.Spec{Seed: 21, Flows: 400, Packets: 2000})
			dgs := captureSoftflowd(t, pcap, v, 0)
			if len(dgs) < 8 {
				t.Fatalf("only %d datagrams captured", len(dgs))
			}
			counter, ex := decode.New(decode.Limits{}), &health.Exporter{}
			var kept []testkit.Datagram
			var lost, arrived int
			for i, d := range dgs {
				n := flowRecords(counter, ex, d.Data)
				if i%4 == 3 {
					lost += n
					continue
				}
				arrived += n
				kept = append(kept, d)
			}
			in := start(t)
			if err := testkit.Replay(ctxFor(t), in.flowAddr, kept, time.Millisecond); err != nil {
				t.Fatal(err)
			}
			mfs := in.settle(t, float64(arrived))
			if got := sum(mfs, "flowmetrics_sequence_lost_records_total", nil); got != float64(lost) {
				t.Errorf("estimated lost records = %v, want %d", got, lost)
			}
			if got := sum(mfs, "flowmetrics_records_total", nil); got != float64(arrived) {
				t.Errorf("records = %v, want %d", got, arrived)
			}
			// Restart: the whole stream again from sequence 0.
			if err := testkit.Replay(ctxFor(t), in.flowAddr, dgs, time.Millisecond); err != nil {
				t.Fatal(err)
			}
			mfs = in.settle(t, float64(2*arrived+lost))
			if got := sum(mfs, "flowmetrics_sequence_resets_total", nil); got != 1 {
				t.Errorf("sequence resets = %v, want 1", got)
			}
			if got := sum(mfs, "flowmetrics_sequence_lost_records_total", nil); got != float64(lost) {
				t.Errorf("after restart, lost records = %v, want still %d", got, lost)
			}
		})
	}
}

// TestSamplingRateChange exports the same pcap from the same exporter first
// at 1:10, then at 1:5: each run's records are corrected with its own rate,
// and the gauge shows the rate now in force.
func TestSamplingRateChange(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	pcap, truth := writePcap(t, testkit.Spec{Seed: 22, IPv6: true})
	in := start(t)
	for _, n := range []int{10, 5} {
		if err := testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, 9, n); err != nil {
			t.Fatal(err)
		}
		in.settle(t, 1)
	}
	mfs := in.scrape(t)
	want := truth.SampledEvery(10).Total.Bytes*10 + truth.SampledEvery(5).Total.Bytes*5
	if got := sum(mfs, "flow_exporter_bytes_total", nil); got != float64(want) {
		t.Errorf("bytes = %v, want %d", got, want)
	}
	if got := sum(mfs, "flowmetrics_sampling_rate", nil); got != 5 {
		t.Errorf("rate in force = %v, want 5", got)
	}
}
