package promexport

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

func testCore(t *testing.T) *core.Core {
	t.Helper()
	c := core.New(core.Config{
		MaxExporters: 4,
		Families: []aggregate.Spec{
			{Name: "proto", Labels: []aggregate.Label{aggregate.LabelExporter, aggregate.LabelProto}, Limit: 1},
			{Name: "src", Labels: []aggregate.Label{aggregate.LabelSrcAddr}, Limit: 10, HashKey: nil},
		},
	})
	ex := c.Exporters().Get(netip.MustParseAddr("192.0.2.1"))
	recs := []flow.Record{
		{Exporter: ex.Addr, Proto: 6, SrcAddr: netip.MustParseAddr("10.0.0.1"), IPVersion: 4, Bytes: 100, Packets: 2, SamplingRate: 10, RateSource: flow.RateHeader, Protocol: flow.NetFlowV5},
		{Exporter: ex.Addr, Proto: 17, SrcAddr: netip.MustParseAddr("2001:db8::1"), IPVersion: 6, Bytes: 50, Packets: 1, SamplingRate: 10, RateSource: flow.RateHeader, Protocol: flow.NetFlowV5},
	}
	c.Process(ex, recs, time.Unix(1700000000, 0))
	return c
}

// TestHandlerServesTrafficAndHealth scrapes the handler and checks the
// traffic values (sampling-corrected, other-folded), the health metrics from
// the registry, and that real promtool accepts the exposition.
func TestHandlerServesTrafficAndHealth(t *testing.T) {
	c := testCore(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(c, nil))
	rec := httptest.NewRecorder()
	NewHandler(reg, c, HandlerOpts{ErrorLog: func(err error) { t.Error(err) }}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.Bytes()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing exposition: %v\n%s", err, body)
	}
	want := map[string]float64{
		`flow_proto_bytes_total{exporter="192.0.2.1",proto="tcp"}`:              1000,
		`flow_proto_bytes_total{exporter="192.0.2.1",proto="other"}`:            500,
		`flow_proto_packets_total{exporter="192.0.2.1",proto="tcp"}`:            20,
		`flow_src_bytes_total{src_addr="2001:db8::1"}`:                          500,
		`flow_exporter_flows_total{exporter="192.0.2.1"}`:                       2,
		`flowmetrics_records_total{exporter="192.0.2.1",protocol="netflow_v5"}`: 2,
		`flowmetrics_sampling_rate{exporter="192.0.2.1",source="header"}`:       10,
		`flowmetrics_family_other_records_total{family="proto"}`:                1,
	}
	got := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			var parts []string
			for _, l := range m.Label {
				parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[name+"{"+strings.Join(parts, ",")+"}"] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if mfs["flow_src_bytes_total"].GetType().String() != "COUNTER" {
		t.Errorf("flow_src_bytes_total type %v", mfs["flow_src_bytes_total"].GetType())
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

// TestHandlerGzip: the body is gzip-compressed exactly when the request
// accepts gzip, and is the same metrics either way; Vary tells caches.
func TestHandlerGzip(t *testing.T) {
	c := testCore(t)
	reg := prometheus.NewRegistry()
	get := func(acceptEncoding string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		rec := httptest.NewRecorder()
		NewHandler(reg, c, HandlerOpts{}).ServeHTTP(rec, req)
		if v := rec.Header().Get("Vary"); v != "Accept-Encoding" {
			t.Errorf("Vary %q, want Accept-Encoding", v)
		}
		return rec
	}
	plain := get("")
	if plain.Header().Get("Content-Encoding") != "" || !strings.Contains(plain.Body.String(), "flow_exporter_bytes_total{") {
		t.Fatalf("plain: headers %v, body %.200s", plain.Header(), plain.Body)
	}
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip", true},
		{"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"identity", false},
		{"*", true},
		{"*;q=0", false},
	} {
		rec := get(tc.accept)
		if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tc.gzip {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.accept, got, tc.gzip)
			continue
		}
		body := rec.Body.Bytes()
		if tc.gzip {
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(body, plain.Body.Bytes()) {
			t.Errorf("Accept-Encoding %q: body differs from the plain one", tc.accept)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"br, gzip ; q=0.1"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"gzip;q=nonsense"}, false},
		{[]string{"deflate", "gzip"}, true}, // header given twice
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"*, gzip;q=0"}, false}, // gzip named: its weight wins
		{[]string{"gzip;q=0, *"}, false},
		{[]string{"gzipped"}, false},
	} {
		if got := acceptsGzip(tc.values); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.values, got, tc.want)
		}
	}
}

