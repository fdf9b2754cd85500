// Package dashboards defines flowmetrics' Grafana dashboards as Go values.
// `go generate` writes them as the committed JSON files beside this file;
// the tests hold the JSON equal to the generator's output, parse every
// PromQL expression, and check the metric names against a real scrape.
package dashboards

//go:generate go run ./cmd/gen -dir .

import (
	"bytes"
	"encoding/json"
)

// SchemaVersion is the Grafana dashboard schema the JSON follows.
const SchemaVersion = 39

// Tag is on every flowmetrics dashboard; the dashboard links use it.
const Tag = "flowmetrics"

// DatasourceRef points a panel or target at the datasource variable.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// promDS is the reference every panel, target and query variable uses.
var promDS = &DatasourceRef{Type: "prometheus", UID: "${datasource}"}

// Dashboard is the subset of Grafana's dashboard model flowmetrics uses.
type Dashboard struct {
	Annotations   Annotations `json:"annotations"`
	Description   string      `json:"description"`
	Editable      bool        `json:"editable"`
	GraphTooltip  int         `json:"graphTooltip"`
	Links         []Link      `json:"links"`
	Panels        []*Panel    `json:"panels"`
	Refresh       string      `json:"refresh"`
	SchemaVersion int         `json:"schemaVersion"`
	Tags          []string    `json:"tags"`
	Templating    Templating  `json:"templating"`
	Time          TimeRange   `json:"time"`
	Timepicker    struct{}    `json:"timepicker"`
	Timezone      string      `json:"timezone"`
	Title         string      `json:"title"`
	UID           string      `json:"uid"`
	Version       int         `json:"version"`
}

// Annotations holds the built-in annotation list.
type Annotations struct {
	List []Annotation `json:"list"`
}

// Annotation is one annotation query.
type Annotation struct {
	BuiltIn    int            `json:"builtIn"`
	Datasource map[string]any `json:"datasource"`
	Enable     bool           `json:"enable"`
	Hide       bool           `json:"hide"`
	IconColor  string         `json:"iconColor"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
}

// Link is a dashboard-level link.
type Link struct {
	AsDropdown  bool     `json:"asDropdown"`
	Icon        string   `json:"icon"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	Tags        []string `json:"tags"`
	TargetBlank bool     `json:"targetBlank"`
	Title       string   `json:"title"`
	Tooltip     string   `json:"tooltip"`
	Type        string   `json:"type"`
	URL         string   `json:"url"`
}

// TimeRange is the default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []*Variable `json:"list"`
}

// Variable is a template variable (datasource or query).
type Variable struct {
	AllValue    string         `json:"allValue,omitempty"`
	Current     map[string]any `json:"current"`
	Datasource  *DatasourceRef `json:"datasource,omitempty"`
	Definition  string         `json:"definition,omitempty"`
	Description string         `json:"description"`
	Hide        int            `json:"hide"`
	IncludeAll  bool           `json:"includeAll"`
	Label       string         `json:"label"`
	Multi       bool           `json:"multi"`
	Name        string         `json:"name"`
	Options     []any          `json:"options"`
	Query       string         `json:"query"`
	Refresh     int            `json:"refresh"`
	Regex       string         `json:"regex"`
	Sort        int            `json:"sort"`
	Type        string         `json:"type"`
}

// Panel is a Grafana panel (row, timeseries, stat, table, bargauge).
type Panel struct {
	Collapsed   *bool          `json:"collapsed,omitempty"`
	Datasource  *DatasourceRef `json:"datasource,omitempty"`
	Description string         `json:"description,omitempty"`
	FieldConfig *FieldConfig   `json:"fieldConfig,omitempty"`
	GridPos     GridPos        `json:"gridPos"`
	ID          int            `json:"id"`
	Options     map[string]any `json:"options,omitempty"`
	Panels      []*Panel       `json:"panels,omitempty"`
	Targets     []*Target      `json:"targets,omitempty"`
	Title       string         `json:"title"`
	Type        string         `json:"type"`
}

// FieldConfig sets units, limits and links of a panel's fields.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

// FieldDefaults are the per-field defaults of a panel.
type FieldDefaults struct {
	Color      map[string]any `json:"color,omitempty"`
	Custom     map[string]any `json:"custom,omitempty"`
	Decimals   *int           `json:"decimals,omitempty"`
	Links      []DataLink     `json:"links,omitempty"`
	Max        *float64       `json:"max,omitempty"`
	Min        *float64       `json:"min,omitempty"`
	Thresholds *Thresholds    `json:"thresholds,omitempty"`
	Unit       string         `json:"unit"`
}

// DataLink is a link on a field value (for example to the drill-down).
type DataLink struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Thresholds colour a stat or gauge.
type Thresholds struct {
	Mode  string `json:"mode"`
	Steps []Step `json:"steps"`
}

// Step is one threshold step; a nil Value is the base.
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one Prometheus query of a panel.
type Target struct {
	Datasource   *DatasourceRef `json:"datasource"`
	EditorMode   string         `json:"editorMode"`
	Expr         string         `json:"expr"`
	Format       string         `json:"format,omitempty"`
	Instant      bool           `json:"instant"`
	LegendFormat string         `json:"legendFormat"`
	Range        bool           `json:"range"`
	RefID        string         `json:"refId"`
}

// JSON renders the dashboard the way the committed files are written:
// two-space indentation, no HTML escaping, trailing newline.
func (d *Dashboard) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Exprs returns every PromQL expression of the dashboard's panels, keyed
// "panel title/refId", in panel order.
func (d *Dashboard) Exprs() []PanelExpr {
	var out []PanelExpr
	var walk func(ps []*Panel)
	walk = func(ps []*Panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, PanelExpr{Panel: p, Target: t})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// PanelExpr is one target with its panel.
type PanelExpr struct {
	Panel  *Panel
	Target *Target
}

// AllPanels returns every panel, rows included, nested ones flattened.
func (d *Dashboard) AllPanels() []*Panel {
	var out []*Panel
	var walk func(ps []*Panel)
	walk = func(ps []*Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}
