package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// TestSystemdUnit checks examples/flowmetrics.service: systemd-analyze
// verify reports nothing (unknown keys, bad values, a command that is not
// executable), run with the built binary in place of /usr/local/bin; and
// the flags of its ExecStart, with the configuration it names installed
// from examples/flowmetrics.yml as its header says, pass --config.check.
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

	dir := t.TempDir()
	path := filepath.Join(dir, "flowmetrics.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), installed, binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	const cfg = "--config.file=/etc/flowmetrics/flowmetrics.yml"
	args := []string{"--config.check"}
	found := false
	for _, a := range execStart[1:] {
		if a == cfg {
			a, found = "--config.file="+filepath.Join(root, "examples", "flowmetrics.yml"), true
		}
		args = append(args, a)
	}
	if !found {
		t.Fatalf("ExecStart does not pass %s", cfg)
	}
	if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Errorf("flowmetrics %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
