package dashboards

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runbookBase is the documented base of every runbook_url.
const runbookBase = "https://github.com/flowmetrics/flowmetrics/blob/main/docs/runbooks.md#"

// recordNameRE is level:metric:operations.
var recordNameRE = regexp.MustCompile(`^[a-z_]+:[a-z_]+:[a-z0-9_]+$`)

// TestRulesConventions checks the rules file with rulefmt and the
// monitoring-mixin conventions: severity, summary, description with label
// values, a runbook_url whose anchor exists in docs/runbooks.md.
func TestRulesConventions(t *testing.T) {
	runbooks, err := os.ReadFile(filepath.Join(repoRoot, "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(runbooks), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			anchors[githubAnchor(h)] = true
		}
	}
	alerts, records := 0, 0
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records++
				if !recordNameRE.MatchString(r.Record) {
					t.Errorf("record %s: not level:metric:operations", r.Record)
				}
				continue
			}
			alerts++
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("alert %s: severity %q", r.Alert, r.Labels["severity"])
			}
			if !strings.HasPrefix(r.Alert, "Flowmetrics") {
				t.Errorf("alert %s: name should start with Flowmetrics", r.Alert)
			}
			if r.Annotations["summary"] == "" || !strings.Contains(r.Annotations["description"], "$labels.") {
				t.Errorf("alert %s: needs a summary and a description quoting label values", r.Alert)
			}
			url := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, runbookBase)
			if !ok || anchor != strings.ToLower(r.Alert) || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q must be %s%s with that heading in docs/runbooks.md", r.Alert, url, runbookBase, strings.ToLower(r.Alert))
			}
		}
	}
	if alerts < 10 || records < 5 {
		t.Errorf("only %d alerts and %d recording rules", alerts, records)
	}
}

// githubAnchor is the anchor GitHub makes of a heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestPromtool runs `promtool check rules` and `promtool test rules` on the
// rules and their unit tests (alerts/tests/*.yml).
func TestPromtool(t *testing.T) {
	needBinaries(t, "promtool")
	out, err := exec.Command("promtool", "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, _ := filepath.Glob(filepath.Join(repoRoot, "alerts", "tests", "*.yml"))
	if len(tests) == 0 {
		t.Fatal("no alerts/tests/*.yml")
	}
	out, err = exec.Command("promtool", append([]string{"test", "rules"}, tests...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestEveryAlertUnitTested makes sure each alert appears in a promtool test
// with an expected firing.
func TestEveryAlertUnitTested(t *testing.T) {
	tests, _ := filepath.Glob(filepath.Join(repoRoot, "alerts", "tests", "*.yml"))
	var all strings.Builder
	for _, f := range tests {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			quiet := regexp.MustCompile(`alertname: ` + r.Alert + `\s+exp_alerts: \[\]`)
			firing := regexp.MustCompile(`alertname: ` + r.Alert + `\s+exp_alerts:\s+- exp_labels`)
			if !quiet.MatchString(all.String()) || !firing.MatchString(all.String()) {
				t.Errorf("alert %s needs a promtool test where it fires and one where it stays quiet", r.Alert)
			}
		}
	}
}

// notOnDashboards are metrics alerts read that no dashboard shows, each
// with the reason; their runbooks query them in Prometheus.
var notOnDashboards = map[string]string{
	"up":                           "Prometheus' own scrape health (FlowmetricsDown)",
	"flowmetrics_snmp_polls_total": "SNMP enrichment state, only with enrich.snmp",
	"flowmetrics_geoip_database_last_load_successful": "GeoIP enrichment state, only with enrich.geoip",
	"flowmetrics_config_last_reload_successful":       "configuration state, one value per instance",
}

// TestAlertMetricsOnDashboards checks that every metric an alert reads
// (through the recording rules it uses) is shown by a dashboard panel, so
// the on-call engineer paged by it finds the figure in Grafana, as the
// runbooks promise; notOnDashboards lists the exceptions.
func TestAlertMetricsOnDashboards(t *testing.T) {
	shown := map[string]bool{}
	for _, f := range All() {
		for _, pe := range f.Dashboard.Exprs() {
			for _, n := range exprMetrics(t, pe.Target.Expr) {
				shown[n] = true
			}
		}
	}
	recorded := map[string]string{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] += " or " + r.Expr
			}
		}
	}
	var raw func(name string, seen map[string]bool) []string
	raw = func(name string, seen map[string]bool) []string {
		expr, ok := recorded[name]
		if !ok {
			return []string{name}
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		var out []string
		for _, n := range exprMetrics(t, strings.TrimPrefix(expr, " or ")) {
			out = append(out, raw(n, seen)...)
		}
		return out
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			for _, n := range exprMetrics(t, r.Expr) {
				for _, m := range raw(n, map[string]bool{}) {
					if !shown[m] && notOnDashboards[m] == "" {
						t.Errorf("alert %s reads %s, which no dashboard panel shows", r.Alert, m)
					}
				}
			}
		}
	}
}

