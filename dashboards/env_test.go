package dashboards

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/enrich/enrichtest"
)

// repoRoot is the flowmetrics repository, the parent of this module.
const repoRoot = ".."

// rulesFile is the Prometheus rules file the tests check.
var rulesFile = filepath.Join(repoRoot, "alerts", "flowmetrics.rules.yml")

// workDir holds the built binary and generated files for the whole run.
var workDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "flowmetrics-dashboards-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// needBinaries skips t when a binary is missing, unless CI is "true": then
// a missing binary fails the test, so CI cannot silently test nothing.
func needBinaries(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not on PATH (CI=true)", n)
			}
			t.Skipf("%s not on PATH (set CI=true to fail instead)", n)
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// flowmetricsBinary builds ../cmd/flowmetrics once per test run.
func flowmetricsBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(workDir, "flowmetrics")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/flowmetrics")
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/flowmetrics: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// process runs a command until the test ends, keeping its output for
// failure messages.
type process struct {
	cmd *exec.Cmd
	out *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), out: &lockedBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out)
		}
	})
	return p
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, p *process) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not come up; output:\n%s", url, p.out)
}

// exporterRun is a running flowmetrics.
type exporterRun struct {
	flowAddr, webAddr string
}

// startFlowmetrics runs the freshly built binary on free 127.0.0.1 ports.
func startFlowmetrics(t *testing.T) *exporterRun {
	t.Helper()
	return startFlowmetricsNamed(t, "pcap0")
}

