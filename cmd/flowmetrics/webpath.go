package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"
)

// reservedPaths are the endpoints flowmetrics serves beside the metrics.
var reservedPaths = []string{"/-/healthy", "/-/ready", "/-/reload"}

// validateTelemetryPath checks --web.telemetry-path: a path as a request
// carries it, not one the endpoints already use. The metrics are served at
// that path exactly (see withMetrics), so nothing in it is read as
// net/http pattern syntax ("GET /m", "/{x}").
func validateTelemetryPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("--web.telemetry-path: %q does not start with /", p)
	case strings.ContainsAny(p, "?#"):
		return fmt.Errorf("--web.telemetry-path: %q has a query or fragment; give the path alone", p)
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("--web.telemetry-path: %q has a space or control character", p)
	case slices.Contains(reservedPaths, p):
		return fmt.Errorf("--web.telemetry-path: %q is already an endpoint of flowmetrics (%s)", p, strings.Join(reservedPaths, ", "))
	}
	return nil
}

// withMetrics serves metrics at path exactly and everything else through
// mux.
func withMetrics(path string, metrics, mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			metrics.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
