package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// binary is the flowmetrics executable the end-to-end tests run, built once
// by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowmetrics-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "flowmetrics")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building flowmetrics: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one running flowmetrics process.
type instance struct {
	flowAddr string // 127.0.0.1:port for flows
	web      string // http://127.0.0.1:port
	cmd      *exec.Cmd
	log      *testkit.SyncBuffer
}

// start runs flowmetrics with args (and the flow/web addresses it picks).
func start(t *testing.T, args ...string) *instance {
	t.Helper()
	in := &instance{
		flowAddr: testkit.FreePort(t, "udp"),
		web:      testkit.FreePort(t, "tcp"),
		log:      &testkit.SyncBuffer{},
	}
	all := append([]string{"--flow.listen-address=" + in.flowAddr, "--web.listen-address=" + in.web}, args...)
	in.cmd = exec.Command(binary, all...)
	in.cmd.Stderr = in.log
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.web = "http://" + in.web
	t.Cleanup(func() {
		_ = in.cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- in.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("flowmetrics exited with %v; log:\n%s", err, in.log)
			}
		case <-time.After(10 * time.Second):
			_ = in.cmd.Process.Kill()
			t.Errorf("flowmetrics did not stop within 10s after SIGINT")
		}
		if t.Failed() {
			t.Logf("flowmetrics log:\n%s", in.log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(in.web + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("flowmetrics not ready: %v; log:\n%s", err, in.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape fetches and parses /metrics.
func (in *instance) scrape(t *testing.T) testkit.Metrics {
	t.Helper()
	mfs, err := testkit.Scrape(in.web + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func value(m *dto.Metric) float64              { return testkit.Value(m) }
func labelsOf(m *dto.Metric) map[string]string { return testkit.Labels(m) }

// sum adds the samples of a metric whose labels match all of match.
func sum(mfs testkit.Metrics, name string, match map[string]string) float64 {
	return mfs.Sum(name, match)
}

// by groups a metric's samples by one label.
func by(mfs testkit.Metrics, name, label string) map[string]float64 { return mfs.By(name, label) }

// settle scrapes until the records counter stops moving (the exporter has
// processed everything the real exporter sent) and returns the last scrape.
func (in *instance) settle(t *testing.T, atLeast float64) testkit.Metrics {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last, stable := -1.0, 0
	for {
		mfs := in.scrape(t)
		n := sum(mfs, "flowmetrics_records_total", nil)
		if n == last && n >= atLeast {
			stable++
			if stable >= 3 {
				return mfs
			}
		} else {
			stable = 0
		}
		last = n
		if time.Now().After(deadline) {
			t.Fatalf("records counter did not settle (last %v, want at least %v)", n, atLeast)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func writePcap(t *testing.T, spec testkit.Spec) (string, testkit.Truth) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "traffic.pcap")
	truth, err := testkit.WritePcap(path, spec)
	if err != nil {
		t.Fatal(err)
	}
	return path, truth
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// assertHealthy checks that no decode error of any reason was counted.
func assertHealthy(t *testing.T, mfs testkit.Metrics) {
	t.Helper()
	for reason, v := range by(mfs, "flowmetrics_decode_errors_total", "reason") {
		if v != 0 {
			t.Errorf("decode errors %s = %v, want 0", reason, v)
		}
	}
	if v := sum(mfs, "flowmetrics_template_missing_sets_total", nil); v != 0 {
		t.Errorf("template missing sets = %v, want 0", v)
	}
	if v := sum(mfs, "flowmetrics_sequence_gaps_total", nil); v != 0 {
		t.Errorf("sequence gaps = %v over loopback, want 0", v)
	}
}

// assertTotals checks the exporter total and every family's sum against the
// expected bytes and packets, and the per-source and per-protocol breakdown.
func assertTotals(t *testing.T, mfs testkit.Metrics, want testkit.Truth, rate uint64, sflow bool) {
	t.Helper()
	wb := func(c testkit.Counter) float64 { return float64(c.Bytes * rate) }
	wp := func(c testkit.Counter) float64 { return float64(c.Packets * rate) }
	for _, fam := range []string{"exporter", "interface", "protocol", "application", "src_host", "dst_host", "as_pair"} {
		if got := sum(mfs, "flow_"+fam+"_bytes_total", nil); got != wb(want.Total) {
			t.Errorf("flow_%s_bytes_total sums to %v, want %v", fam, got, wb(want.Total))
		}
		if got := sum(mfs, "flow_"+fam+"_packets_total", nil); got != wp(want.Total) {
			t.Errorf("flow_%s_packets_total sums to %v, want %v", fam, got, wp(want.Total))
		}
	}
	gotSrc := by(mfs, "flow_src_host_bytes_total", "src_addr")
	for addr, c := range want.BySrc {
		if gotSrc[addr.String()] != wb(c) {
			t.Errorf("src %s: %v bytes, want %v", addr, gotSrc[addr.String()], wb(c))
		}
	}
	if len(gotSrc) != len(want.BySrc) {
		t.Errorf("src_host series %d, want %d: %v", len(gotSrc), len(want.BySrc), gotSrc)
	}
	gotProto := by(mfs, "flow_protocol_packets_total", "proto")
	names := map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp"}
	for p, c := range want.ByProto {
		if gotProto[names[p]] != wp(c) {
			t.Errorf("proto %d: %v packets, want %v (all %v)", p, gotProto[names[p]], wp(c), gotProto)
		}
	}
}

func TestSoftflowdUnsampled(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	for _, v := range []int{5, 9, 10} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			// v5 carries IPv4 only.
			pcap, truth := writePcap(t, testkit.Spec{Seed: 1, IPv6: v != 5})
			in := start(t)
			if err := testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, v, 0); err != nil {
				t.Fatal(err)
			}
			mfs := in.settle(t, 1)
			assertHealthy(t, mfs)
			assertTotals(t, mfs, truth, 1, false)
		})
	}
}

func TestSoftflowdSampled(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	const n = 10
	for _, v := range []int{5, 9, 10} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			pcap, truth := writePcap(t, testkit.Spec{Seed: 2, IPv6: v != 5})
			in := start(t)
			if err := testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, v, n); err != nil {
				t.Fatal(err)
			}
			mfs := in.settle(t, 1)
			assertHealthy(t, mfs)
			assertTotals(t, mfs, truth.SampledEvery(n), n, false)
			if got := sum(mfs, "flowmetrics_sampling_rate", nil); got != n {
				t.Errorf("sampling rate gauge = %v, want %d", got, n)
			}
			if got := sum(mfs, "flowmetrics_sampling_unresolved_records_total", nil); got != 0 {
				t.Errorf("unresolved records = %v, want 0", got)
			}
		})
	}
}
