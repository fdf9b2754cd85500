package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadKeepsUnchangedFamilies replays traffic, reloads with one family
// changed, one added and one kept, then checks the kept family's counters
// survived, the changed one restarted, an invalid file is refused with the
// old configuration kept, and both SIGHUP and POST /-/reload work.
func TestReloadKeepsUnchangedFamilies(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "flowmetrics.yml")
	writeFile(t, cfgPath, `
families:
  - {name: proto, labels: [exporter, proto], limit: 10}
  - {name: src, labels: [exporter, src_addr], limit: 100}
  - {name: gone, labels: [exporter, in_if], limit: 10}
`)
	pcap, truth := writePcap(t, testkit.Spec{Seed: 5})
	in := start(t, "--config.file="+cfgPath, "--web.enable-lifecycle")
	if err := testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, 9, 0); err != nil {
		t.Fatal(err)
	}
	in.settle(t, 1)

	writeFile(t, cfgPath, `
families:
  - {name: proto, labels: [exporter, proto], limit: 10}
  - {name: src, labels: [exporter, src_addr], limit: 100, ipv4_prefix_length: 16}
  - {name: dst, labels: [exporter, dst_addr], limit: 100}
`)
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, in, "the new family dst", func(mfs metricFamilies) bool {
		return sum(mfs, "flowmetrics_family_series_limit", map[string]string{"family": "dst"}) == 100
	})
	mfs := in.scrape(t)
	if got := sum(mfs, "flow_proto_bytes_total", nil); got != float64(truth.Total.Bytes) {
		t.Errorf("unchanged family lost its counters across reload: %v, want %v", got, truth.Total.Bytes)
	}
	if got := sum(mfs, "flow_src_bytes_total", nil); got != 0 {
		t.Errorf("changed family kept %v bytes, want a fresh family", got)
	}
	if got := sum(mfs, "flow_gone_bytes_total", nil); got != 0 {
		t.Errorf("removed family still served: %v bytes", got)
	}
	// The log says which families start from zero and which are gone.
	if want := `families_created="[src dst]" families_removed=[gone]`; !strings.Contains(in.log.String(), want) {
		t.Errorf("the reload's log line lacks %s:\n%s", want, in.log)
	}

	// An invalid file is refused; the running configuration stays.
	writeFile(t, cfgPath, "families: [{name: x, labels: [nope], limit: 1}]\n")
	resp, err := http.Post(in.web+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("reload of an invalid file: status %d, want 500", resp.StatusCode)
	}
	mfs = in.scrape(t)
	if got := sum(mfs, "flowmetrics_config_last_reload_successful", nil); got != 0 {
		t.Errorf("last_reload_successful = %v after a failed reload", got)
	}
	if got := sum(mfs, "flow_proto_bytes_total", nil); got != float64(truth.Total.Bytes) {
		t.Errorf("failed reload changed counters: %v", got)
	}
	if !strings.Contains(in.log.String(), `unknown label \"nope\"`) {
		t.Errorf("the log does not name the bad key:\n%s", in.log)
	}
	// More traffic still lands in the kept family.
	if err := testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, 9, 0); err != nil {
		t.Fatal(err)
	}
	mfs = in.settle(t, 2*float64(len(truth.ByFlow)))
	if got := sum(mfs, "flow_proto_bytes_total", nil); got != 2*float64(truth.Total.Bytes) {
		t.Errorf("after second replay: %v bytes, want %v", got, 2*truth.Total.Bytes)
	}
}

type metricFamilies = testkit.Metrics

