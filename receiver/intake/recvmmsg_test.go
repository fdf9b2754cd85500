package intake

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestBatchReader sends datagrams over loopback to IPv4, IPv6 and
// dual-stack sockets and checks what batchReader hands on: every payload
// byte for byte, its source (unmapped on a dual-stack socket), and batches
// of at most the reader's size.
func TestBatchReader(t *testing.T) {
	cases := []struct {
		name, listen, to, from string
	}{
		{"ipv4", "127.0.0.1:0", "127.0.0.1", "127.0.0.1"},
		{"ipv4 other source", "127.0.0.1:0", "127.0.0.1", "127.0.0.9"},
		{"ipv6", "[::1]:0", "::1", "::1"},
		{"dual-stack from ipv4", "[::]:0", "127.0.0.1", "127.0.0.9"},
		{"dual-stack from ipv6", "[::]:0", "::1", "::1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", tc.listen)
			if err != nil {
				t.Skipf("cannot listen on %s here: %v", tc.listen, err)
			}
			conn := pc.(*net.UDPConn)
			defer conn.Close()
			from := netip.MustParseAddr(tc.from)
			port := conn.LocalAddr().(*net.UDPAddr).Port
			dst := &net.UDPAddr{IP: net.ParseIP(tc.to), Port: port}
			out, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IP(from.AsSlice())}, dst)
			if err != nil {
				t.Skipf("cannot send from %s here: %v", from, err)
			}
			defer out.Close()
			const batch, sent = 4, 10
			r, err := newBatchReader(conn, batch, 2048)
			if err != nil {
				t.Fatal(err)
			}
			// Payloads of different sizes, up to the buffer's.
			var want [][]byte
			for i := range sent {
				p := bytes.Repeat([]byte{byte(i + 1)}, 1+i*227)
				want = append(want, p)
				if _, err := out.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			for len(got) < sent {
				n, err := r.read()
				if err != nil {
					t.Fatalf("after %d datagrams: %v", len(got), err)
				}
				if n < 1 || n > batch {
					t.Fatalf("read returned %d datagrams, want 1 to %d", n, batch)
				}
				for i := range n {
					b, addr, ok := r.datagram(i)
					if !ok || addr != from {
						t.Fatalf("datagram %d from %v (ok %v), want %v", len(got), addr, ok, from)
					}
					got = append(got, append([]byte(nil), b...))
				}
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("datagram %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
				}
			}
			// Nothing more queued: the deadline ends the wait.
			if err := conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if n, err := r.read(); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("read on an empty socket = %d, %v; want 0 and a deadline error", n, err)
			}
		})
	}
}

// TestBatchReaderClosed checks that a reader waiting on a socket returns
// net.ErrClosed when the socket is closed (how Stop ends the readers).
func TestBatchReaderClosed(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := newBatchReader(pc.(*net.UDPConn), 2, 64)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.read()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	pc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not return after the socket was closed")
	}
}

// TestBatchReaderSource checks the conversion of the kernel's source
// addresses, including the zone of a link-local IPv6 source (the interface
// the datagram came in on, so fe80::1 on two links is two exporters).
func TestBatchReaderSource(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no loopback interface named lo")
	}
	v4 := func(a string) unix.RawSockaddrAny {
		var sa unix.RawSockaddrAny
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		s.Family, s.Addr = unix.AF_INET, netip.MustParseAddr(a).As4()
		return sa
	}
	v6 := func(a string, scope uint32) unix.RawSockaddrAny {
		var sa unix.RawSockaddrAny
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
		s.Family, s.Addr, s.Scope_id = unix.AF_INET6, netip.MustParseAddr(a).As16(), scope
		return sa
	}
	unix6 := unix.RawSockaddrAny{}
	unix6.Addr.Family = unix.AF_UNIX
	cases := []struct {
		name    string
		sa      unix.RawSockaddrAny
		namelen uint32
		want    string // "" for not an address
	}{
		{"ipv4", v4("192.0.2.7"), unix.SizeofSockaddrInet4, "192.0.2.7"},
		{"ipv4 cut short", v4("192.0.2.7"), 4, ""},
		{"ipv6", v6("2001:db8::1", 0), unix.SizeofSockaddrInet6, "2001:db8::1"},
		{"ipv4-mapped", v6("::ffff:192.0.2.8", 0), unix.SizeofSockaddrInet6, "192.0.2.8"},
		{"link-local with zone", v6("fe80::1", uint32(lo.Index)), unix.SizeofSockaddrInet6, "fe80::1%lo"},
		{"zone of a gone interface", v6("fe80::2", 987654), unix.SizeofSockaddrInet6, "fe80::2%987654"},
		{"ipv6 cut short", v6("2001:db8::1", 0), 20, ""},
		{"not ip", unix6, unix.SizeofSockaddrInet6, ""},
	}
	r := &batchReader{zones: map[uint32]string{}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := r.source(&tc.sa, tc.namelen)
			if tc.want == "" {
				if ok {
					t.Errorf("got %v, want not an address", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tc.want) {
				t.Errorf("got %v (ok %v), want %s", got, ok, tc.want)
			}
		})
	}
	if z, ok := r.zones[987654]; ok {
		t.Errorf("zone cache holds %q for an interface that was not found", z)
	}
	if z := r.zones[uint32(lo.Index)]; z != "lo" {
		t.Errorf("zone cache holds %q for lo", z)
	}
}

