package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// TestDemoStopsWhenFlowmetricsCannotStart runs examples/demo.sh (make demo)
// with UDP 2055 taken, as it is when `make run` from the quick start is
// still running: its flowmetrics exits at once, and the script must say so
// and stop, not announce "flowmetrics is serving" and replay into nothing.
func TestDemoStopsWhenFlowmetricsCannotStart(t *testing.T) {
	testkit.SkipIfMissing(t, "bash", "curl", "softflowd")
	taken, err := net.ListenPacket("udp", ":2055")
	if err != nil {
		t.Skipf("UDP 2055 is in use already, cannot set the scene: %v", err)
	}
	defer taken.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("examples", "demo.sh"))
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "FLOWMETRICS="+binary)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("demo.sh still running after 2 minutes with UDP 2055 taken:\n%s", out)
	}
	if err == nil {
		t.Errorf("demo.sh exited 0 with UDP 2055 taken:\n%s", out)
	}
	if strings.Contains(string(out), "flowmetrics is serving") || !strings.Contains(string(out), "did not start") {
		t.Errorf("demo.sh output, want it to say its flowmetrics did not start:\n%s", out)
	}
}