// TestReloadKeepsTemplates sends softflowd's first NetFlow v9 datagram (its
// template and some data), reloads, then sends the rest of the stream,
// whose data sets rely on that template. Every record must be counted and
// no data set wait on a template, whether the configuration is unchanged
// (the sockets stay), the socket settings changed (new sockets are bound:
// the exporter's templates live on its health entry, not in the sockets'
// decoders) or max_templates_per_exporter changed (the new sockets'
// decoders adopt the new limit and keep the templates; the log says so).
func TestReloadKeepsTemplates(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	pcap, truth := writePcap(t, testkit.Spec{Seed: 8, Flows: 400, Packets: 2000})
	dgs := captureSoftflowd(t, pcap, 9, 0)
	if len(dgs) < 3 {
		t.Fatalf("only %d datagrams captured", len(dgs))
	}
	for _, tc := range []struct {
		name, before, after string
		rebind, newLimit    bool
		templates           float64 // known at the end
	}{
		{"unchanged", "sockets: 0\n", "sockets: 0\n", false, false, 5},
		{"sockets changed", "sockets: 1\n", "sockets: 2\n", true, false, 5},
		{"template limit raised", "sockets: 1\n", "sockets: 1\nmax_templates_per_exporter: 1000\n", true, true, 5},
		// softflowd sends five templates and uses three: the two it does
		// not use are forgotten.
		{"template limit lowered", "sockets: 1\n", "sockets: 1\nmax_templates_per_exporter: 3\n", true, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath := filepath.Join(t.TempDir(), "flowmetrics.yml")
			writeFile(t, cfgPath, tc.before)
			in := start(t, "--config.file="+cfgPath)
			if err := testkit.Replay(ctxFor(t), in.flowAddr, dgs[:1], time.Millisecond); err != nil {
				t.Fatal(err)
			}
			mfs := in.settle(t, 1)
			loaded := sum(mfs, "flowmetrics_config_last_reload_success_timestamp_seconds", nil)
			writeFile(t, cfgPath, tc.after)
			if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			waitMetric(t, in, "the reload", func(mfs metricFamilies) bool {
				return sum(mfs, "flowmetrics_config_last_reload_success_timestamp_seconds", nil) > loaded
			})
			if rebound := strings.Contains(in.log.String(), "sockets rebound"); rebound != tc.rebind {
				t.Fatalf("sockets rebound: %v, want %v; log:\n%s", rebound, tc.rebind, in.log)
			}
			if adopted := strings.Contains(in.log.String(), "keep their templates under the new max_templates_per_exporter"); adopted != tc.newLimit {
				t.Fatalf("log says the templates are kept under a new limit: %v, want %v; log:\n%s", adopted, tc.newLimit, in.log)
			}
			if err := testkit.Replay(ctxFor(t), in.flowAddr, dgs[1:], time.Millisecond); err != nil {
				t.Fatal(err)
			}
			mfs = in.settle(t, 1)
			assertHealthy(t, mfs)
			if got := sum(mfs, "flowmetrics_records_total", nil); got != float64(len(truth.ByFlow)) {
				t.Errorf("records = %v, want %d", got, len(truth.ByFlow))
			}
			if got := sum(mfs, "flow_exporter_bytes_total", nil); got != float64(truth.Total.Bytes) {
				t.Errorf("bytes = %v, want %d", got, truth.Total.Bytes)
			}
			if got := sum(mfs, "flowmetrics_templates", nil); got != tc.templates {
				t.Errorf("templates = %v, want %v", got, tc.templates)
			}
		})
	}
}