// TestBatchReaderRestoresNameLength: the kernel writes each received
// datagram's source address length into its header, and the next read
// must give those headers their full room back, or a longer address
// arriving there is cut short. Header 0 is left as a read that received a
// 4-byte address would leave it (the reader resets only the headers the
// last read used).
func TestBatchReaderRestoresNameLength(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := newBatchReader(pc.(*net.UDPConn), 4, 64)
	if err != nil {
		t.Fatal(err)
	}
	r.n = 1
	r.hdrs[0].hdr.Namelen = 4
	from, err := net.ListenPacket("udp", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	if _, err := from.WriteTo([]byte("x"), pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if n, err := r.read(); n != 1 || err != nil {
		t.Fatalf("read %d datagrams: %v", n, err)
	}
	if want := netip.MustParseAddr("127.0.0.9"); r.addrs[0] != want {
		t.Fatalf("source %v, want %v", r.addrs[0], want)
	}
}

// TestAllowedLinkLocal checks that allowed_exporters matches a link-local
// exporter, whose address comes with the zone of the interface it was
// received on (netip.Prefix.Contains is false for any zoned address).
func TestAllowedLinkLocal(t *testing.T) {
	in := &Intake{}
	in.SetAllowed([]netip.Prefix{netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("192.0.2.0/24")})
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"fe80::1%eth0", true},
		{"fe80::1", true},
		{"2001:db8::1%eth0", false},
		{"192.0.2.9", true},
		{"198.51.100.1", false},
	} {
		if got := in.allowed(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("allowed(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestBySource checks the order bySource hands a read's datagrams on in:
// source by source in the order each first appears, each source's
// datagrams in the order received, every datagram with an IP source once
// and the others (the zero Addr) never.
func TestBySource(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1")
	none := netip.Addr{}
	cases := []struct {
		name  string
		addrs []netip.Addr
		want  []int // datagram indices in the order handed on
	}{
		{"one source", []netip.Addr{a, a, a, a}, []int{0, 1, 2, 3}},
		{"interleaved", []netip.Addr{a, b, a, c, b, a}, []int{0, 2, 5, 1, 4, 3}},
		{"in turn", []netip.Addr{a, b, c, a, b, c}, []int{0, 3, 1, 4, 2, 5}},
		{"not an IP source skipped", []netip.Addr{none, a, none, b, a}, []int{1, 4, 3}},
		{"only non-IP sources", []netip.Addr{none, none}, nil},
		{"empty read", nil, nil},
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r, err := newBatchReader(pc.(*net.UDPConn), 8, 16)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A read as read leaves it: payload i is the byte i.
			r.n = len(tc.addrs)
			for i, ad := range tc.addrs {
				r.addrs[i], r.done[i] = ad, false
				r.bufs[i][0] = byte(i)
				r.hdrs[i].len = 1
			}
			var got []int
			r.bySource(func(p []byte, addr netip.Addr) {
				i := int(p[0])
				if len(p) != 1 || addr != tc.addrs[i] {
					t.Errorf("datagram %d handed on as %d bytes from %v, want 1 from %v", i, len(p), addr, tc.addrs[i])
				}
				got = append(got, i)
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("order %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkBySource is bySource's cost per datagram for a full read from
// one source, from four in turn, and from as many sources as datagrams (a
// flood of spoofed addresses).
func BenchmarkBySource(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	r, err := newBatchReader(pc.(*net.UDPConn), batchSize, 16)
	if err != nil {
		b.Fatal(err)
	}
	for _, sources := range []int{1, 4, batchSize} {
		b.Run(fmt.Sprintf("sources=%d", sources), func(b *testing.B) {
			r.n = batchSize
			for i := range batchSize {
				r.addrs[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i % sources)})
				r.hdrs[i].len = 1
			}
			n := 0
			for b.Loop() {
				clear(r.done)
				r.bySource(func([]byte, netip.Addr) { n++ })
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/datagram")
		})
	}
}