// exprMetrics lists the metric names an expression selects.
func exprMetrics(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parseDashboardExpr(expr)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	sels, _ := selectors(e)
	var out []string
	for _, vs := range sels {
		out = append(out, metricName(vs))
	}
	return out
}

// reasonMatchers lists the distinct reason matchers of every
// flowmetrics_decode_errors_total selector in expr, as strings.
func reasonMatchers(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parseDashboardExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	var out []string
	vss, _ := selectors(e)
	for _, vs := range vss {
		if metricName(vs) != "flowmetrics_decode_errors_total" {
			continue
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "reason" && !slices.Contains(out, m.String()) {
				out = append(out, m.String())
			}
		}
	}
	return out
}

// TestDecodeErrorRatioPanelMatchesRules: the health dashboard's "Decode
// error ratio" shows what FlowmetricsDecodeErrorRatioHigh judges: errors per
// datagram without the reasons that do not count datagrams (template misses
// count data sets, implausible values records), and implausible values as
// a share of records.
func TestDecodeErrorRatioPanelMatchesRules(t *testing.T) {
	rules := map[string]string{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			rules[r.Record] = r.Expr
		}
	}
	want := [][]string{
		reasonMatchers(t, rules["exporter:flowmetrics_decode_errors:ratio_rate5m"]),
		reasonMatchers(t, rules["exporter:flowmetrics_implausible_records:ratio_rate5m"]),
	}
	if got := want[0]; len(got) != 1 || got[0] != `reason!~"template_missing|implausible_value"` {
		t.Errorf("decode error ratio rule selects %v, want reason!~\"template_missing|implausible_value\"", got)
	}
	var panel *Panel
	for _, p := range Health().Panels {
		if p.Title == "Decode error ratio" {
			panel = p
		}
	}
	if panel == nil {
		t.Fatal(`no "Decode error ratio" panel on the health dashboard`)
	}
	if len(panel.Targets) != len(want) {
		t.Fatalf("panel has %d targets, want %d (datagram ratio, implausible record ratio)", len(panel.Targets), len(want))
	}
	for i, tg := range panel.Targets {
		got := reasonMatchers(t, tg.Expr)
		if strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("target %s selects reasons %v, its rule %v", tg.RefID, got, want[i])
		}
	}
}

// TestDecodeErrorRatioPanelAllRecordsDropped: an exporter whose every
// record is dropped as implausible has no flowmetrics_records_total (it is
// served once an exporter has records), and the alert fires for it at 100%
// (exporter:flowmetrics_implausible_records:ratio_rate5m, "or ... * 0").
// The panel's implausible-record ratio must show it too, not leave the
// worst exporter off the graph; an exporter with records keeps its share.
func TestDecodeErrorRatioPanelAllRecordsDropped(t *testing.T) {
	needBinaries(t, "promtool")
	var expr string
	for _, p := range Health().Panels {
		if p.Title == "Decode error ratio" {
			for _, tg := range p.Targets {
				if strings.Contains(tg.LegendFormat, "implausible") {
					expr = tg.Expr
				}
			}
		}
	}
	if expr == "" {
		t.Fatal(`no implausible-record target in the "Decode error ratio" panel`)
	}
	expr = substitute(expr, "5m", map[string]string{"job": ".*", "instance": ".*", "exporter": ".*"})
	test := `rule_files: []
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'flowmetrics_datagrams_total{job="flowmetrics", instance="fm:9155", exporter="192.0.2.8", protocol="ipfix"}'
        values: '0+10x40'
      - series: 'flowmetrics_records_total{job="flowmetrics", instance="fm:9155", exporter="192.0.2.8", protocol="ipfix"}'
        values: '0+270x40'
      - series: 'flowmetrics_decode_errors_total{job="flowmetrics", instance="fm:9155", exporter="192.0.2.8", reason="implausible_value"}'
        values: '0+30x40'
      - series: 'flowmetrics_datagrams_total{job="flowmetrics", instance="fm:9155", exporter="192.0.2.9", protocol="ipfix"}'
        values: '0+10x40'
      - series: 'flowmetrics_decode_errors_total{job="flowmetrics", instance="fm:9155", exporter="192.0.2.9", reason="implausible_value"}'
        values: '0+30x40'
    promql_expr_test:
      - expr: '` + strings.ReplaceAll(expr, "'", "''") + `'
        eval_time: 20m
        exp_samples:
          - labels: '{exporter="192.0.2.8"}'
            value: 0.1
          - labels: '{exporter="192.0.2.9"}'
            value: 1
`
	path := filepath.Join(t.TempDir(), "panel_test.yml")
	if err := os.WriteFile(path, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "test", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("panel query %s: %v\n%s", expr, err, out)
	}
}
