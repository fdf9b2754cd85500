package dashboards

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// targetLabels are added by Prometheus, not served by the exporter.
var targetLabels = map[string]bool{"job": true, "instance": true, "__name__": true}

// prometheusMetrics are series Prometheus writes for every target (the
// rules use up for FlowmetricsDown), with the labels they carry.
var prometheusMetrics = map[string]map[string]bool{"up": {"job": true, "instance": true}}

// exprSource is one PromQL expression and where it comes from.
type exprSource struct {
	where, expr string
	dashboard   bool
}

// allExprs lists every expression of the dashboards (panels and variables)
// and of the rules file.
func allExprs(t *testing.T) []exprSource {
	t.Helper()
	var out []exprSource
	for _, f := range All() {
		for _, pe := range f.Dashboard.Exprs() {
			out = append(out, exprSource{fmt.Sprintf("%s %q %s", f.Name, pe.Panel.Title, pe.Target.RefID), pe.Target.Expr, true})
		}
		for _, v := range f.Dashboard.Templating.List {
			if sel, _, ok := variableSelector(v.Query); ok {
				out = append(out, exprSource{fmt.Sprintf("%s variable %s", f.Name, v.Name), sel, true})
			}
		}
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, exprSource{fmt.Sprintf("rules %s %s%s", g.Name, r.Record, r.Alert), r.Expr, false})
		}
	}
	return out
}

// TestExpressionsParse parses every expression with the Prometheus PromQL
// parser; it needs no binaries.
func TestExpressionsParse(t *testing.T) {
	n := 0
	for _, x := range allExprs(t) {
		if _, err := parseDashboardExpr(x.expr); err != nil {
			t.Errorf("%s: %q: %v", x.where, x.expr, err)
		}
		n++
	}
	if n < 40 {
		t.Errorf("only %d expressions found", n)
	}
}

// TestMetricNamesServed checks every metric name (and every label matched
// on) against a real scrape of a running flowmetrics fed by softflowd.
// Recording-rule outputs count as served.
func TestMetricNamesServed(t *testing.T) {
	served := realScrape(t)
	records := recordedNames(t)
	used := map[string]bool{}
	for _, x := range allExprs(t) {
		e, err := parseDashboardExpr(x.expr)
		if err != nil {
			t.Errorf("%s: %v", x.where, err)
			continue
		}
		sels, _ := selectors(e)
		for _, vs := range sels {
			name := metricName(vs)
			if name == "" {
				t.Errorf("%s: selector %s has no metric name", x.where, vs)
				continue
			}
			used[name] = true
			if records[name] {
				continue
			}
			labels, ok := served[name]
			if pl, isProm := prometheusMetrics[name]; isProm && !ok {
				labels, ok = pl, true
			}
			if !ok {
				t.Errorf("%s: metric %s is not served by flowmetrics (nor recorded by a rule)", x.where, name)
				continue
			}
			for _, m := range vs.LabelMatchers {
				if !targetLabels[m.Name] && !labels[m.Name] {
					t.Errorf("%s: %s has no label %s", x.where, name, m.Name)
				}
			}
		}
		checkGrouping(t, x.where, e, served, records)
	}
	// Report served families no dashboard or rule looks at, for the record.
	var unused []string
	for name := range served {
		if !used[name] && (strings.HasPrefix(name, "flow_") || strings.HasPrefix(name, "flowmetrics_")) {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	t.Logf("served but unused: %s", strings.Join(unused, ", "))
}

// checkGrouping checks that every label an aggregation groups by exists on
// the raw metrics beneath it.
func checkGrouping(t *testing.T, where string, e parser.Expr, served servedMetrics, records map[string]bool) {
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		agg, ok := n.(*parser.AggregateExpr)
		if !ok || agg.Without {
			return nil
		}
		sels, _ := selectors(agg.Expr)
		for _, vs := range sels {
			name := metricName(vs)
			if records[name] || served[name] == nil {
				continue
			}
			for _, l := range agg.Grouping {
				if !targetLabels[l] && !served[name][l] && l != "le" {
					t.Errorf("%s: groups %s by %s, which it does not have", where, name, l)
				}
			}
		}
		return nil
	})
}
