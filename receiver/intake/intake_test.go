package intake

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

func v5(seq uint32, n int, bytes uint32) []byte {
	b := make([]byte, 24+48*n)
	binary.BigEndian.PutUint16(b, 5)
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	binary.BigEndian.PutUint32(b[16:], seq)
	for i := 0; i < n; i++ {
		r := b[24+48*i:]
		copy(r, []byte{10, 0, 0, byte(i + 1), 10, 0, 1, 1})
		binary.BigEndian.PutUint32(r[16:], 1)     // packets
		binary.BigEndian.PutUint32(r[20:], bytes) // octets
		r[38] = 6
	}
	return b
}

func startIntake(t *testing.T, cfg Config) (*Intake, *core.Core) {
	t.Helper()
	c := core.New(core.Config{MaxExporters: 16})
	if cfg.Listen == nil {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	in := New(cfg, c, slog.New(slog.DiscardHandler))
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return in, c
}

func send(t *testing.T, to net.Addr, dgs ...[]byte) {
	t.Helper()
	conn, err := net.Dial("udp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, d := range dgs {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func totalBytes(c *core.Core) uint64 {
	var sum uint64
	for _, p := range c.Totals().Collect(nil) {
		sum += p.Bytes
	}
	return sum
}

func TestIntakeCountsOverRealUDP(t *testing.T) {
	in, c := startIntake(t, Config{Sockets: 2, ReceiveBuffer: 1 << 20})
	addrs := in.Addrs()
	if len(addrs) != 1 {
		t.Fatalf("addrs = %v", addrs)
	}
	var dgs [][]byte
	for i := 0; i < 50; i++ {
		dgs = append(dgs, v5(uint32(3*i), 3, 1000))
	}
	dgs = append(dgs, []byte("garbage"))
	send(t, addrs[0], dgs...)
	waitFor(t, "150 records", func() bool { return totalBytes(c) == 150*1000 })
	ex := c.Exporters().Get(netip.MustParseAddr("127.0.0.1"))
	waitFor(t, "the garbage datagram", func() bool { return ex.DecodeErrors[health.ReasonUnknownVersion].Load() == 1 })
	if ex.SequenceGaps.Load() != 0 {
		t.Errorf("sequence gaps = %d over loopback", ex.SequenceGaps.Load())
	}
	st := in.Stats()
	if len(st) != 2 || st[0].ReceiveBuffer <= 0 {
		t.Fatalf("socket stats = %+v", st)
	}
	// Every datagram handled (the garbage one too) is observed once, with
	// its batch, by the processing-time histogram.
	waitFor(t, "51 latency observations", func() bool { _, n, _ := in.Latency().Snapshot(); return n == 51 })
	if _, _, sum := in.Latency().Snapshot(); sum <= 0 || sum > 51*5 {
		t.Errorf("processing time sum = %v s for 51 datagrams", sum)
	}
}

func TestAllowlistDropsOthers(t *testing.T) {
	in, c := startIntake(t, Config{AllowedExporters: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	send(t, in.Addrs()[0], v5(0, 1, 100))
	waitFor(t, "refused datagram", func() bool {
		return c.Exporters().Untracked().DecodeErrors[health.ReasonNotAllowed].Load() == 1
	})
	if totalBytes(c) != 0 || c.Exporters().Len() != 0 {
		t.Fatalf("refused exporter counted: %d bytes, %d exporters", totalBytes(c), c.Exporters().Len())
	}
}

func TestStopReleasesPort(t *testing.T) {
	in, _ := startIntake(t, Config{Sockets: 2})
	addr := in.Addrs()[0].String()
	in.Stop()
	// Stats then reports the sockets as they closed, for a last report.
	if st := in.Stats(); len(st) != 2 || st[0].ReceiveBuffer <= 0 || st[1].Index != 1 {
		t.Errorf("Stats after Stop = %+v, want the two sockets' last figures", st)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("port still bound after Stop: %v", err)
	}
	pc.Close()
}

// TestDualStackSocket listens on the wildcard address (an IPv6 socket that
// also takes IPv4) and checks an IPv4 exporter is seen as its IPv4 address.
func TestDualStackSocket(t *testing.T) {
	in, c := startIntake(t, Config{Listen: []string{":0"}, Sockets: 1})
	port := in.Addrs()[0].(*net.UDPAddr).Port
	send(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, v5(0, 2, 700))
	waitFor(t, "records over the dual-stack socket", func() bool { return totalBytes(c) == 1400 })
	if ex := c.Exporters().Get(netip.MustParseAddr("127.0.0.1")); ex.Records[1].Load() != 2 {
		t.Fatalf("exporter 127.0.0.1 has %d v5 records", ex.Records[1].Load())
	}
}

// TestConfigAsGiven: with Sockets 0 the intake binds one socket per CPU but
// reports its configuration as given, so a reload of the same configuration
// compares equal and does not rebind (which would cost new sockets and
// buffers for nothing).
func TestConfigAsGiven(t *testing.T) {
	in, _ := startIntake(t, Config{})
	if got := in.Config().Sockets; got != 0 {
		t.Errorf("Config().Sockets = %d, want 0 as configured", got)
	}
	if got, want := len(in.Stats()), runtime.GOMAXPROCS(0); got != want {
		t.Errorf("%d sockets, want one per CPU (%d)", got, want)
	}
}

// TestPortSharedWithAnotherIntakeFails: SO_REUSEPORT lets a second
// flowmetrics (or Collector receiver) of the same user bind a port already
// in use, and the kernel would split the exporters between the two; Start
// must refuse, and leave the first intake's traffic whole.
func TestPortSharedWithAnotherIntakeFails(t *testing.T) {
	first, c := startIntake(t, Config{Listen: []string{"127.0.0.1:0"}, Sockets: 2})
	port := first.Addrs()[0].(*net.UDPAddr).Port
	for _, listen := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf(":%d", port), fmt.Sprintf("0.0.0.0:%d", port)} {
		second := New(Config{Listen: []string{listen}, Sockets: 1}, core.New(core.Config{MaxExporters: 4}), slog.New(slog.DiscardHandler))
		err := second.Start()
		if err == nil {
			second.Stop()
			t.Fatalf("a second intake on %s started beside the first", listen)
		}
		if !strings.Contains(err.Error(), "also bound") {
			t.Errorf("%s: error %q does not say the port is taken", listen, err)
		}
		if len(second.Stats()) != 0 {
			t.Errorf("%s: sockets left bound after the failed Start", listen)
		}
	}
	for i := range 20 {
		send(t, first.Addrs()[0], v5(uint32(i), 1, 100))
	}
	waitFor(t, "all 20 datagrams at the first intake", func() bool { return totalBytes(c) == 2000 })
}

// TestStartReplacingSharesPort: a reload binds the new sockets beside the
// old ones (so no datagram is lost while it switches); that is not a
// conflict, the old sockets' decoders are retired, and once the old intake
// stops the new one gets the traffic.
func TestStartReplacingSharesPort(t *testing.T) {
	old, _ := startIntake(t, Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1})
	addr := old.Addrs()[0].String()
	c := core.New(core.Config{MaxExporters: 4})
	in := New(Config{Listen: []string{addr}, Sockets: 2}, c, slog.New(slog.DiscardHandler))
	for _, s := range old.sockets {
		if s.dec.Retired() {
			t.Fatal("a decoder retired before its intake was replaced")
		}
	}
	if err := in.StartReplacing(old); err != nil {
		t.Fatalf("replacing intake: %v", err)
	}
	defer in.Stop()
	// The old sockets' decoders no longer set their limits on exporters.
	for _, s := range old.sockets {
		if !s.dec.Retired() {
			t.Error("an old socket's decoder is not retired")
		}
	}
	for _, s := range in.sockets {
		if s.dec.Retired() {
			t.Error("a new socket's decoder is retired")
		}
	}
	old.Stop()
	send(t, in.Addrs()[0], v5(0, 3, 100))
	waitFor(t, "records at the new intake", func() bool { return totalBytes(c) == 300 })
}

func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"0100007F:0801", "127.0.0.1:2049"},
		{"00000000:07D3", "0.0.0.0:2003"},
		{"00000000000000000000000001000000:0035", "[::1]:53"},
		{"0000000000000000FFFF00000100007F:0801", "127.0.0.1:2049"},
		{"00000000000000000000000000000000:18EB", "[::]:6379"},
	} {
		got, ok := parseProcAddr(tc.in)
		if !ok || got.String() != tc.want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:zz", "01007F:0801", "XX00007F:0801"} {
		if _, ok := parseProcAddr(bad); ok {
			t.Errorf("parseProcAddr(%q) accepted", bad)
		}
	}
}

