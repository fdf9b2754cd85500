package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestTelemetryPathRefused: a --web.telemetry-path that cannot be served
// (no leading slash, empty, an endpoint flowmetrics already has, a space
// that net/http reads as "METHOD path") made the process panic after its
// sockets were bound, exit status 2 and a goroutine dump, while
// --config.check called the command line valid. Both must refuse it,
// naming the flag: --config.check with 1, a start with exitConfig.
func TestTelemetryPathRefused(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"metrics", `--web.telemetry-path: \"metrics\" does not start with /`},
		{"", `--web.telemetry-path: \"\" does not start with /`},
		{"/-/healthy", `--web.telemetry-path: \"/-/healthy\" is already an endpoint of flowmetrics`},
		{"/-/reload", `--web.telemetry-path: \"/-/reload\" is already an endpoint of flowmetrics`},
		{"GET /metrics", `--web.telemetry-path: \"GET /metrics\" does not start with /`},
		{"/a b", `--web.telemetry-path: \"/a b\" has a space or control character`},
		{"/metrics?x=1", `--web.telemetry-path: \"/metrics?x=1\" has a query or fragment`},
	} {
		for _, mode := range []struct {
			args []string
			code int
		}{
			{[]string{"--config.check"}, 1},
			{[]string{"--flow.listen-address=127.0.0.1:0", "--web.listen-address=127.0.0.1:0"}, exitConfig},
		} {
			args := append([]string{"--web.telemetry-path=" + tc.path}, mode.args...)
			// A path it does not refuse is served: runBinary stops it.
			out, code := runBinary(t, args...)
			if code != mode.code || !strings.Contains(out, tc.want) {
				t.Errorf("flowmetrics %q: exit %d, want %d and %s; output:\n%s", args, code, mode.code, tc.want, out)
			}
			if strings.Contains(out, "panic") {
				t.Errorf("flowmetrics %q panicked:\n%s", args, out)
			}
		}
	}
}

// TestTelemetryPathServedExactly: the metrics are served at the path given
// and nowhere else. Handed to net/http as a pattern, "/{x}" was a wildcard
// that served the metrics at any one-segment path (/ready, /favicon.ico)
// and "/" at every path the other endpoints do not claim.
func TestTelemetryPathServedExactly(t *testing.T) {
	for _, tc := range []struct {
		path     string
		request  string
		status   int
		metrics  bool
		landing  bool
		endpoint string
	}{
		{"/metrics", "/metrics", 200, true, false, ""},
		{"/metrics", "/metrics/x", 404, false, false, ""},
		{"/metrics", "/", 200, false, true, ""},
		{"/{x}", "/%7Bx%7D", 200, true, false, ""},
		{"/{x}", "/favicon.ico", 404, false, false, ""},
		{"/", "/", 200, true, false, ""},
		{"/", "/favicon.ico", 404, false, false, ""},
		{"/", "/-/healthy", 200, false, false, "Healthy"},
		{"/prom/metrics", "/prom/metrics", 200, true, false, ""},
	} {
		t.Run(tc.path+" "+tc.request, func(t *testing.T) {
			in := start(t, "--web.telemetry-path="+tc.path)
			resp, err := http.Get(in.web + tc.request)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("GET %s: status %d, want %d", tc.request, resp.StatusCode, tc.status)
			}
			if got := strings.Contains(string(body), "\nflowmetrics_config_last_reload_successful 1\n"); got != tc.metrics {
				t.Errorf("GET %s: metrics served = %v, want %v; body:\n%.300s", tc.request, got, tc.metrics, body)
			}
			if got := strings.Contains(string(body), "<title>flowmetrics</title>"); got != tc.landing {
				t.Errorf("GET %s: landing page = %v, want %v", tc.request, got, tc.landing)
			}
			if tc.endpoint != "" && strings.TrimSpace(string(body)) != tc.endpoint {
				t.Errorf("GET %s: %q, want %q", tc.request, body, tc.endpoint)
			}
		})
	}
}

// TestMaxRequestsRefusedBelowZero: a negative --web.max-requests is an
// invalid flag, named, for --config.check (1) and a start (exitConfig).
func TestMaxRequestsRefusedBelowZero(t *testing.T) {
	const want = "--web.max-requests: must be 0 (no bound) or more, got -1"
	for _, mode := range []struct {
		args []string
		code int
	}{
		{[]string{"--config.check"}, 1},
		{[]string{"--flow.listen-address=127.0.0.1:0", "--web.listen-address=127.0.0.1:0"}, exitConfig},
	} {
		args := append([]string{"--web.max-requests=-1"}, mode.args...)
		out, code := runBinary(t, args...)
		if code != mode.code || !strings.Contains(out, want) {
			t.Errorf("flowmetrics %q: exit %d, want %d and %s; output:\n%s", args, code, mode.code, want, out)
		}
	}
}