// TestMaxRequestsInFlight: with one scrape held inside Gather, a second
// is refused with 503 at once, and served once the first is done.
func TestMaxRequestsInFlight(t *testing.T) {
	c := testCore(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var hold atomic.Bool
	hold.Store(true)
	reg := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		if hold.Load() {
			close(entered)
			<-release
		}
		return nil, nil
	})
	h := NewHandler(reg, c, HandlerOpts{MaxRequestsInFlight: 1})
	first := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(first, httptest.NewRequest("GET", "/metrics", nil))
	}()
	<-entered
	hold.Store(false)
	second := httptest.NewRecorder()
	h.ServeHTTP(second, httptest.NewRequest("GET", "/metrics", nil))
	if second.Code != http.StatusServiceUnavailable || !strings.Contains(second.Body.String(), "(1)") {
		t.Errorf("second scrape: %d %q, want 503", second.Code, second.Body)
	}
	close(release)
	<-done
	if first.Code != http.StatusOK || !strings.Contains(first.Body.String(), "flow_exporter_bytes_total{") {
		t.Errorf("first scrape: %d %.200s", first.Code, first.Body)
	}
	third := httptest.NewRecorder()
	h.ServeHTTP(third, httptest.NewRequest("GET", "/metrics", nil))
	if third.Code != http.StatusOK {
		t.Errorf("third scrape after the first: %d", third.Code)
	}
}

func TestLabelEscaping(t *testing.T) {
	got := string(appendLabelBlock(nil, []string{"a", "b"}, []string{`x"y`, "p\\q\nr"}))
	if want := `{a="x\"y",b="p\\q\nr"}`; got != want {
		t.Fatalf("appendLabelBlock = %s, want %s", got, want)
	}
}

func TestCollectorLint(t *testing.T) {
	if problems, err := testutil.CollectAndLint(New(testCore(t), nil)); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// TestInterfaceInfoInvalidUTF8 stores an interface alias in Latin-1 (as an
// agent returns "Büro" typed on a Latin-1 terminal) and a static name with
// a stray byte: the registry still gathers without error, the values carry
// U+FFFD, and the health metrics exposed after flowmetrics_interface_info
// are all there.
func TestInterfaceInfoInvalidUTF8(t *testing.T) {
	c := testCore(t)
	ex := netip.MustParseAddr("127.0.0.1")
	c.Interfaces().SetStatic([]enrich.Interface{{Exporter: ex, Index: 4, Name: "x\xe9"}})
	c.Interfaces().SetPolled(ex, []enrich.Interface{{Index: 3, Name: "ge-0/0/3", Alias: "B\xfcro uplink", Speed: 1e9}}, time.Unix(1700000000, 0))
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(c, nil))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := map[string]map[string]string{} // if_index -> labels
	byName := map[string]bool{}
	for _, mf := range mfs {
		byName[mf.GetName()] = true
		if mf.GetName() != "flowmetrics_interface_info" {
			continue
		}
		for _, m := range mf.Metric {
			l := map[string]string{}
			for _, p := range m.Label {
				l[p.GetName()] = p.GetValue()
			}
			got[l["if_index"]] = l
		}
	}
	if a := got["3"]["if_alias"]; a != "B\uFFFDro uplink" {
		t.Errorf("if_alias = %q, want %q", a, "B\uFFFDro uplink")
	}
	if n := got["4"]["if_name"]; n != "x\uFFFD" {
		t.Errorf("if_name = %q, want %q", n, "x\uFFFD")
	}
	for _, name := range []string{"flowmetrics_interface_speed_bits_per_second", "flowmetrics_snmp_polls_total", "flowmetrics_snmp_interfaces"} {
		if !byName[name] {
			t.Errorf("%s missing from the scrape", name)
		}
	}
}