// TestExporterFloodIsLogged: past max_exporters each new source address
// makes the table forget the least recently seen exporter; that is counted
// and logged, at most once per log interval.
func TestExporterFloodIsLogged(t *testing.T) {
	c := core.New(core.Config{MaxExporters: 2})
	var logs testkit.SyncBuffer
	in := New(Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1}, c, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{AddSource: true})))
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	for i := 1; i <= 4; i++ {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(10+i))}, in.Addrs()[0].(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(v5(0, 1, 100)); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		// One at a time, so that the order of first sight is known.
		waitFor(t, fmt.Sprintf("%d records", i), func() bool { return totalBytes(c) == uint64(100*i) })
	}
	if got := c.Exporters().Evicted(); got != 2 {
		t.Fatalf("evicted %d exporters, want 2", got)
	}
	out := logs.String()
	if n := strings.Count(out, "too many exporters"); n != 1 {
		t.Fatalf("logged the eviction %d times, want once (rate-limited):\n%s", n, out)
	}
	var line string
	for l := range strings.Lines(out) {
		if strings.Contains(l, "too many exporters") {
			line = l
		}
	}
	// source= names the intake's check, not the rate limiter.
	for _, want := range []string{"exporter=127.0.0.13", "forgotten=127.0.0.11", "max_exporters=2", "evicted_total=1", "intake/intake.go:"} {
		if !strings.Contains(line, want) {
			t.Errorf("eviction log lacks %s: %s", want, line)
		}
	}
}

