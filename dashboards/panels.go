package dashboards

import (
	"fmt"
	"strings"
)

// RateInterval is the range every rate() uses: Grafana's $__rate_interval
// is at least four scrape intervals, so rate() always has two samples.
const RateInterval = "$__rate_interval"

// TopN is how many series the top-k panels show.
const TopN = 10

// ---- variables -------------------------------------------------------------

func datasourceVar() *Variable {
	return &Variable{
		Current: map[string]any{}, Description: "Prometheus (or Mimir/Thanos/VictoriaMetrics) datasource holding the flowmetrics metrics.",
		Label: "Data source", Name: "datasource", Options: []any{}, Query: "prometheus", Refresh: 1, Type: "datasource",
	}
}

// queryVar is a label_values variable. all is the value "All" stands for;
// empty makes the variable single-valued without an All option.
func queryVar(name, label, description, query, all string) *Variable {
	v := &Variable{
		Current: map[string]any{}, Datasource: promDS, Definition: query, Description: description,
		Label: label, Name: name, Options: []any{}, Query: query, Refresh: 2, Sort: 1, Type: "query",
	}
	if all != "" {
		v.Multi, v.IncludeAll, v.AllValue = true, true, all
	}
	return v
}

// jobInstanceVars are the job and instance variables every dashboard has
// (dashboard-linter's template-job-rule and template-instance-rule), fed
// from metric.
func jobInstanceVars(metric string) []*Variable {
	return []*Variable{
		queryVar("job", "job", "Scrape job(s) of the flowmetrics exporter or the OpenTelemetry Collector carrying its metrics.",
			fmt.Sprintf("label_values(%s, job)", metric), ".+"),
		queryVar("instance", "instance", "flowmetrics instance(s) (one per shard when exporters are sharded over several instances).",
			fmt.Sprintf(`label_values(%s{job=~"$job"}, instance)`, metric), ".+"),
	}
}

// ---- selectors and queries -------------------------------------------------

// scope is the label matchers every selector of a dashboard carries.
type scope []string

var (
	jobInstance = scope{`job=~"$job"`, `instance=~"$instance"`}
	// allExporters matches the exporter variable when it is multi-valued;
	// its All value is ".*" so the untracked exporter ("") is included.
	allExporters = append(jobInstance[:2:2], `exporter=~"$exporter"`)
	// oneExporter is the drill-down's single exporter.
	oneExporter = append(jobInstance[:2:2], `exporter="$exporter"`)
)

// with returns the scope plus extra matchers.
func (s scope) with(extra ...string) scope {
	return append(append(scope{}, s...), extra...)
}

// sel is metric{matchers}.
func (s scope) sel(metric string) string {
	return metric + "{" + strings.Join(s, ", ") + "}"
}

// rate is rate(metric{matchers}[$__rate_interval]).
func (s scope) rate(metric string) string {
	return "rate(" + s.sel(metric) + "[" + RateInterval + "])"
}

// sumRate is sum by (by) (rate(...)); by may be empty.
func (s scope) sumRate(by, metric string) string {
	return sumBy(by, s.rate(metric))
}

// sumBy wraps expr in sum, grouped by the comma-separated labels in by.
func sumBy(by, expr string) string {
	if by == "" {
		return "sum(" + expr + ")"
	}
	return "sum by (" + by + ") (" + expr + ")"
}

// bits turns a byte rate into a bit rate.
func bits(expr string) string { return expr + " * 8" }

// ifNames adds if_name and if_alias from flowmetrics_interface_info to a
// per-interface expression grouped by (exporter, <ifLabel>), keeping the
// series of interfaces without a name (the "or" arm). ifLabel is in_if or
// out_if; the info metric's if_index is renamed to match it.
//
// The info metric may hold two names for one interface at once: two
// instances that know it differently, or an old name that lingers after an
// SNMP rename (behind the Collector's Prometheus exporter until
// metric_expiration, or through federation). The info side is therefore cut
// to one series per (exporter, if_index) first, the most recently scraped
// name winning, so group_left never fails with "many-to-many matching not
// allowed" (a max by (..., if_name, if_alias) would keep both).
func ifNames(s scope, ifLabel, expr string) string {
	info := fmt.Sprintf(`label_replace(group by (exporter, if_index, if_name, if_alias) (topk by (exporter, if_index) (1, timestamp(%s))), "%s", "$1", "if_index", "(.*)")`,
		s.sel("flowmetrics_interface_info"), ifLabel)
	return fmt.Sprintf("(%s) * on (exporter, %s) group_left (if_name, if_alias) %s or on (exporter, %s) (%s)", expr, ifLabel, info, ifLabel, expr)
}

// ifUtilisation divides a per-interface bit rate grouped by (exporter,
// <ifLabel>) by the interface's speed (flowmetrics_interface_speed_bits_per_second),
// for interfaces whose speed is known.
func ifUtilisation(s scope, ifLabel, bitRate string) string {
	speed := fmt.Sprintf(`label_replace(max by (exporter, if_index) (%s), "%s", "$1", "if_index", "(.*)")`,
		s.sel("flowmetrics_interface_speed_bits_per_second"), ifLabel)
	return fmt.Sprintf("(%s) / on (exporter, %s) %s", bitRate, ifLabel, speed)
}

// topk keeps the n largest series.
func topk(expr string) string { return fmt.Sprintf("topk(%d, %s)", TopN, expr) }

// ---- targets ---------------------------------------------------------------

// q is a range query with a legend.
func q(expr, legend string) *Target {
	return &Target{Datasource: promDS, EditorMode: "code", Expr: expr, LegendFormat: legend, Range: true}
}

