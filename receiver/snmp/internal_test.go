package snmp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
)

// TestStr holds what agents' OCTET STRINGs become: valid UTF-8 (Latin-1
// bytes replaced by U+FFFD), no trailing NULs, at most enrich.MaxTextBytes
// cut on a rune boundary.
func TestStr(t *testing.T) {
	long := strings.Repeat("a", enrich.MaxTextBytes-1) + "ü" + "tail" // ü straddles the limit
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"ascii bytes", []byte("ge-0/0/1"), "ge-0/0/1"},
		{"utf-8 bytes", []byte("Büro uplink"), "Büro uplink"},
		{"latin-1 bytes", []byte("B\xfcro uplink"), "B\uFFFDro uplink"},
		{"invalid run", []byte("x\xff\xfe\xfdy"), "x\uFFFDy"},
		{"trailing NULs", []byte("eth0\x00\x00"), "eth0"},
		{"latin-1 and NULs", []byte("caf\xe9\x00"), "caf\uFFFD"},
		{"string", "B\xfcro", "B\uFFFDro"},
		{"long, cut on a rune boundary", []byte(long), strings.Repeat("a", enrich.MaxTextBytes-1)},
		{"not a string", 42, ""},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := str(gosnmp.SnmpPDU{Type: gosnmp.OctetString, Value: tt.value})
			if got != tt.want {
				t.Errorf("str(%q) = %q, want %q", tt.value, got, tt.want)
			}
			if !utf8.ValidString(got) || len(got) > enrich.MaxTextBytes {
				t.Errorf("str(%q) = %q: invalid UTF-8 or %d bytes", tt.value, got, len(got))
			}
		})
	}
}

// silentSocket binds addr:port and reads requests without answering, so
// a poll of it lasts its timeout.
func silentSocket(t *testing.T, addr netip.Addr, port int) {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
	if err != nil {
		t.Fatalf("binding %s:%d: %v", addr, port, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			if _, _, err := conn.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
}

// TestPollerForgetsExportersTheSourceDropped holds that the SNMP state (the
// poller's schedule and the store's polled interfaces and poll statuses,
// three series each) is bounded by what the exporter source lists (the
// health table, bounded by max_exporters): an exporter it no longer lists
// is forgotten at the next check, the result of a poll of it still in
// flight is dropped, and a churn of spoofed exporters leaves only the
// current ones.
func TestPollerForgetsExportersTheSourceDropped(t *testing.T) {
	free := testkit.FreePort(t, "udp")
	port, _ := strconv.Atoi(free[strings.LastIndexByte(free, ':')+1:])
	a, b := netip.MustParseAddr("127.0.0.21"), netip.MustParseAddr("127.0.0.22")
	silentSocket(t, a, port)
	silentSocket(t, b, port)

	var mu sync.Mutex
	var listed []netip.Addr
	list := func(as ...netip.Addr) { mu.Lock(); listed = as; mu.Unlock() }
	source := func() []netip.Addr { mu.Lock(); defer mu.Unlock(); return slices.Clone(listed) }

	cfg := Config{
		Exporters: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Port: port, Community: "public", Version: "2c",
		Interval: time.Hour, Timeout: 300 * time.Millisecond, Retries: 0, Concurrency: 64,
	}
	store := enrich.NewInterfaces()
	p := New(cfg, store, source, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now()
	check := func(step string, want ...netip.Addr) {
		t.Helper()
		p.polls.Wait()
		var got []netip.Addr
		for _, st := range store.PollStatuses() {
			got = append(got, st.Exporter)
		}
		slices.SortFunc(want, netip.Addr.Compare)
		if !slices.Equal(got, want) {
			t.Errorf("%s: exporters with SNMP state = %v, want %v", step, got, want)
		}
		p.mu.Lock()
		sched := slices.SortedFunc(maps.Keys(p.next), netip.Addr.Compare)
		p.mu.Unlock()
		if !slices.Equal(sched, want) {
			t.Errorf("%s: exporters scheduled = %v, want %v", step, sched, want)
		}
	}

	// a is being polled (its agent is silent) when the source drops it.
	list(a)
	p.startDue(ctx, now)
	list(b)
	p.startDue(ctx, now)
	check("a dropped while polled", b)
	if st := store.PollStatuses(); len(st) != 1 || st[0].Failures != 1 {
		t.Errorf("b's status = %+v, want one failure", st)
	}

	// Spoofed exporters come and go: only the ones listed keep state.
	// Nothing answers on these addresses, so their polls fail at once.
	for round := range 10 {
		now = now.Add(2 * time.Minute) // every exporter is due again
		var batch []netip.Addr
		for i := range 5 {
			batch = append(batch, netip.MustParseAddr(fmt.Sprintf("127.0.%d.%d", 100+round, i+1)))
		}
		list(batch...)
		p.startDue(ctx, now)
		check(fmt.Sprintf("round %d", round), batch...)
	}

	// After a reload (the schedule starts afresh), exporters the source no
	// longer lists are still forgotten; one outside the prefixes is too.
	p.SetConfig(cfg)
	list(netip.MustParseAddr("192.0.2.1"))
	p.startDue(ctx, now)
	check("after SetConfig")
}

// TestExportersMatchZonedAddress: a link-local exporter is tracked with its
// zone (fe80::1%eth0, the link its datagrams came from), and a prefix has
// none: netip's Contains is false for every zoned address, so
// enrich.snmp.exporters: [fe80::/10] never polled one (and Retain forgot
// its interfaces), while allowed_exporters and sampling.overrides match it.
func TestExportersMatchZonedAddress(t *testing.T) {
	cfg := Config{Exporters: []netip.Prefix{netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("192.0.2.0/24")}}
	for _, a := range []string{"fe80::1%eth0", "fe80::2", "::ffff:192.0.2.1", "192.0.2.1"} {
		if !cfg.wants(netip.MustParseAddr(a)) {
			t.Errorf("exporter %s is not matched by %v", a, cfg.Exporters)
		}
	}
	if a := netip.MustParseAddr("2001:db8::1%eth0"); cfg.wants(a) {
		t.Errorf("exporter %s is matched by %v", a, cfg.Exporters)
	}
}

func TestSpeed(t *testing.T) {
	tests := []struct {
		name               string
		ifSpeed, highSpeed uint64
		want               uint64
	}{
		{"ifSpeed exact below its ceiling", 1_000_000_000, 1000, 1_000_000_000},
		{"ifSpeed alone", 100_000_000, 0, 100_000_000},
		{"ceiling: ifHighSpeed states it", 1<<32 - 1, 10_000, 10_000_000_000},
		{"ifSpeed missing", 0, 40_000, 40_000_000_000},
		{"ceiling without ifHighSpeed is unknown", 1<<32 - 1, 0, 0},
		{"nothing known", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := speed(tt.ifSpeed, tt.highSpeed); got != tt.want {
				t.Errorf("speed(%d, %d) = %d, want %d", tt.ifSpeed, tt.highSpeed, got, tt.want)
			}
		})
	}
}