func TestBufferCapped(t *testing.T) {
	for _, tt := range []struct {
		requested, effective int
		want                 bool
	}{
		{32 << 20, 64 << 20, false}, // granted (Linux reports double)
		{32 << 20, 8 << 20, true},   // capped by net.core.rmem_max = 4 MiB
		{32 << 20, 32 << 20, true},  // rmem_max = 16 MiB: half the buffer asked for
		{0, 212992, false},          // the kernel's default was asked for
		{32 << 20, 0, false},        // unknown (getsockopt failed)
	} {
		if got := bufferCapped(tt.requested, tt.effective); got != tt.want {
			t.Errorf("bufferCapped(%d, %d) = %v, want %v", tt.requested, tt.effective, got, tt.want)
		}
	}
}

// TestInterleavedExporters queues the datagrams of three NetFlow v9
// exporters taking turns one by one (template first), then reads them in
// receive batches that each hold all three: handled source by source, every
// exporter's datagrams must still come in the order sent (no sequence gap
// or reset, no data set before its template) and every record be counted.
func TestInterleavedExporters(t *testing.T) {
	const perExporter = 40 // data datagrams each
	c := core.New(core.Config{MaxExporters: 16})
	in, s, target := boundSocket(t, Config{}, c)
	var gens []*flowgen.Generator
	var conns []*net.UDPConn
	var sent uint64 // bytes of every record, unsampled
	for i := range 3 {
		g, err := flowgen.New(flowgen.Config{Protocol: flowgen.V9, Domain: 1, Seed: uint64(i + 1), SamplingRate: 1})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(10+i))}, target)
		if err != nil {
			t.Skipf("no source address 127.0.0.%d here: %v", 10+i, err)
		}
		defer conn.Close()
		gens, conns = append(gens, g), append(conns, conn)
	}
	datagrams := 0
	write := func(conn *net.UDPConn, b []byte) {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		datagrams++
	}
	for i, g := range gens {
		write(conns[i], g.Templates())
	}
	for range perExporter {
		for i, g := range gens {
			b, flows := g.Data(nil)
			for _, f := range flows {
				sent += uint64(f.Bytes)
			}
			write(conns[i], b)
		}
	}
	readAll(t, in, s, datagrams)
	if got := totalBytes(c); got != sent {
		t.Errorf("counted %d bytes, sent %d", got, sent)
	}
	records := uint64(perExporter * flowgen.RecordsPerDatagram(flowgen.V9))
	for i := range gens {
		ex := c.Exporters().Get(netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)}))
		if r := ex.Records[flow.NetFlowV9].Load(); r != records {
			t.Errorf("exporter %v: %d records, want %d", ex.Addr, r, records)
		}
		if g, r, m := ex.SequenceGaps.Load(), ex.SequenceResets.Load(), ex.TemplateMissingSets.Load(); g != 0 || r != 0 || m != 0 {
			t.Errorf("exporter %v: %d sequence gaps, %d resets, %d data sets before their template; want none", ex.Addr, g, r, m)
		}
	}
}