// ---- panels ----------------------------------------------------------------

// opt modifies a panel.
type opt func(*Panel)

func f64(v float64) *float64 { return &v }

// stacked stacks the series of a timeseries panel.
func stacked(p *Panel) {
	p.FieldConfig.Defaults.Custom["stacking"] = map[string]any{"group": "A", "mode": "normal"}
	p.FieldConfig.Defaults.Custom["fillOpacity"] = 60
}

// maxOf sets the axis maximum.
func maxOf(v float64) opt { return func(p *Panel) { p.FieldConfig.Defaults.Max = f64(v) } }

// redAbove colours a stat red from v on.
func redAbove(v float64) opt {
	return func(p *Panel) {
		p.FieldConfig.Defaults.Thresholds = &Thresholds{Mode: "absolute", Steps: []Step{{Color: "green"}, {Color: "red", Value: f64(v)}}}
		p.FieldConfig.Defaults.Color = map[string]any{"mode": "thresholds"}
	}
}

// link adds a data link to the panel's fields.
func link(title, url string) opt {
	return func(p *Panel) {
		p.FieldConfig.Defaults.Links = append(p.FieldConfig.Defaults.Links, DataLink{Title: title, URL: url})
	}
}

// drillLink links a field to the drill-down for the exporter and the
// interface found in label ifLabel.
func drillLink(ifLabel string) opt {
	return link("Drill down into this interface", "/d/"+DrilldownUID+"/flowmetrics-interface-drill-down?${datasource:queryparam}&${job:queryparam}&${instance:queryparam}&var-exporter=${__field.labels.exporter}&var-interface=${__field.labels."+ifLabel+"}&${__url_time_range}")
}

func newPanel(kind, title, description, unit string, targets []*Target, opts []opt) *Panel {
	p := &Panel{
		Datasource: promDS, Description: description, Title: title, Type: kind, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: FieldDefaults{Unit: unit}, Overrides: []any{}},
	}
	for i, t := range targets {
		t.RefID = string(rune('A' + i))
	}
	switch kind {
	case "timeseries":
		p.FieldConfig.Defaults.Custom = map[string]any{"drawStyle": "line", "fillOpacity": 10, "lineWidth": 1, "showPoints": "never", "spanNulls": false}
		p.FieldConfig.Defaults.Min = f64(0)
		p.Options = map[string]any{
			"legend":  map[string]any{"calcs": []string{"mean", "max", "lastNotNull"}, "displayMode": "table", "placement": "bottom", "showLegend": true, "sortBy": "Mean", "sortDesc": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		}
	case "stat":
		p.Options = map[string]any{
			"colorMode": "value", "graphMode": "area", "justifyMode": "auto", "orientation": "auto", "textMode": "auto",
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
		}
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// timeseries is a graph panel.
func timeseries(title, description, unit string, targets []*Target, opts ...opt) *Panel {
	return newPanel("timeseries", title, description, unit, targets, opts)
}

// stat is a single-value panel.
func stat(title, description, unit string, t *Target, opts ...opt) *Panel {
	return newPanel("stat", title, description, unit, []*Target{t}, opts)
}

// ts is the common case: one query, one legend.
func ts(title, description, unit, expr, legend string, opts ...opt) *Panel {
	return timeseries(title, description, unit, []*Target{q(expr, legend)}, opts...)
}

// ---- layout ----------------------------------------------------------------

// builder lays panels out left to right, top to bottom, and numbers them.
type builder struct {
	d          *Dashboard
	x, y, rowH int
}

func newDashboard(uid, title, description string, vars ...*Variable) *builder {
	d := &Dashboard{
		Annotations: Annotations{List: []Annotation{{
			BuiltIn: 1, Datasource: map[string]any{"type": "grafana", "uid": "-- Grafana --"}, Enable: true, Hide: true,
			IconColor: "rgba(0, 211, 255, 1)", Name: "Annotations & Alerts", Type: "dashboard",
		}}},
		Description: description, Editable: false, GraphTooltip: 1,
		Links: []Link{{
			AsDropdown: true, Icon: "external link", IncludeVars: true, KeepTime: true, Tags: []string{Tag},
			Title: "flowmetrics dashboards", Tooltip: "The other flowmetrics dashboards, same time range and variables", Type: "dashboards",
		}},
		Panels: []*Panel{}, Refresh: "1m", SchemaVersion: SchemaVersion, Tags: []string{Tag},
		Templating: Templating{List: append([]*Variable{datasourceVar()}, vars...)},
		Time:       TimeRange{From: "now-6h", To: "now"}, Timezone: "", Title: title, UID: uid, Version: 1,
	}
	return &builder{d: d}
}

// row starts a new row.
func (b *builder) row(title string) {
	b.newline()
	collapsed := false
	b.d.Panels = append(b.d.Panels, &Panel{Collapsed: &collapsed, GridPos: GridPos{H: 1, W: 24, X: 0, Y: b.y}, ID: len(b.d.Panels) + 1, Title: title, Type: "row"})
	b.y++
}

func (b *builder) newline() {
	if b.x > 0 {
		b.x, b.y, b.rowH = 0, b.y+b.rowH, 0
	}
}

// add places panels of width w and height h.
func (b *builder) add(w, h int, ps ...*Panel) {
	for _, p := range ps {
		if b.x+w > 24 {
			b.newline()
		}
		p.GridPos = GridPos{H: h, W: w, X: b.x, Y: b.y}
		p.ID = len(b.d.Panels) + 1
		b.d.Panels = append(b.d.Panels, p)
		b.x += w
		b.rowH = max(b.rowH, h)
	}
}

func (b *builder) done() *Dashboard { return b.d }