func waitMetric(t *testing.T, in *instance, name string, cond func(metricFamilies) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs := in.scrape(t)
		if cond(mfs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting on %s; log:\n%s", name, in.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReloadDisabledWithoutLifecycleFlag(t *testing.T) {
	in := start(t)
	resp, err := http.Post(in.web+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

func TestInvalidConfigExitsNonZero(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yml")
	writeFile(t, p, "sampling:\n  overrides:\n    - exporter: 10.0.0.0/8\n      rate: 0\n")
	out, err := exec.Command(binary, "--config.file="+p, "--web.listen-address=127.0.0.1:0").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitConfig {
		t.Fatalf("exit = %v, want status %d; output:\n%s", err, exitConfig, out)
	}
	if !strings.Contains(string(out), "sampling.overrides[0].rate: must be at least 1") {
		t.Fatalf("error does not name the key:\n%s", out)
	}
	// The key alone does not say where it is: under systemd or Docker the
	// start log is all there is, so it names the file as --config.check and
	// a failed reload do (README: "the log names the file").
	if !strings.Contains(string(out), "file="+p) {
		t.Errorf("the start error does not name the file %s:\n%s", p, out)
	}
	out, err = exec.Command(binary, "--config.check", "--config.file="+p).CombinedOutput()
	if err == nil {
		t.Fatalf("--config.check accepted an invalid file:\n%s", out)
	}
}

// TestExampleConfigChecks runs the documented check of the shipped example,
// `flowmetrics --config.check --config.file=examples/flowmetrics.yml` from
// the repository's root.
func TestExampleConfigChecks(t *testing.T) {
	cmd := exec.Command(binary, "--config.check", "--config.file=examples/flowmetrics.yml")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("--config.check of examples/flowmetrics.yml: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "configuration is valid") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flowmetrics test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// TestTLSAndBasicAuth serves /metrics over TLS with basic auth through
// exporter-toolkit's web config and checks wrong credentials, no
// credentials and plain HTTP are refused while the right ones get metrics.
func TestTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	writeFile(t, webCfg, fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n", certPath, keyPath, hash))
	web := testkit.FreePort(t, "tcp")
	cmd := exec.Command(binary, "--web.config.file="+webCfg, "--web.listen-address="+web,
		"--flow.listen-address="+testkit.FreePort(t, "udp"))
	var log testkit.SyncBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(user, pass string) (int, error) {
		req, _ := http.NewRequest("GET", "https://"+web+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := get("", ""); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("TLS listener not up: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tests := []struct {
		user, pass string
		want       int
	}{
		{"prometheus", "s3cret", 200},
		{"prometheus", "wrong", 401},
		{"someone", "s3cret", 401},
		{"", "", 401},
	}
	for _, tt := range tests {
		got, err := get(tt.user, tt.pass)
		if err != nil || got != tt.want {
			t.Errorf("GET as %q/%q: %d %v, want %d", tt.user, tt.pass, got, err, tt.want)
		}
	}
	resp, err := http.Get("http://" + web + "/metrics")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP got metrics from a TLS-only listener")
		}
	}
}

// TestWebConfigRefusesWhatIsNotABcryptHash: exporter-toolkit accepts any
// string in basic_auth_users and then refuses every request with 401,
// logging nothing. examples/web-config.yml copied without replacing its
// placeholder, a password written in clear and a hash whose "$12$..." a
// shell expanded away must be refused by --config.check (and at start),
// naming the user; a real hash passes.
func TestWebConfigRefusesWhatIsNotABcryptHash(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, _ := selfSigned(t, dir)
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "web-config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	placeholder := strings.NewReplacer("/etc/flowmetrics/tls.crt", certPath, "/etc/flowmetrics/tls.key", keyPath).Replace(string(example))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := func(h string) string { return "basic_auth_users:\n  prometheus: '" + h + "'\n" }
	for _, tc := range []struct {
		name, file, want string
	}{
		{"example as shipped", placeholder, "basic_auth_users.prometheus: not a bcrypt hash: 62 characters, want 60"},
		{"password in clear", users("s3cret"), "basic_auth_users.prometheus: not a bcrypt hash: crypto/bcrypt"},
		{"expanded by a shell", users("$2y"), "basic_auth_users.prometheus: not a bcrypt hash"},
		{"wrong alphabet", users(string(hash[:40]) + "!" + string(hash[41:])), `not a bcrypt hash: '!' at offset 40`},
		{"real hash", users(string(hash)), ""},
		{"real hash, example", strings.Replace(placeholder, "$2y$12$REPLACE.WITH.A.BCRYPT.HASH.OF.THE.PASSWORD.............", string(hash), 1), ""},
	} {
		p := filepath.Join(dir, "web.yml")
		writeFile(t, p, tc.file)
		var stderr bytes.Buffer
		code := run([]string{"--config.check", "--web.config.file=" + p}, &stderr)
		if tc.want == "" {
			if code != 0 {
				t.Errorf("%s: exit %d, want 0\n%s", tc.name, code, stderr.String())
			}
			continue
		}
		if code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, log\n%s\nwant exit 1 and %q", tc.name, code, stderr.String(), tc.want)
		}
	}
}
