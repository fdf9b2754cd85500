// Package otelcol_test checks the ocb-built Collector distribution with the
// flowmetrics receiver against the standalone exporter, on the same real
// exporter traffic.
package otelcol_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// collector is the distribution `make otelcol` builds.
const collector = "_build/otelcol-flowmetrics"

// process runs a command until the test ends, then interrupts it.
func process(t *testing.T, name string, args ...string) *testkit.SyncBuffer {
	t.Helper()
	var log testkit.SyncBuffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGINT", name)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, log.String())
		}
	})
	return &log
}

// settle scrapes url until flow_exporter_flows_total stops moving at a
// non-zero value.
func settle(t *testing.T, url string, log *testkit.SyncBuffer) testkit.Metrics {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, stable := -1.0, 0
	for {
		mfs, err := testkit.Scrape(url)
		if err == nil {
			n := mfs.Sum("flow_exporter_flows_total", nil)
			if n > 0 && n == last {
				if stable++; stable >= 3 {
					return mfs
				}
			} else {
				stable = 0
			}
			last = n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not settle (last %v, err %v); log:\n%s", url, last, err, log)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestCollectorMatchesStandalone replays the same real exporter streams
// (softflowd NetFlow v9 and IPFIX at 1:10, pmacct sFlow) into the built
// Collector, whose Prometheus exporter is scraped, and into the standalone
// binary: every family's totals, and the per-source and per-protocol series,
// are equal, and both equal the pcap's own for the deterministic streams.
// needCollector skips t when the Collector is not built, or fails it under
// CI, where make test builds it first.
func needCollector(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(collector); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: run make otelcol first", collector)
		}
		t.Skipf("%s not built (make otelcol)", collector)
	}
}

// startCollector runs the Collector with the flowmetrics receiver (its
// settings after listen, indented as receiver keys) in one metrics pipeline
// to one exporter (its settings indented as that exporter's keys), and
// returns its log.
func startCollector(t *testing.T, listen, receiver, exporter, exporterSettings string) *testkit.SyncBuffer {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "otelcol.yaml")
	yaml := fmt.Sprintf(`
receivers:
  flowmetrics:
    listen: [%q]
%s
exporters:
  %s:
%s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [flowmetrics]
      exporters: [%s]
`, listen, receiver, exporter, exporterSettings, exporter)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return process(t, collector, "--config", cfg)
}

// droppingReceiver is the receiver of the dropped-series tests: series end
// two seconds after their last record, collected five times a second.
const droppingReceiver = `    collection_interval: 200ms
    attribute_style: prometheus
    series: {idle_timeout: 1s, frozen_hold: 1s}
    families: [{name: src, labels: [exporter, src_addr], limit: 10}]`

func TestCollectorMatchesStandalone(t *testing.T) {
	needCollector(t)
	testkit.SkipIfMissing(t, "softflowd", "pmacctd")
	dir := t.TempDir()
	standalone := filepath.Join(dir, "flowmetrics")
	if out, err := exec.Command("go", "build", "-o", standalone, "../flowmetrics").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	type stream struct {
		name  string
		rate  uint64
		check bool // deterministic: compare with the pcap too
		run   func(ctx context.Context, pcap, target string) error
	}
	streams := []stream{
		{"softflowd-v9", 10, true, func(ctx context.Context, p, a string) error { return testkit.RunSoftflowd(ctx, p, a, 9, 10) }},
		{"softflowd-ipfix", 10, true, func(ctx context.Context, p, a string) error { return testkit.RunSoftflowd(ctx, p, a, 10, 10) }},
		{"pmacct-sflow", 1, false, func(ctx context.Context, p, a string) error { return testkit.RunPmacctSfprobe(ctx, p, a, 5) }},
	}
	for _, s := range streams {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			pcap := filepath.Join(t.TempDir(), "t.pcap")
			spec := testkit.Spec{Seed: 31, IPv6: true}
			if !s.check {
				spec.Markers = testkit.SfprobeMarkers(5) // sfprobe loses its last datagram's samples
			}
			truth, err := testkit.WritePcap(pcap, spec)
			if err != nil {
				t.Fatal(err)
			}
			capt, err := testkit.NewCapture(ctx, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.run(ctx, pcap, capt.Addr()); err != nil {
				t.Fatal(err)
			}
			if err := capt.WaitQuiet(ctx, 1, 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			dgs := capt.Datagrams()
			capt.Close()

			colFlows, colProm := testkit.FreePort(t, "udp"), testkit.FreePort(t, "tcp")
			colLog := startCollector(t, colFlows, `    collection_interval: 500ms
    attribute_style: prometheus`, "prometheus", fmt.Sprintf("    endpoint: %q", colProm))
			fmFlows, fmWeb := testkit.FreePort(t, "udp"), testkit.FreePort(t, "tcp")
			fmLog := process(t, standalone, "--flow.listen-address="+fmFlows, "--web.listen-address="+fmWeb)
			time.Sleep(2 * time.Second) // both bind
			for _, target := range []string{colFlows, fmFlows} {
				if err := testkit.Replay(ctx, target, dgs, 0); err != nil {
					t.Fatal(err)
				}
			}
			col := settle(t, "http://"+colProm+"/metrics", colLog)
			fm := settle(t, "http://"+fmWeb+"/metrics", fmLog)
			for _, fam := range []string{"exporter", "interface", "protocol", "application", "src_host", "dst_host", "as_pair"} {
				for _, unit := range []string{"bytes", "packets", "flows"} {
					name := "flow_" + fam + "_" + unit + "_total"
					if c, f := col.Sum(name, nil), fm.Sum(name, nil); c != f || c == 0 {
						t.Errorf("%s: collector %v, standalone %v", name, c, f)
					}
				}
			}
			for _, cmp := range []struct{ name, label string }{
				{"flow_src_host_bytes_total", "src_addr"}, {"flow_protocol_packets_total", "proto"}, {"flow_application_bytes_total", "port"},
			} {
				c, f := col.By(cmp.name, cmp.label), fm.By(cmp.name, cmp.label)
				if fmt.Sprint(c) != fmt.Sprint(f) {
					t.Errorf("%s by %s: collector %v, standalone %v", cmp.name, cmp.label, c, f)
				}
			}
			if s.check {
				want := float64(truth.SampledEvery(int(s.rate)).Total.Bytes * s.rate)
				if got := col.Sum("flow_exporter_bytes_total", nil); got != want {
					t.Errorf("collector bytes %v, pcap says %v", got, want)
				}
			}
			if got := col.Sum("flowmetrics_decode_errors_total", nil); got != 0 {
				t.Errorf("collector decode errors = %v", got)
			}
		})
	}
}

