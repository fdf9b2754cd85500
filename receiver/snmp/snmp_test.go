package snmp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/receiver/snmp"
	"github.com/flowmetrics/flowmetrics/receiver/snmp/snmptest"
)

var localhost = netip.MustParseAddr("127.0.0.1")

func config(port int, version string) snmp.Config {
	return snmp.Config{
		Exporters: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Port: port, Community: snmptest.Community,
		Version: version, Interval: time.Hour, Timeout: time.Second, Retries: 1, Concurrency: snmp.DefaultConcurrency,
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

// silentAgent is a UDP socket on 127.0.0.x:port that reads SNMP requests
// and never answers, as an agent behind a firewall that drops them does.
// It records when it first heard from the poller.
type silentAgent struct {
	addr  netip.Addr
	mu    sync.Mutex
	first time.Time
	heard chan struct{} // closed on the first request
}

func startSilentAgent(t *testing.T, addr string, port int) *silentAgent {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port))))
	if err != nil {
		t.Fatalf("binding the silent agent %s:%d: %v", addr, port, err)
	}
	s := &silentAgent{addr: netip.MustParseAddr(addr), heard: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			if _, _, err := conn.ReadFromUDP(buf); err != nil {
				return
			}
			s.mu.Lock()
			if s.first.IsZero() {
				s.first = time.Now()
				close(s.heard)
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

func (s *silentAgent) wasHeard() bool {
	select {
	case <-s.heard:
		return true
	default:
		return false
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// statusOf returns the poll status of one exporter (zero if never polled).
func statusOf(store *enrich.Interfaces, a netip.Addr) enrich.PollStatus {
	for _, st := range store.PollStatuses() {
		if st.Exporter == a {
			return st
		}
	}
	return enrich.PollStatus{}
}

// TestPollerUnreachableExportersDoNotDelayOthers lists three exporters
// whose agents never answer (silent sockets on 127.0.0.2-4, same port as the
// real snmpd on 127.0.0.1) before the real one. Polled one at a time, the
// real exporter would wait for three timeouts (3 x 2 s x 2 tries); polled
// concurrently, its interfaces are in the store while none of the silent
// ones has even failed yet, and every silent one was asked.
func TestPollerUnreachableExportersDoNotDelayOthers(t *testing.T) {
	agent := snmptest.Start(t)
	var silent []*silentAgent
	var addrs []netip.Addr
	for i := 2; i <= 4; i++ {
		s := startSilentAgent(t, fmt.Sprintf("127.0.0.%d", i), agent.Port)
		silent = append(silent, s)
		addrs = append(addrs, s.addr)
	}
	addrs = append(addrs, localhost) // the reachable exporter comes last
	cfg := config(agent.Port, "2c")
	cfg.Timeout, cfg.Retries = 2*time.Second, 1
	store := enrich.NewInterfaces()
	p := snmp.New(cfg, store, func() []netip.Addr { return addrs }, discard())
	p.Start()
	defer p.Stop()
	deadline := time.Now().Add(20 * time.Second) // generous: the point is the order below
	for {
		if i, ok := store.Lookup(localhost, 1); ok && i.Name == "lo" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no polled interfaces from the reachable agent: %+v", store.PollStatuses())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range silent {
		if st := statusOf(store, s.addr); st.Failures != 0 || st.Successes != 0 {
			t.Errorf("silent exporter %s already has a poll result (%+v) before the reachable one was stored: polls are serialised", s.addr, st)
		}
	}
	// Every silent agent is asked (they were due before the reachable
	// one), and each poll ends as a failure once its tries time out.
	for _, s := range silent {
		select {
		case <-s.heard:
		case <-time.After(20 * time.Second):
			t.Fatalf("silent exporter %s never polled", s.addr)
		}
	}
	for {
		failed := 0
		for _, s := range silent {
			if statusOf(store, s.addr).Failures >= 1 {
				failed++
			}
		}
		if failed == len(silent) {
			break
		}
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("silent exporters' polls did not fail: %+v", store.PollStatuses())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := statusOf(store, localhost); st.Successes != 1 || st.Failures != 0 {
		t.Errorf("reachable exporter status = %+v", st)
	}
}

// TestPollerConcurrencyBound allows two polls at once with three silent
// exporters due: the first two are asked at once, the third only after one
// of them has failed, i.e. a slot came free.
func TestPollerConcurrencyBound(t *testing.T) {
	free := testkit.FreePort(t, "udp")
	port, _ := strconv.Atoi(free[strings.LastIndexByte(free, ':')+1:])
	var silent []*silentAgent
	var addrs []netip.Addr
	for i := 5; i <= 7; i++ {
		s := startSilentAgent(t, fmt.Sprintf("127.0.0.%d", i), port)
		silent = append(silent, s)
		addrs = append(addrs, s.addr)
	}
	cfg := config(port, "2c")
	cfg.Timeout, cfg.Retries, cfg.Concurrency = 500*time.Millisecond, 0, 2
	store := enrich.NewInterfaces()
	p := snmp.New(cfg, store, func() []netip.Addr { return addrs }, discard())
	p.Start()
	defer p.Stop()
	var order []netip.Addr
	var failuresWhenHeard []uint64
	for len(order) < len(silent) {
		var cases []*silentAgent
		for _, s := range silent {
			if !slices.Contains(order, s.addr) {
				cases = append(cases, s)
			}
		}
		got := waitAny(t, cases, 20*time.Second)
		failures := uint64(0)
		for _, st := range store.PollStatuses() {
			failures += st.Failures
		}
		order = append(order, got.addr)
		failuresWhenHeard = append(failuresWhenHeard, failures)
	}
	// The first two were asked before any poll ended; the third not
	// before one had.
	if failuresWhenHeard[0] != 0 || failuresWhenHeard[1] != 0 {
		t.Errorf("failures counted when the first two agents were asked = %v, want 0 0 (order %v)", failuresWhenHeard[:2], order)
	}
	if failuresWhenHeard[2] < 1 {
		t.Errorf("the third agent was asked while two polls were in flight (failures then: %d, order %v)", failuresWhenHeard[2], order)
	}
	if order[2] != silent[2].addr {
		t.Errorf("order = %v; the exporter listed last should be polled last", order)
	}
}

// waitAny waits until one of agents hears a request and returns it.
func waitAny(t *testing.T, agents []*silentAgent, timeout time.Duration) *silentAgent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range agents {
			if s.wasHeard() {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("none of %d agents was polled", len(agents))
		}
		time.Sleep(5 * time.Millisecond)
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
		{"concurrency", func(c *snmp.Config) { c.Concurrency = 0 }, "concurrency: must be 1..256, got 0"},
		{"concurrency max", func(c *snmp.Config) { c.Concurrency = 257 }, "concurrency: must be 1..256, got 257"},
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

// TestPollReturnsWhenCancelled: cancelling the context ends a poll waiting
// on an agent that does not answer at once, not after cfg.Timeout, so the
// Poller's Stop (and the Collector receiver's Shutdown, and a reload) is
// not held up by an SNMP request in flight.
func TestPollReturnsWhenCancelled(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cfg := config(silent.LocalAddr().(*net.UDPAddr).Port, "2c")
	cfg.Timeout, cfg.Retries = 10*time.Second, 0
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the request is out.
		buf := make([]byte, 1500)
		_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, _ = silent.ReadFrom(buf)
		cancel()
	}()
	start := time.Now()
	if _, err := snmp.Poll(ctx, cfg, localhost); err == nil {
		t.Error("a cancelled poll returned no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the poll returned %v after it was sent and cancelled; want well under its 10s timeout", d.Round(time.Millisecond))
	}
	cancel()
}
