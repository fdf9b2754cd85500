package snmp_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/receiver/snmp"
	"github.com/flowmetrics/flowmetrics/receiver/snmp/snmptest"
)

var localhost = netip.MustParseAddr("127.0.0.1")

func config(port int, version string) snmp.Config {
	return snmp.Config{
		Exporters: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Port: port, Community: snmptest.Community,
		Version: version, Interval: time.Hour, Timeout: time.Second, Retries: 1,
	}
}

// TestPollRealAgent walks the IF-MIB of a real snmpd, in v1 (Walk) and v2c
// (BulkWalk).
func TestPollRealAgent(t *testing.T) {
	agent := snmptest.Start(t)
	for _, v := range []string{"1", "2c"} {
		t.Run("v"+v, func(t *testing.T) {
			ifs, err := snmp.Poll(context.Background(), config(agent.Port, v), localhost)
			if err != nil {
				t.Fatal(err)
			}
			var lo *enrich.Interface
			for i := range ifs {
				if ifs[i].Index == 1 {
					lo = &ifs[i]
				}
			}
			if lo == nil || lo.Name != "lo" || lo.Speed == 0 || lo.Exporter != localhost {
				t.Fatalf("ifIndex 1 = %+v; all: %+v", lo, ifs)
			}
		})
	}
	// A wrong community times out and is reported.
	bad := config(agent.Port, "2c")
	bad.Community, bad.Timeout, bad.Retries = "wrong", 100*time.Millisecond, 0
	if _, err := snmp.Poll(context.Background(), bad, localhost); err == nil {
		t.Error("wrong community: no error")
	}
}

// TestPollerStoresInterfaces runs the Poller against the real agent: an
// exporter that has sent flows and matches the prefixes is polled, its
// interfaces land in the store, and static names win.
func TestPollerStoresInterfaces(t *testing.T) {
	agent := snmptest.Start(t)
	store := enrich.NewInterfaces()
	store.SetStatic([]enrich.Interface{{Exporter: localhost, Index: 1, Alias: "loopback (static)"}})
	other := netip.MustParseAddr("192.0.2.1") // not in the prefixes: never polled
	p := snmp.New(config(agent.Port, "2c"), store, func() []netip.Addr { return []netip.Addr{localhost, other} },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.Start()
	defer p.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if i, ok := store.Lookup(localhost, 1); ok && i.Name == "lo" {
			if i.Alias != "loopback (static)" {
				t.Errorf("alias = %q", i.Alias)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no polled interfaces: %+v", store.Snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := store.PollStatuses()
	if len(st) != 1 || st[0].Exporter != localhost || st[0].Successes != 1 || st[0].Interfaces == 0 {
		t.Errorf("statuses = %+v", st)
	}
	// Reconfigured to poll nothing: the polled interfaces are forgotten.
	cfg := config(agent.Port, "2c")
	cfg.Exporters = nil
	p.SetConfig(cfg)
	if i, _ := store.Lookup(localhost, 1); i.Name != "" {
		t.Errorf("after SetConfig: %+v", i)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := config(161, "2c")
	tests := []struct {
		name string
		mod  func(*snmp.Config)
		want string
	}{
		{"ok", func(*snmp.Config) {}, ""},
		{"port", func(c *snmp.Config) { c.Port = 0 }, "port: must be 1..65535, got 0"},
		{"version", func(c *snmp.Config) { c.Version = "3" }, `version: must be "1" or "2c", got "3"`},
		{"community", func(c *snmp.Config) { c.Community = "" }, "community: must not be empty"},
		{"interval", func(c *snmp.Config) { c.Interval = 0 }, "interval: must be positive, got 0s"},
		{"timeout", func(c *snmp.Config) { c.Timeout = -1 }, "timeout: must be positive, got -1ns"},
		{"retries", func(c *snmp.Config) { c.Retries = -1 }, "retries: must not be negative, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}