// TestExampleConfigValidates runs the distribution's own `validate` on the
// example Collector config shipped in examples/.
func TestExampleConfigValidates(t *testing.T) {
	needCollector(t)
	out, err := exec.Command(collector, "validate", "--config", "../../examples/otelcol.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("receivers:\n  flowmetrics:\n    families: [{name: x, labels: [nope], limit: 1}]\nexporters:\n  debug:\nservice:\n  pipelines:\n    metrics:\n      receivers: [flowmetrics]\n      exporters: [debug]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(collector, "validate", "--config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown label "nope"`) {
		t.Fatalf("an invalid receiver config was not refused with its key: %v\n%s", err, out)
	}
}

// v5 is a NetFlow v5 datagram with one 1000-byte TCP record from each of
// srcs (IPv4) to 10.9.9.9:443.
func v5(seq uint32, srcs ...string) []byte {
	b := make([]byte, 24+48*len(srcs))
	binary.BigEndian.PutUint16(b, 5)
	binary.BigEndian.PutUint16(b[2:], uint16(len(srcs)))
	binary.BigEndian.PutUint32(b[16:], seq)
	for i, s := range srcs {
		r := b[24+48*i:]
		copy(r, net.ParseIP(s).To4())
		copy(r[4:], []byte{10, 9, 9, 9})
		binary.BigEndian.PutUint32(r[16:], 1)
		binary.BigEndian.PutUint32(r[20:], 1000)
		binary.BigEndian.PutUint16(r[34:], 443)
		r[38] = 6
	}
	return b
}

// TestDroppedSeriesLeaveAtOnce: series the receiver drops (after
// series.idle_timeout + series.frozen_hold) leave the Prometheus exporter's
// page within seconds, long before its metric_expiration, because the
// receiver ends them with NoRecordedValue points; two that end together
// both leave (the exporter reads no further points of a metric after a
// NoRecordedValue one, so each end must be a metric of its own), and a busy
// series of the same metric stays.
func TestDroppedSeriesLeaveAtOnce(t *testing.T) {
	needCollector(t)
	flows, prom := testkit.FreePort(t, "udp"), testkit.FreePort(t, "tcp")
	log := startCollector(t, flows, droppingReceiver, "prometheus", fmt.Sprintf(`    endpoint: %q
    metric_expiration: 10m`, prom))
	conn, err := net.Dial("udp", flows)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	url := "http://" + prom + "/metrics"
	dropTwoOfThree(t, conn, log, "the exporter's page (metric_expiration is 10m)", func() (map[string]float64, error) {
		mfs, err := testkit.Scrape(url)
		return mfs.By("flow_src_bytes_total", "src_addr"), err
	})
}

// dropTwoOfThree drives the dropped-series tests over conn: 10.0.0.1,
// 10.0.0.2 and 10.0.0.3 send until read (the sources' bytes, from where)
// shows .2 and .3 (again and again, in case the first datagrams came before
// the receiver bound its socket); then only 10.0.0.1 sends, which must stay,
// until .2 and .3 are gone from read. The receiver's idle_timeout plus
// frozen_hold is 2 s; each phase may take 30 s.
func dropTwoOfThree(t *testing.T, conn net.Conn, log *testkit.SyncBuffer, where string, read func() (map[string]float64, error)) {
	t.Helper()
	seq := uint32(0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _ = conn.Write(v5(seq, "10.0.0.1", "10.0.0.2", "10.0.0.3"))
		seq += 3
		s, err := read()
		if err == nil && s["10.0.0.2"] > 0 && s["10.0.0.3"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sources never reached %s (%v, last err %v); log:\n%s", where, s, err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, _ = conn.Write(v5(seq, "10.0.0.1"))
		seq++
		s, err := read()
		if err == nil && s["10.0.0.1"] == 0 {
			t.Fatalf("the busy source left %s: %v", where, s)
		}
		_, two := s["10.0.0.2"]
		_, three := s["10.0.0.3"]
		if err == nil && !two && !three {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dropped series still in %s: %v (err %v); log:\n%s", where, s, err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// promResult is one series of a Prometheus instant query.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promQuery runs an instant PromQL query at the current time against the
// Prometheus at base and returns each series' labels and value.
func promQuery(base, q string) ([]promResult, map[string]float64, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promResult `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, nil, err
	}
	if r.Status != "success" {
		return nil, nil, fmt.Errorf("%s: %s", q, r.Error)
	}
	bySrc := map[string]float64{}
	for _, s := range r.Data.Result {
		v, _ := s.Value[1].(string)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: value %q", q, v)
		}
		bySrc[s.Metric["src_addr"]] = f
	}
	return r.Data.Result, bySrc, nil
}

// TestDroppedSeriesStaleThroughRemoteWrite: through the Prometheus remote
// write exporter into a real Prometheus, a series the receiver drops stops
// being returned by a query at the current time within seconds — its end
// became a staleness marker — instead of lingering for the 5-minute
// lookback; a busy series of the same metric stays; and no counter shows a
// reset (an end written as a value would read as one).
func TestDroppedSeriesStaleThroughRemoteWrite(t *testing.T) {
	needCollector(t)
	if _, err := exec.LookPath("prometheus"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus not on PATH (CI=true)")
		}
		t.Skip("prometheus not on PATH")
	}
	dir := t.TempDir()
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte("global: {scrape_interval: 1m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	promAddr := testkit.FreePort(t, "tcp")
	prom := "http://" + promAddr
	promLog := process(t, "prometheus", "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--web.enable-remote-write-receiver", "--log.level=warn")
	if err := testkit.WaitReady(prom+"/-/ready", 30*time.Second); err != nil {
		t.Fatalf("prometheus never got ready (%v); log:\n%s", err, promLog)
	}

	flows := testkit.FreePort(t, "udp")
	log := startCollector(t, flows, droppingReceiver, "prometheus_remote_write", fmt.Sprintf("    endpoint: %q", prom+"/api/v1/write"))
	conn, err := net.Dial("udp", flows)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Without an end the dropped series would answer queries for 5
	// minutes after their last sample.
	const query = `flow_src_bytes_total{exporter="127.0.0.1"}`
	dropTwoOfThree(t, conn, log, "Prometheus's answer at now (no staleness marker?)", func() (map[string]float64, error) {
		_, s, err := promQuery(prom, query)
		return s, err
	})

	// Their samples are still there for range queries, and no series,
	// ended or live, has a reset: the end carried no value.
	res, s, err := promQuery(prom, `last_over_time(`+query+`[5m])`)
	if err != nil || len(res) != 3 || s["10.0.0.2"] <= 0 || s["10.0.0.3"] <= 0 {
		t.Errorf("last_over_time over the ended series: %v (err %v)", s, err)
	}
	if _, s, err := promQuery(prom, `resets(`+query+`[5m])`); err != nil || len(s) != 3 || s["10.0.0.1"] != 0 || s["10.0.0.2"] != 0 || s["10.0.0.3"] != 0 {
		t.Errorf("resets(): %v (err %v), want 0 for each of the three sources", s, err)
	}
	if strings.Contains(log.String(), "\terror\t") {
		t.Errorf("the collector logged errors:\n%s", log)
	}
}

// TestModuleGoDirectiveIsMinorOnly: a distribution that imports the
// receiver inherits the highest go directive among its modules, and with
// GOTOOLCHAIN=local (or offline) a Go older than it cannot build. The
// Collector's own modules ask for 1.N.0; a patch release here would force
// every ocb build onto it. The toolchain line (ignored outside this module)
// pins the patch release this repo is developed with.
func TestModuleGoDirectiveIsMinorOnly(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "go ")
		if !ok {
			continue
		}
		if parts := strings.Split(v, "."); len(parts) > 2 && parts[2] != "0" {
			t.Errorf("go.mod says go %s: every distribution built with the receiver then needs Go %s or later; write go %s.%s.0 (and a toolchain line for this repo)", v, v, parts[0], parts[1])
		}
		return
	}
	t.Fatal("go.mod has no go directive")
}
