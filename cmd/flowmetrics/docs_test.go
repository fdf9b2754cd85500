package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
)

// TestREADMEListsMetricsAndFlags keeps the README's reference true in one
// direction: every metric a running flowmetrics serves (with traffic of
// every protocol and a static interface table) and every command-line flag
// must be named in README.md.
func TestREADMEListsMetricsAndFlags(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)

	cfg := filepath.Join(t.TempDir(), "flowmetrics.yml")
	if err := os.WriteFile(cfg, []byte("enrich:\n  interfaces:\n    - {exporter: 127.0.0.1, if_index: 1, name: eth0, speed_bps: 1000000000}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, "--config.file="+cfg)
	target := netip.MustParseAddrPort(in.flowAddr)
	for _, p := range []flowgen.Protocol{flowgen.V5, flowgen.V9, flowgen.IPFIX, flowgen.SFlow} {
		// Paced, so that a small default socket buffer loses nothing.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := flowgen.Send(ctx, flowgen.SendConfig{Config: flowgen.Config{Protocol: p, SamplingRate: 10, Seed: 1},
			Target: target, Exporters: 1, Records: 2000, Rate: 50000})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	mfs := in.settle(t, 1)
	if got := len(mfs.By("flowmetrics_datagrams_total", "protocol")); got != 4 {
		t.Fatalf("datagrams of %d protocols arrived, want 4", got)
	}

	var missing []string
	for name := range mfs {
		if !strings.HasPrefix(name, "flow") || documented(readme, name) {
			continue
		}
		missing = append(missing, name)
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("served but not in README.md: %v", missing)
	}

	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	flags := regexp.MustCompile(`--(?:\[no-\])?([a-z][a-z.-]+)`).FindAllStringSubmatch(string(out), -1)
	if len(flags) < 8 {
		t.Fatalf("found %d flags in --help:\n%s", len(flags), out)
	}
	for _, f := range flags {
		if strings.HasPrefix(f[1], "help") || f[1] == "version" { // kingpin's own
			continue
		}
		if !strings.Contains(readme, "`--"+f[1]+"`") && !strings.Contains(readme, "`--"+f[1]+"=") {
			t.Errorf("flag --%s is not in README.md", f[1])
		}
	}
}

// documented reports whether README names metric name: in full, as a
// traffic family (`flow_<family>_...`), or in the table's shorthand
// "`flow_x_bytes_total`, `_packets_total`".
func documented(readme, name string) bool {
	if strings.Contains(readme, "`"+name+"`") {
		return true
	}
	for _, s := range []string{"_bytes_total", "_packets_total", "_flows_total"} {
		base, ok := strings.CutSuffix(name, s)
		if !ok || !strings.HasPrefix(name, "flow_") {
			continue
		}
		if base != "flow_exporter" {
			return strings.Contains(readme, "`flow_<family>"+s+"`") || strings.Contains(readme, "`"+s+"`")
		}
		return strings.Contains(readme, "`"+base+"_bytes_total`") && strings.Contains(readme, "`"+s+"`")
	}
	return false
}
