package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// e2eRateInterval replaces $__rate_interval: Grafana makes it at least four
// scrape intervals; the test scrapes every second.
const e2eRateInterval = "10s"

// promClient talks to a Prometheus server's HTTP API.
type promClient struct{ base string }

type promResult struct {
	Status    string `json:"status"`
	Error     string `json:"error"`
	ErrorType string `json:"errorType"`
	Data      struct {
		ResultType string `json:"resultType"`
		Result     json.RawMessage
	} `json:"data"`
}

type vecSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (v vecSample) float() float64 {
	s, _ := v.Value[1].(string)
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func (c promClient) get(path string, params url.Values, into any) error {
	resp, err := http.Get(c.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r promResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	if r.Data.ResultType == "scalar" {
		var s [2]any
		if err := json.Unmarshal(r.Data.Result, &s); err != nil {
			return err
		}
		return json.Unmarshal(fmt.Appendf(nil, `[{"metric":{},"value":[%v,%q]}]`, s[0], s[1]), into)
	}
	if r.Data.ResultType == "" { // label values: data is the list itself
		return fmt.Errorf("unexpected answer")
	}
	return json.Unmarshal(r.Data.Result, into)
}

// query runs an instant query and returns the vector.
func (c promClient) query(expr string) ([]vecSample, error) {
	var out []vecSample
	err := c.get("/api/v1/query", url.Values{"query": {expr}}, &out)
	return out, err
}

// labelValues lists a label's values among the series matching selector.
func (c promClient) labelValues(label, selector string) ([]string, error) {
	resp, err := http.Get(c.base + "/api/v1/label/" + label + "/values?" + url.Values{"match[]": {selector}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("label values %s %s: %s", label, selector, r.Error)
	}
	return r.Data, nil
}

// startPrometheus runs the Prometheus server on a free port, scraping the
// targets (job flowmetrics) every second and evaluating the rules file
// every second.
func startPrometheus(t *testing.T, targets ...string) promClient {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: flowmetrics
    static_configs:
      - targets: [%s]
`, rules, quoteAll(targets))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	p := startProcess(t, "prometheus",
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	waitHTTP(t, "http://"+addr+"/-/ready", p)
	return promClient{base: "http://" + addr}
}

func quoteAll(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

// replayLoop replays the pcap through softflowd until ctx is done, so the
// counters keep growing and rate() has something to say.
func replayLoop(ctx context.Context, pcap, target string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := testkit.RunSoftflowd(rctx, pcap, target, 9, 0)
			cancel()
			if err != nil && ctx.Err() == nil {
				errc <- err
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return errc
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(deadline time.Time, f func() error) error {
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestEndToEndPrometheus: a real Prometheus (1s scrapes, the recording
// rules loaded) scrapes a flowmetrics fed by softflowd. Every dashboard
// variable yields values, every panel query and every recording rule
// returns data, and the top-talker panel ranks the pcap's sources the way
// the pcap does.
func TestEndToEndPrometheus(t *testing.T) {
	needBinaries(t, "softflowd", "prometheus")
	fm := startFlowmetrics(t)
	pcap, truth := writeTrafficPcap(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := replayLoop(ctx, pcap, fm.flowAddr)
	t.Cleanup(func() { cancel(); <-errc })
	prom := startPrometheus(t, fm.webAddr)
	deadline := time.Now().Add(90 * time.Second)

	for _, f := range All() {
		d := f.Dashboard
		t.Run(f.Name, func(t *testing.T) {
			// Variables, in order, the way Grafana resolves them: each
			// label_values query sees the values chosen before it.
			vals := map[string]string{}
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				sel, label, _ := variableSelector(v.Query)
				var got []string
				err := eventually(deadline, func() error {
					var err error
					got, err = prom.labelValues(label, substitute(sel, e2eRateInterval, vals))
					if err == nil && len(got) == 0 {
						err = fmt.Errorf("no values")
					}
					return err
				})
				if err != nil {
					t.Fatalf("variable %s (%s): %v", v.Name, v.Query, err)
				}
				sort.Strings(got)
				vals[v.Name] = got[0]
				if v.Name == "exporter" && !contains(got, "127.0.0.1") {
					t.Errorf("exporter values %v lack 127.0.0.1", got)
				}
			}
			t.Logf("variables: %v", vals)
			for _, pe := range d.Exprs() {
				expr := substitute(pe.Target.Expr, e2eRateInterval, vals)
				err := eventually(deadline, func() error {
					res, err := prom.query(expr)
					if err == nil && len(res) == 0 {
						err = fmt.Errorf("no data")
					}
					return err
				})
				if err != nil {
					t.Errorf("panel %q %s: %s: %v", pe.Panel.Title, pe.Target.RefID, expr, err)
				}
			}
		})
	}

	t.Run("recording rules", func(t *testing.T) {
		for name := range recordedNames(t) {
			expr := name + `{job="flowmetrics"}`
			err := eventually(deadline, func() error {
				res, err := prom.query(expr)
				if err == nil && len(res) == 0 {
					err = fmt.Errorf("no data")
				}
				return err
			})
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})

	t.Run("top sources match the pcap", func(t *testing.T) {
		var top *Target
		for _, pe := range Traffic().Exprs() {
			if pe.Panel.Title == "Top sources" {
				top = pe.Target
			}
		}
		if top == nil {
			t.Fatal("no Top sources panel")
		}
		vals := map[string]string{"job": "flowmetrics", "instance": fm.webAddr, "exporter": ".*", "direction": ".+"}
		expr := substitute(top.Expr, e2eRateInterval, vals)
		want := truth.TopSources()
		if len(want) > TopN {
			want = want[:TopN]
		}
		var got []vecSample
		err := eventually(deadline, func() error {
			var err error
			got, err = prom.query(expr)
			if err == nil && len(got) != len(want) {
				err = fmt.Errorf("%d sources, want %d", len(got), len(want))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.SliceStable(got, func(i, j int) bool { return got[i].float() > got[j].float() })
		var gotAddrs, wantAddrs []string
		for i := range got {
			gotAddrs = append(gotAddrs, got[i].Metric["src_addr"])
			wantAddrs = append(wantAddrs, want[i].String())
		}
		if strings.Join(gotAddrs, " ") != strings.Join(wantAddrs, " ") {
			t.Fatalf("top sources %v, pcap says %v", gotAddrs, wantAddrs)
		}
		// The shares agree too: each source's bit rate over the top one's
		// equals its bytes in the pcap over the top source's bytes.
		top0 := float64(truth.BySrc[want[0]].Bytes)
		for i := range got {
			wantShare := float64(truth.BySrc[want[i]].Bytes) / top0
			gotShare := got[i].float() / got[0].float()
			if math.Abs(gotShare-wantShare) > 0.01*wantShare {
				t.Errorf("%s: share of the top source %.4f, pcap %.4f", gotAddrs[i], gotShare, wantShare)
			}
		}
		t.Logf("top sources %v (pcap agrees)", gotAddrs)
	})

	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("softflowd: %v", err)
		}
	default:
	}
}

// TestInterfaceNamesTwoNamesPrometheus runs two flowmetrics instances that
// name softflowd's interface 0 differently (as two shards with different
// static names, or an old name lingering beside a new one would) under one
// real Prometheus. Every panel that joins flowmetrics_interface_info, with
// all instances selected, must answer without a "many-to-many" error and
// with one series per interface, named with one of the two names; the
// plain max by (..., if_name, if_alias) join the panels used before fails
// on the same data, which shows the case is really exercised.
func TestInterfaceNamesTwoNamesPrometheus(t *testing.T) {
	needBinaries(t, "softflowd", "prometheus")
	names := []string{"pcap0", "pcap0-renamed"}
	fmA, fmB := startFlowmetricsNamed(t, names[0]), startFlowmetricsNamed(t, names[1])
	pcap, _ := writeTrafficPcap(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := replayLoop(ctx, pcap, fmA.flowAddr)
	t.Cleanup(func() { cancel(); <-errc })
	prom := startPrometheus(t, fmA.webAddr, fmB.webAddr)
	deadline := time.Now().Add(60 * time.Second)
	err := eventually(deadline, func() error {
		res, err := prom.query(`count by (exporter, if_index) (flowmetrics_interface_info{job="flowmetrics"})`)
		if err == nil && (len(res) != 1 || res[0].float() != 2) {
			err = fmt.Errorf("want two names for one interface, got %v", res)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{"job": "flowmetrics", "instance": ".+", "exporter": ".*", "direction": ".+"}
	naive := substitute(`sum by (exporter, in_if) (rate(flow_interface_bytes_total{job=~"$job"}[$__rate_interval])) * on (exporter, in_if) group_left (if_name, if_alias) label_replace(max by (exporter, if_index, if_name, if_alias) (flowmetrics_interface_info{job=~"$job"}), "in_if", "$1", "if_index", "(.*)")`, e2eRateInterval, vals)
	err = eventually(deadline, func() error {
		_, err := prom.query(naive)
		switch {
		case err == nil:
			return fmt.Errorf("the plain join did not fail")
		case !strings.Contains(err.Error(), "many-to-many"):
			return fmt.Errorf("the plain join failed otherwise: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("this data should break the plain join: %v", err)
	}
	joins := 0
	for _, pe := range Traffic().Exprs() {
		if !strings.Contains(pe.Target.Expr, "flowmetrics_interface_info") {
			continue
		}
		joins++
		ifLabel := "in_if"
		if strings.Contains(pe.Target.Expr, "out_if") {
			ifLabel = "out_if"
		}
		expr := substitute(pe.Target.Expr, e2eRateInterval, vals)
		var res []vecSample
		err := eventually(deadline, func() error {
			var err error
			res, err = prom.query(expr)
			if err == nil && len(res) == 0 {
				err = fmt.Errorf("no data")
			}
			return err
		})
		if err != nil {
			t.Errorf("panel %q: %v", pe.Panel.Title, err)
			continue
		}
		seen := map[string]int{}
		for _, s := range res {
			seen[s.Metric["exporter"]+"/"+s.Metric[ifLabel]]++
			if s.Metric["exporter"] == "127.0.0.1" && s.Metric[ifLabel] == "0" && !contains(names, s.Metric["if_name"]) {
				t.Errorf("panel %q: interface 0 named %q, want one of %v", pe.Panel.Title, s.Metric["if_name"], names)
			}
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("panel %q: %d series for interface %s, want 1: %v", pe.Panel.Title, n, k, res)
			}
		}
		if seen["127.0.0.1/0"] != 1 {
			t.Errorf("panel %q: no series for interface 0: %v", pe.Panel.Title, res)
		}
	}
	if joins < 4 {
		t.Errorf("only %d panels join flowmetrics_interface_info", joins)
	}
}
