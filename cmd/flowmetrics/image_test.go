package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// TestContainerImage runs the image `make test-image` builds (its tag in
// FLOWMETRICS_IMAGE) under a real Docker engine the way the Dockerfile's
// header says to, on the host's network, and checks that it runs as
// nobody, counts every record flowgen sends it over 127.0.0.1 under the
// sender's address with the exact bytes, carries the build's version and
// date, and stops cleanly (exit code 0) on docker stop's SIGTERM.
func TestContainerImage(t *testing.T) {
	image := os.Getenv("FLOWMETRICS_IMAGE")
	if image == "" {
		t.Skip("run by make test-image, which builds the image first")
	}
	docker := func(args ...string) (string, error) {
		out, err := exec.Command("docker", args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	flows, web := testkit.FreePort(t, "udp"), testkit.FreePort(t, "tcp")
	name := fmt.Sprintf("flowmetrics-test-%d", os.Getpid())
	if out, err := docker("run", "-d", "--name", name, "--network", "host", image,
		"--flow.listen-address="+flows, "--web.listen-address="+web); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := docker("logs", name)
			t.Logf("container log:\n%s", logs)
		}
		_, _ = docker("rm", "-f", name)
	})
	url := "http://" + web
	if err := testkit.WaitReady(url+"/-/ready", 20*time.Second); err != nil {
		t.Fatalf("the container never got ready: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)

	pid, err := docker("inspect", "-f", "{{.State.Pid}}", name)
	if err != nil {
		t.Fatalf("docker inspect: %v\n%s", err, pid)
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[0] == "Uid:" && (f[1] != "65534" || f[2] != "65534") {
			t.Errorf("the process runs as %q, want uid 65534 (nobody)", l)
		}
	}

	g, err := flowgen.New(flowgen.Config{Protocol: flowgen.V5, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", flows)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const datagrams = 20
	var bytes, records float64
	var fl []flowgen.Flow
	for range datagrams {
		var dg []byte
		dg, fl = g.Data(fl)
		if _, err := conn.Write(dg); err != nil {
			t.Fatal(err)
		}
		for _, f := range fl {
			bytes += float64(f.Bytes)
		}
		records += float64(len(fl))
	}

	var mfs testkit.Metrics
	for {
		mfs, err = testkit.Scrape(url + "/metrics")
		if err == nil && mfs.Sum("flowmetrics_records_total", nil) >= records {
			break
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("records counted: %v of %v (scrape error %v)", mfs.Sum("flowmetrics_records_total", nil), records, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := mfs.Sum("flowmetrics_records_total", map[string]string{"exporter": "127.0.0.1", "protocol": "netflow_v5"}); got != records {
		t.Errorf("flowmetrics_records_total{exporter=127.0.0.1, protocol=netflow_v5} = %v, want %v", got, records)
	}
	for _, family := range []string{"exporter", "protocol", "interface", "src_host"} {
		if got := mfs.Sum("flow_"+family+"_bytes_total", nil); got != bytes {
			t.Errorf("flow_%s_bytes_total sums to %v, want the %v bytes sent", family, got, bytes)
		}
	}
	var build map[string]string
	for _, m := range mfs["flowmetrics_build_info"].GetMetric() {
		build = testkit.Labels(m)
		if build["version"] == "" {
			t.Errorf("flowmetrics_build_info has no version: make image did not pass the build's")
		}
	}
	if len(mfs["flowmetrics_build_info"].GetMetric()) != 1 {
		t.Errorf("flowmetrics_build_info missing")
	}
	// The image says which build it holds without being run: its OCI
	// labels name the same version and revision as the binary.
	labels, err := docker("image", "inspect", "-f", "{{json .Config.Labels}}", image)
	if err != nil {
		t.Fatalf("docker image inspect: %v\n%s", err, labels)
	}
	var oci map[string]string
	if err := json.Unmarshal([]byte(labels), &oci); err != nil {
		t.Fatalf("image labels %q: %v", labels, err)
	}
	for label, want := range map[string]string{
		"org.opencontainers.image.version":  build["version"],
		"org.opencontainers.image.revision": build["revision"],
		"org.opencontainers.image.source":   "https://github.com/flowmetrics/flowmetrics",
	} {
		if oci[label] != want || want == "" {
			t.Errorf("image label %s = %q, want %q (flowmetrics_build_info %v)", label, oci[label], want, build)
		}
	}
	// --version dates the build by its commit, the instant of the image's
	// created label (two formats: Prometheus's and RFC 3339).
	created, err := time.Parse(time.RFC3339, oci["org.opencontainers.image.created"])
	if err != nil {
		t.Errorf("image label org.opencontainers.image.created: %v", err)
	}
	out, err := docker("run", "--rm", image, "--version")
	if err != nil {
		t.Fatalf("docker run --version: %v\n%s", err, out)
	}
	var dated bool
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "build date:"); ok {
			d, err := time.Parse("20060102-15:04:05", strings.TrimSpace(v))
			dated = err == nil && d.Equal(created)
		}
	}
	if !dated {
		t.Errorf("--version gives no build date equal to the image's created label %v:\n%s", created, out)
	}

	if out, err := docker("stop", "-t", "10", name); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	if code, err := docker("inspect", "-f", "{{.State.ExitCode}}", name); err != nil || code != "0" {
		t.Errorf("exit code after docker stop = %q (%v), want 0: SIGTERM should stop it cleanly", code, err)
	}
}