// startFlowmetricsNamed is startFlowmetrics with softflowd's interface 0
// named ifName.
func startFlowmetricsNamed(t *testing.T, ifName string) *exporterRun {
	t.Helper()
	bin := flowmetricsBinary(t)
	r := &exporterRun{
		flowAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp")),
		webAddr:  fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")),
	}
	// Static interface names and speeds for softflowd's exporter (127.0.0.1,
	// interface 0), so the name and utilisation joins have data; SNMP polls
	// of it go to a port nobody answers on, so the SNMP health metrics are
	// served (as failures); a generated ASN database, so the GeoIP health
	// metrics are served.
	dir := t.TempDir()
	asn := filepath.Join(dir, "asn.mmdb")
	if err := enrichtest.WriteASN(asn, time.Now(), enrichtest.ASN{Prefix: "192.0.2.0/24", Number: 64500, Org: "TEST-NET-1"}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "flowmetrics.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`enrich:
  interfaces:
    - {exporter: 127.0.0.1, if_index: 0, name: %q, alias: replayed pcap, speed_bps: 1000000000}
  snmp:
    exporters: [127.0.0.1/32]
    port: %d
    timeout: 200ms
    retries: 0
  geoip:
    asn_database: %s
`, ifName, freePort(t, "udp"), asn)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, bin, "--config.file="+cfg, "--flow.listen-address="+r.flowAddr, "--web.listen-address="+r.webAddr)
	waitHTTP(t, "http://"+r.webAddr+"/metrics", p)
	return r
}

// trafficSpec is the pcap the tests replay: 20 IPv4 flows, so softflowd's
// NetFlow v9 export of one replay fits in one datagram and every replay
// adds the same amounts at once.
var trafficSpec = testkit.Spec{Seed: 7, Flows: 20, Packets: 600, Hosts: 6}

// writeTrafficPcap writes the test pcap and returns its path and truth.
func writeTrafficPcap(t *testing.T) (string, testkit.Truth) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "traffic.pcap")
	truth, err := testkit.WritePcap(path, trafficSpec)
	if err != nil {
		t.Fatal(err)
	}
	return path, truth
}

// replay sends the pcap to flowmetrics through softflowd once.
func replay(t *testing.T, pcap, target string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testkit.RunSoftflowd(ctx, pcap, target, 9, 0); err != nil {
		t.Fatal(err)
	}
}

// scrape fetches /metrics as text.
func scrape(t *testing.T, webAddr string) string {
	t.Helper()
	resp, err := http.Get("http://" + webAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// servedMetrics maps each metric name of an exposition to the label names
// its samples carry. A histogram or summary also serves its base name.
type servedMetrics map[string]map[string]bool

func parseExposition(text string) servedMetrics {
	out := servedMetrics{}
	add := func(name string, labels ...string) {
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		for _, l := range labels {
			out[name][l] = true
		}
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && (f[3] == "histogram" || f[3] == "summary") {
			add(f[2])
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		var labels []string
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name, rest = line[:i], line[i:]
			labels = labelNames(rest)
		}
		add(name, labels...)
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && out[base] != nil {
				for _, l := range labels {
					if l != "le" {
						out[base][l] = true
					}
				}
			}
		}
	}
	return out
}

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

func labelNames(s string) []string {
	end := strings.LastIndexByte(s, '}')
	if end < 0 {
		return nil
	}
	var out []string
	for _, m := range labelRE.FindAllStringSubmatch(s[:end], -1) {
		out = append(out, m[1])
	}
	return out
}

var (
	scrapeOnce sync.Once
	scraped    servedMetrics
)

// realScrape runs flowmetrics, feeds it softflowd's export of the test
// pcap and returns what /metrics serves (once per test run).
func realScrape(t *testing.T) servedMetrics {
	t.Helper()
	needBinaries(t, "softflowd")
	scrapeOnce.Do(func() {
		r := startFlowmetrics(t)
		pcap, _ := writeTrafficPcap(t)
		replay(t, pcap, r.flowAddr)
		deadline := time.Now().Add(10 * time.Second)
		for {
			text := scrape(t, r.webAddr)
			s := parseExposition(text)
			if s["flow_dst_host_bytes_total"] != nil && s["flowmetrics_sampling_rate"] != nil && s["flowmetrics_snmp_polls_total"] != nil &&
				s["flowmetrics_geoip_database_loads_total"] != nil {
				scraped = s
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no flow metrics after replaying the pcap; scrape:\n%s", text)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if scraped == nil {
		t.Fatal("scrape failed in an earlier test")
	}
	return scraped
}

// ---- PromQL helpers ----------------------------------------------------------

var promql = parser.NewParser(parser.Options{})

// rateSentinel stands in for $__rate_interval when parsing, so the tests
// can tell it from literal ranges.
const rateSentinel = "17m17s"

var varRE = regexp.MustCompile(`\$(\{)?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?(\})?`)

// substitute replaces Grafana variables: $__rate_interval by rateInterval,
// others by vals[name] (left as they are when missing).
func substitute(expr, rateInterval string, vals map[string]string) string {
	return varRE.ReplaceAllStringFunc(expr, func(m string) string {
		name := varRE.FindStringSubmatch(m)[2]
		if name == "__rate_interval" {
			return rateInterval
		}
		if v, ok := vals[name]; ok {
			return v
		}
		return m
	})
}

// parseDashboardExpr parses a panel or variable expression with
// $__rate_interval replaced by rateSentinel; other variables sit inside
// label values and parse as they are.
func parseDashboardExpr(expr string) (parser.Expr, error) {
	return promql.ParseExpr(substitute(expr, rateSentinel, nil))
}

// selectors returns the vector selectors of expr with the path to each.
func selectors(e parser.Expr) (out []*parser.VectorSelector, paths [][]parser.Node) {
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
			paths = append(paths, append([]parser.Node(nil), path...))
		}
		return nil
	})
	return out, paths
}

// metricName is the selector's metric name, from the name or a __name__
// equality matcher.
func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == "__name__" && m.Type == 0 {
			return m.Value
		}
	}
	return ""
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// variableSelector returns the selector inside a label_values(...) query
// and the label it reads.
func variableSelector(query string) (string, string, bool) {
	m := labelValuesRE.FindStringSubmatch(query)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// ---- rules -------------------------------------------------------------------

// loadRules parses the rules file with Prometheus' own rulefmt.
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(b, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", rulesFile, errs)
	}
	return groups
}

// recordedNames are the recording rules' outputs.
func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}
