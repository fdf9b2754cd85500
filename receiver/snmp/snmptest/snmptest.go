// Package snmptest runs Debian's snmpd (net-snmp) on a free 127.0.0.1 port
// as a test's child process, so the SNMP poller is tested against a real
// agent. The agent serves the machine's own IF-MIB (lo is ifIndex 1).
package snmptest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// Community is the read-only community the agent accepts from 127.0.0.1.
const Community = "flowtest"

// Agent is a running snmpd.
type Agent struct {
	// Port is the agent's UDP port on 127.0.0.1.
	Port int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs snmpd until the test ends (skips without snmpd; fails under
// CI). It returns once the agent answers.
func Start(t testing.TB) *Agent {
	t.Helper()
	testkit.SkipIfMissing(t, "snmpd")
	bin, _ := exec.LookPath("snmpd")
	if bin == "" {
		bin = "/usr/sbin/snmpd"
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state") // snmpd rewrites <persistent dir>/snmpd.conf: keep ours apart
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := testkit.FreePort(t, "udp")
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	conf := filepath.Join(dir, "snmpd.conf")
	cfg := fmt.Sprintf("agentAddress udp:%s\nrocommunity %s 127.0.0.1\n", addr, Community)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", conf, "-p", filepath.Join(dir, "snmpd.pid"))
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+state, "MIBDIRS=/nonexistent")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(port), Community: Community, Version: gosnmp.Version2c, Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := g.Connect(); err == nil {
			_, err = g.Get([]string{".1.3.6.1.2.1.1.3.0"}) // sysUpTime
			g.Conn.Close()
			if err == nil {
				return &Agent{Port: port}
			}
		}
		select {
		case <-exited:
			t.Fatalf("snmpd exited; log:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("snmpd did not answer on %s; log:\n%s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
