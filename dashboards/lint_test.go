package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// The checks below re-implement the main rules of Grafana's
// dashboard-linter (which cannot be installed here) on the committed JSON.

// committed reads the committed dashboards back from JSON, so the checks
// see what Grafana imports.
func committed(t *testing.T) map[string]*Dashboard {
	t.Helper()
	out := map[string]*Dashboard{}
	for _, f := range All() {
		b, err := os.ReadFile(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		var d Dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		out[f.Name] = &d
	}
	return out
}

func isDatasourceVar(ds *DatasourceRef) bool {
	return ds != nil && ds.Type == "prometheus" && (ds.UID == "${datasource}" || ds.UID == "$datasource")
}

// template-datasource-rule, template-job-rule, template-instance-rule,
// template-label-promql-rule, template-on-time-change-reload-rule.
func TestLintTemplates(t *testing.T) {
	for name, d := range committed(t) {
		vars := map[string]*Variable{}
		for _, v := range d.Templating.List {
			if vars[v.Name] != nil {
				t.Errorf("%s: variable %s twice", name, v.Name)
			}
			vars[v.Name] = v
		}
		ds := vars["datasource"]
		if ds == nil || ds.Type != "datasource" || ds.Query != "prometheus" {
			t.Errorf("%s: needs a datasource variable named datasource of type prometheus", name)
		}
		for _, want := range []string{"job", "instance"} {
			v := vars[want]
			switch {
			case v == nil:
				t.Errorf("%s: no %s variable", name, want)
			case v.Type != "query" || v.Label != want || !isDatasourceVar(v.Datasource) || !v.Multi || !v.IncludeAll || v.AllValue != ".+":
				t.Errorf("%s: %s variable must be a multi-select query variable labelled %s on $datasource with allValue .+: %+v", name, want, want, v)
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			if !isDatasourceVar(v.Datasource) {
				t.Errorf("%s: variable %s does not use $datasource", name, v.Name)
			}
			if v.Refresh != 2 {
				t.Errorf("%s: variable %s should refresh on time range change (2), has %d", name, v.Name, v.Refresh)
			}
			if v.Description == "" {
				t.Errorf("%s: variable %s has no description", name, v.Name)
			}
			sel, _, ok := variableSelector(v.Query)
			if !ok {
				t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", name, v.Name, v.Query)
				continue
			}
			if _, err := parseDashboardExpr(sel); err != nil {
				t.Errorf("%s: variable %s: %q: %v", name, v.Name, sel, err)
			}
			if v.Definition != v.Query {
				t.Errorf("%s: variable %s: definition %q differs from query %q", name, v.Name, v.Definition, v.Query)
			}
		}
		// Every variable other than datasource must be used somewhere.
		raw, _ := json.Marshal(d.Panels)
		rawVars, _ := json.Marshal(d.Templating.List)
		for _, v := range d.Templating.List {
			ref := regexp.MustCompile(`\$\{?` + v.Name + `\b`)
			if !ref.Match(raw) && !ref.Match(rawVars) {
				t.Errorf("%s: variable %s is never used", name, v.Name)
			}
		}
	}
}

// panel-datasource-rule, panel-units-rule, panel-title-description-rule,
// target-promql-rule, target-rate-interval-rule, target-job-rule,
// target-instance-rule, target-counter-agg-rule.
func TestLintPanels(t *testing.T) {
	for name, d := range committed(t) {
		if d.SchemaVersion < 39 || d.UID == "" || d.Title == "" || d.Description == "" || d.Editable {
			t.Errorf("%s: schemaVersion >= 39, uid, title, description and editable=false wanted", name)
		}
		if len(d.Links) == 0 || !contains(d.Tags, Tag) {
			t.Errorf("%s: wants the %q tag and a link to the other dashboards", name, Tag)
		}
		ids := map[int]bool{}
		for _, p := range d.AllPanels() {
			where := fmt.Sprintf("%s: panel %d %q", name, p.ID, p.Title)
			if ids[p.ID] {
				t.Errorf("%s: duplicate id", where)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: bad gridPos %+v", where, p.GridPos)
			}
			if p.Type == "row" {
				continue
			}
			if p.Title == "" || p.Description == "" {
				t.Errorf("%s: needs a title and a description", where)
			}
			if p.FieldConfig == nil || p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: has no unit", where)
			}
			if !isDatasourceVar(p.Datasource) {
				t.Errorf("%s: does not use $datasource", where)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: has no query", where)
			}
			for _, tg := range p.Targets {
				lintTarget(t, where+" "+tg.RefID, tg)
			}
			for _, l := range p.FieldConfig.Defaults.Links {
				if !strings.Contains(l.URL, "/d/"+DrilldownUID+"/") {
					t.Errorf("%s: link %q points nowhere known", where, l.URL)
				}
			}
		}
	}
}

func lintTarget(t *testing.T, where string, tg *Target) {
	t.Helper()
	if !isDatasourceVar(tg.Datasource) {
		t.Errorf("%s: target does not use $datasource", where)
	}
	if tg.RefID == "" || tg.Expr == "" {
		t.Errorf("%s: target needs refId and expr", where)
	}
	e, err := parseDashboardExpr(tg.Expr)
	if err != nil {
		t.Errorf("%s: %q: %v", where, tg.Expr, err)
		return
	}
	// Every range is $__rate_interval, inside rate/irate/increase.
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		switch n := n.(type) {
		case *parser.MatrixSelector:
			if got := n.Range.String(); got != rateSentinel {
				t.Errorf("%s: range [%s] instead of [$__rate_interval] in %q", where, got, tg.Expr)
			}
		case *parser.Call:
			switch n.Func.Name {
			case "rate", "irate", "increase":
			default:
				for _, a := range n.Args {
					if _, ok := a.(*parser.MatrixSelector); ok {
						t.Errorf("%s: %s over a range; use rate() on counters", where, n.Func.Name)
					}
				}
			}
		}
		return nil
	})
	sels, paths := selectors(e)
	for i, vs := range sels {
		has := map[string]string{}
		for _, m := range vs.LabelMatchers {
			has[m.Name] = m.Type.String() + m.Value
		}
		if has["job"] != `=~$job` {
			t.Errorf("%s: selector %s lacks job=~\"$job\"", where, vs)
		}
		if has["instance"] != `=~$instance` {
			t.Errorf("%s: selector %s lacks instance=~\"$instance\"", where, vs)
		}
		name := metricName(vs)
		if strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") {
			inRate := false
			for _, n := range paths[i] {
				if c, ok := n.(*parser.Call); ok && (c.Func.Name == "rate" || c.Func.Name == "increase" || c.Func.Name == "irate") {
					inRate = true
				}
			}
			if !inRate {
				t.Errorf("%s: counter %s used without rate()", where, name)
			}
		}
	}
	// Bit rates: a bytes counter shown in bps is multiplied by 8.
	if strings.Contains(tg.Expr, "_bytes_total") && !strings.HasSuffix(tg.Expr, "* 8") && !strings.Contains(tg.Expr, "/") {
		t.Errorf("%s: bytes shown without * 8: %q", where, tg.Expr)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Units: every bytes*8 panel is bps, every packets panel pps.
func TestLintUnits(t *testing.T) {
	for name, d := range committed(t) {
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				switch {
				case strings.Contains(tg.Expr, "_bytes_total") && strings.HasSuffix(tg.Expr, "* 8") && p.FieldConfig.Defaults.Unit != "bps":
					t.Errorf("%s: %q shows bits per second with unit %q", name, p.Title, p.FieldConfig.Defaults.Unit)
				case strings.Contains(tg.Expr, "flow_") && strings.Contains(tg.Expr, "_packets_total") && p.FieldConfig.Defaults.Unit != "pps":
					t.Errorf("%s: %q shows packets per second with unit %q", name, p.Title, p.FieldConfig.Defaults.Unit)
				}
			}
		}
	}
}

// TestSamplingSourcesDescribed: the health dashboard's "Sampling rate in
// force" panel, which is legended by source, names every source value
// flowmetrics_sampling_rate carries (flow.RateSource), so that on-call can
// read the legend.
func TestSamplingSourcesDescribed(t *testing.T) {
	var desc string
	for _, p := range Health().Panels {
		if p.Title == "Sampling rate in force" {
			desc = p.Description
		}
	}
	if desc == "" {
		t.Fatal(`no "Sampling rate in force" panel on the health dashboard`)
	}
	for s := flow.RateUnknown; s <= flow.RateOverride; s++ {
		if !strings.Contains(desc, s.String()) {
			t.Errorf("description %q does not name source %q", desc, s.String())
		}
	}
}
