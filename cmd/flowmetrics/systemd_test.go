package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// TestSystemdUnit checks examples/flowmetrics.service: systemd-analyze
// verify reports nothing (unknown keys, bad values, a command that is not
// executable), run with the built binary in place of /usr/local/bin; and
// the flags of its ExecStart, with the files its header's install steps put
// under /etc/flowmetrics (and no others), pass --config.check.
func TestSystemdUnit(t *testing.T) {
	testkit.SkipIfMissing(t, "systemd-analyze")
	root := filepath.Join("..", "..")
	unit, err := os.ReadFile(filepath.Join(root, "examples", "flowmetrics.service"))
	if err != nil {
		t.Fatal(err)
	}
	const installed = "/usr/local/bin/flowmetrics"
	var execStart []string
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	if len(execStart) == 0 || execStart[0] != installed {
		t.Fatalf("ExecStart = %q, want %s and its flags", execStart, installed)
	}
	if !strings.Contains(string(unit), "install -m 0755 bin/flowmetrics "+installed) {
		t.Errorf("the unit's install steps do not put the binary at %s", installed)
	}

	// The sockets flowmetrics opens must be allowed: UDP and TCP over IPv4
	// and IPv6, and netlink, through which Go's net.InterfaceByIndex names
	// the zone of a link-local exporter (fe80::1%eth0; receiver/intake's
	// batchReader.zone). Without AF_NETLINK the lookup fails on every
	// datagram and the exporter label carries the interface's number.
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "RestrictAddressFamilies="); ok {
			for _, family := range []string{"AF_INET", "AF_INET6", "AF_NETLINK"} {
				if !slices.Contains(strings.Fields(v), family) {
					t.Errorf("RestrictAddressFamilies=%s leaves out %s", v, family)
				}
			}
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "flowmetrics.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), installed, binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// Install what the header's install steps put under /etc/flowmetrics,
	// and only that, so that a file the configuration names but the steps
	// leave out (networks_file) fails the check as it would fail the unit.
	etc := filepath.Join(dir, "etc", "flowmetrics")
	const conf = "/etc/flowmetrics/"
	for _, l := range strings.Split(string(unit), "\n") {
		f := strings.Fields(strings.TrimPrefix(l, "#"))
		if len(f) < 3 || f[0] != "install" {
			continue
		}
		if i := slices.Index(f, "#"); i >= 0 {
			f = f[:i]
		}
		src, dst := f[len(f)-2], f[len(f)-1]
		rest, ok := strings.CutPrefix(dst, conf)
		if !ok {
			continue
		}
		if rest == "" {
			rest = filepath.Base(src)
		}
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatalf("install step %q: %v", l, err)
		}
		if err := os.MkdirAll(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(etc, rest), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	const cfg = "--config.file=" + conf + "flowmetrics.yml"
	args := []string{"--config.check"}
	found := false
	for _, a := range execStart[1:] {
		if a == cfg {
			a, found = "--config.file="+filepath.Join(etc, "flowmetrics.yml"), true
		}
		args = append(args, a)
	}
	if !found {
		t.Fatalf("ExecStart does not pass %s", cfg)
	}
	if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Errorf("flowmetrics %s, with the files the unit's header installs: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestSystemdUnitRestartPolicy: with Restart=on-failure, systemd restarted
// a flowmetrics whose configuration was invalid every RestartSec for ever
// (the default start limit, 5 starts in 10 s, is never reached at 5 s
// apart). A start refused for what a restart cannot cure must exit with a
// status the unit's RestartPreventExitStatus lists; one that a restart may
// cure (a port another process holds) with one it does not, nor with 2,
// which Go uses for a panic.
func TestSystemdUnitRestartPolicy(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join("..", "..", "examples", "flowmetrics.service"))
	if err != nil {
		t.Fatal(err)
	}
	var restart string
	var prevent []string
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "Restart="); ok {
			restart = v
		}
		if v, ok := strings.CutPrefix(l, "RestartPreventExitStatus="); ok {
			prevent = append(prevent, strings.Fields(v)...)
		}
	}
	if restart != "on-failure" {
		t.Fatalf("Restart=%s, want on-failure", restart)
	}

	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yml")
	writeFile(t, badYAML, "series:\n  idel: 1m\n")
	badWeb := filepath.Join(dir, "web.yml")
	writeFile(t, badWeb, "basic_auth_users:\n  prometheus: s3cret\n")
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()

	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		restarted bool
	}{
		{"invalid configuration file", []string{"--config.file=" + badYAML}, 78, false},
		{"missing configuration file", []string{"--config.file=" + filepath.Join(dir, "none.yml")}, 78, false},
		{"invalid web configuration", []string{"--web.config.file=" + badWeb}, 78, false},
		{"invalid flow address flag", []string{"--flow.listen-address=127.0.0.1:99999"}, 78, false},
		{"invalid telemetry path", []string{"--web.telemetry-path=metrics"}, 78, false},
		{"unknown flag", []string{"--web.listen-adress=:9155"}, 64, false},
		{"flow port held", []string{"--flow.listen-address=" + udp.LocalAddr().String()}, 1, true},
		{"web port held", []string{"--web.listen-address=" + tcp.Addr().String()}, 1, true},
	} {
		out, code := runBinary(t, append([]string{"--flow.listen-address=127.0.0.1:0", "--web.listen-address=127.0.0.1:0"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%s: exit status %d, want %d; output:\n%s", tc.name, code, tc.code, out)
		}
		if restarted := code > 0 && !slices.Contains(prevent, strconv.Itoa(code)); restarted != tc.restarted {
			t.Errorf("%s: exit status %d is restarted by the unit (RestartPreventExitStatus=%s): %v, want %v",
				tc.name, code, strings.Join(prevent, " "), restarted, tc.restarted)
		}
	}
	if slices.Contains(prevent, "2") {
		t.Errorf("RestartPreventExitStatus lists 2, Go's status for a panic, which a restart may cure")
	}
}
