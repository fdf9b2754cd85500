package main

import (
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

func familyNames(a *app) []string {
	var names []string
	for _, f := range a.core.Families() {
		names = append(names, f.Spec().Name)
	}
	return names
}

// TestReloadBindFailureChangesNothing reloads a configuration whose new
// listen address is held by another socket. The reload fails, and none of
// it may be applied: not the families, not the allowlist (which would drop
// every exporter's datagrams on the sockets that stay).
func TestReloadBindFailureChangesNothing(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "flowmetrics.yml")
	flowAddr := testkit.FreePort(t, "udp")
	writeFile(t, cfgPath, "listen: [\""+flowAddr+"\"]\nsockets: 1\nfamilies: [{name: proto, labels: [exporter, proto], limit: 10}]\n")
	log := &testkit.SyncBuffer{}
	a := newApp(slog.New(slog.NewTextHandler(log, nil)), cfgPath, nil)
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.stop)

	held, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	writeFile(t, cfgPath, "listen: [\""+held.LocalAddr().String()+"\"]\nsockets: 1\nallowed_exporters: [192.0.2.1]\n"+
		"families: [{name: other_proto, labels: [exporter, proto], limit: 10}]\n")
	if err := a.reload(); err == nil {
		t.Fatal("reload bound a port another socket holds")
	}
	if got := testutil.ToFloat64(a.reloadOK); got != 0 {
		t.Errorf("flowmetrics_config_last_reload_successful = %v after a failed reload", got)
	}
	if got := familyNames(a); !slices.Equal(got, []string{"proto"}) {
		t.Errorf("families after a failed reload: %v, want the running [proto]", got)
	}
	if !strings.Contains(log.String(), "configuration reload failed; keeping the running configuration") {
		t.Errorf("the log does not say the reload failed:\n%s", log)
	}

	// The old sockets still accept the exporter the new allowlist would drop.
	conn, err := net.Dial("udp", flowAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g, err := flowgen.New(flowgen.Config{Protocol: flowgen.V5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	dg, _ := g.Data(nil)
	if _, err := conn.Write(dg); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("127.0.0.1")
	untracked := a.core.Exporters().Untracked()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if e := a.core.Exporters().Get(src); e != nil && e.Datagrams[flow.NetFlowV5].Load() > 0 {
			break
		}
		if untracked.DecodeErrors[health.ReasonNotAllowed].Load() > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := untracked.DecodeErrors[health.ReasonNotAllowed].Load(); n != 0 {
		t.Errorf("%d datagrams refused as not_allowed: the failed reload's allowlist is in force", n)
	} else if e := a.core.Exporters().Get(src); e == nil || e.Datagrams[flow.NetFlowV5].Load() == 0 {
		t.Error("the datagram sent after the failed reload was not counted")
	}
}