// TestReadErrorsAreRateLimited: a receive error that persists (the
// kernel out of buffers, say) is logged through the rate limiter like the
// others instead of one line per failed call, and the reader waits between
// the failed calls (retrying the first at once, then 1 ms doubling up to
// maxReadBackoff) instead of keeping a core busy; a call that succeeds
// ends the waits.
func TestReadErrorsAreRateLimited(t *testing.T) {
	c := core.New(core.Config{MaxExporters: 2})
	var logs testkit.SyncBuffer
	in := New(Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1}, c, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := in.BindForBenchmark(); err != nil {
		t.Fatal(err)
	}
	s := in.sockets[0]
	var waits []time.Duration
	s.pause = func(d time.Duration) { waits = append(waits, d) }
	// 12 failures, one success (an empty batch), 3 failures, then closed.
	calls := 0
	s.br.recv = func(uintptr) bool {
		calls++
		switch {
		case calls == 13:
			s.br.n = 0
		case calls == 17:
			go s.conn.Close()
			s.br.errno = syscall.ENOBUFS
		case calls > 17:
			return false // wait for the poller, which reports the close
		default:
			s.br.errno = syscall.ENOBUFS
		}
		return true
	}
	in.wg.Add(1)
	in.read(s) // returns once the socket is closed
	ms := time.Millisecond
	want := []time.Duration{ms, 2 * ms, 4 * ms, 8 * ms, 16 * ms, 32 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, 50 * ms, ms, 2 * ms, 4 * ms}
	if !slices.Equal(waits, want) {
		t.Errorf("waits between failed receive calls %v, want %v", waits, want)
	}
	if n := strings.Count(logs.String(), "reading datagrams"); n != 1 {
		t.Fatalf("%d failed receive calls logged %d lines, want 1", calls, n)
	}
}

// boundSocket binds an intake of cfg on one socket at 127.0.0.1 (a 4 MiB
// buffer) without starting its reader, so that a test queues datagrams and
// reads them with readBatch; it returns the socket and its address.
func boundSocket(t *testing.T, cfg Config, c *core.Core) (*Intake, *socket, *net.UDPAddr) {
	t.Helper()
	cfg.Listen, cfg.Sockets, cfg.ReceiveBuffer = []string{"127.0.0.1:0"}, 1, 4<<20
	in := New(cfg, c, slog.New(slog.DiscardHandler))
	socks, err := in.bind(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return in, socks[0], socks[0].conn.LocalAddr().(*net.UDPAddr)
}

// readAll has in read n datagrams queued on s, in receive batches.
func readAll(t *testing.T, in *Intake, s *socket, n int) {
	t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < n; {
		k, err := in.readBatch(s)
		if err != nil {
			t.Fatalf("read %d of %d datagrams: %v", got, n, err)
		}
		got += k
	}
}

// TestSpoofedFloodKeepsRealExporters: a NetFlow v9 exporter that has sent
// more than one datagram keeps its templates and counters through a flood
// of one-off sources eight times max_exporters (UDP sources are easy to
// spoof): the flood's sources forget one another. With a plain LRU the
// flood forgot the exporter, whose next data sets then waited for a
// template (up to 30 minutes on some routers) and whose counters restarted.
func TestSpoofedFloodKeepsRealExporters(t *testing.T) {
	const maxExporters, flood = 8, 64
	c := core.New(core.Config{MaxExporters: maxExporters})
	in, s, target := boundSocket(t, Config{}, c)
	realAddr := netip.AddrFrom4([4]byte{127, 0, 0, 20})
	real, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(realAddr, 0)), target)
	if err != nil {
		t.Skipf("no source address %v here: %v", realAddr, err)
	}
	defer real.Close()
	g, err := flowgen.New(flowgen.Config{Protocol: flowgen.V9, Domain: 1, Seed: 1, SamplingRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	datagrams := 0
	write := func(conn *net.UDPConn, b []byte) {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		datagrams++
	}
	var realBytes uint64
	data := func(n int) {
		for range n {
			b, flows := g.Data(nil)
			for _, f := range flows {
				realBytes += uint64(f.Bytes)
			}
			write(real, b)
		}
	}
	write(real, g.Templates())
	data(2)
	for i := range flood {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, byte(1+i))}, target)
		if err != nil {
			t.Skipf("no source address 127.0.1.%d here: %v", 1+i, err)
		}
		write(conn, v5(0, 1, 100))
		conn.Close()
	}
	data(3) // no templates: the exporter's must still be known
	readAll(t, in, s, datagrams)
	ex := c.Exporters().Get(realAddr)
	if r, want := ex.Records[flow.NetFlowV9].Load(), uint64(5*flowgen.RecordsPerDatagram(flowgen.V9)); r != want {
		t.Errorf("exporter %v: %d records, want %d (its counters restarted?)", realAddr, r, want)
	}
	if m := ex.TemplateMissingSets.Load(); m != 0 {
		t.Errorf("exporter %v: %d data sets waited for a template the flood made it forget", realAddr, m)
	}
	if got, want := totalBytes(c), realBytes+flood*100; got != want {
		t.Errorf("counted %d bytes, want %d", got, want)
	}
	// 65 sources in a table of 8: 57 forgotten, all of them the flood's.
	if got := c.Exporters().Evicted(); got != flood+1-maxExporters {
		t.Errorf("evicted %d exporters, want %d", got, flood+1-maxExporters)
	}
}
