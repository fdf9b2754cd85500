package testkit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testSpec is small enough for seconds-long runs and has IPv6 and markers
// (sfprobe runs take SfprobeMarkers instead).
var testSpec = Spec{Seed: 7, Flows: 40, Packets: 3000, IPv6: true, Markers: 70}

func writeTestPcap(t *testing.T, spec Spec) (string, Truth) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "traffic.pcap")
	truth, err := WritePcap(path, spec)
	if err != nil {
		t.Fatalf("WritePcap: %v", err)
	}
	return path, truth
}

// keep returns a directory for captured datagrams when TESTKIT_KEEP names
// one, so they can be inspected with tshark afterwards.
func keep(t *testing.T, c *Capture, name string) {
	t.Helper()
	dir := os.Getenv("TESTKIT_KEEP")
	if dir == "" {
		return
	}
	p := filepath.Join(dir, name+".pcap")
	if err := c.WritePcap(p); err != nil {
		t.Errorf("keep capture: %v", err)
		return
	}
	t.Logf("kept %d datagrams in %s (udp port %d)", c.Len(), p, c.AddrPort().Port())
}

func TestGeneratePcapDeterministic(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"defaults", Spec{}},
		{"ipv6 markers", testSpec},
		{"tiny", Spec{Seed: 3, Flows: 1, Packets: 1, Hosts: 1}},
		{"many flows", Spec{Seed: 9, Flows: 500, Packets: 2000, IPv6: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a, b bytes.Buffer
			ta, err := GeneratePcap(&a, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := GeneratePcap(&b, tt.spec); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatal("same spec gave different bytes")
			}
			other := tt.spec
			other.Seed++
			var c bytes.Buffer
			if _, err := GeneratePcap(&c, other); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(a.Bytes(), c.Bytes()) {
				t.Error("different seeds gave the same bytes")
			}
			checkTruthConsistent(t, ta, tt.spec.withDefaults())
		})
	}
}

func checkTruthConsistent(t *testing.T, tr Truth, spec Spec) {
	t.Helper()
	if got := len(tr.Frames); got != spec.Packets {
		t.Errorf("frames = %d, want %d", got, spec.Packets)
	}
	if got := len(tr.Markers); got != spec.Markers {
		t.Errorf("markers = %d, want %d", got, spec.Markers)
	}
	if got := len(tr.ByFlow); got != spec.Flows {
		t.Errorf("flows = %d, want %d", got, spec.Flows)
	}
	for name, m := range map[string]Counter{
		"src": sumMap(tr.BySrc), "dst": sumMap(tr.ByDst), "proto": sumMap(tr.ByProto),
		"app": sumMap(tr.ByApp), "flow": sumMap(tr.ByFlow),
	} {
		if m != tr.Total {
			t.Errorf("sum by %s = %+v, want total %+v", name, m, tr.Total)
		}
	}
	for i, f := range tr.Frames {
		if f.Index != i || f.FrameLen != f.IPBytes+14 || f.FrameLen < 60 || f.IPBytes > 1500 {
			t.Fatalf("frame %d: %+v", i, f)
		}
		if i > 0 && !f.Time.After(tr.Frames[i-1].Time) {
			t.Fatalf("frame %d: time does not increase", i)
		}
	}
}

func sumMap[K comparable](m map[K]Counter) Counter {
	var c Counter
	for _, v := range m {
		c.Packets += v.Packets
		c.Bytes += v.Bytes
		c.FrameBytes += v.FrameBytes
	}
	return c
}

func TestTopSourcesHeavyTailed(t *testing.T) {
	_, tr := writeTestPcap(t, testSpec)
	var v4 []netip.Addr
	for _, a := range tr.TopSources() {
		if a.Is4() {
			v4 = append(v4, a)
		}
	}
	if len(v4) != 6 {
		t.Fatalf("IPv4 sources = %v, want 6", v4)
	}
	for i, a := range v4 {
		if want := netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)}); a != want {
			t.Errorf("top IPv4 source %d = %s, want %s", i, a, want)
		}
		// Each host carries clearly more than the next: 1.3x or more.
		if i > 0 && 10*tr.BySrc[v4[i-1]].Bytes < 13*tr.BySrc[a].Bytes {
			t.Errorf("%s (%d B) is not clearly above %s (%d B)", v4[i-1], tr.BySrc[v4[i-1]].Bytes, a, tr.BySrc[a].Bytes)
		}
	}
	for _, app := range []AppKey{{ProtoTCP, 443}, {ProtoTCP, 80}, {ProtoUDP, 53}, {ProtoICMP, 0}} {
		if tr.ByApp[app].Packets == 0 {
			t.Errorf("no traffic for %+v", app)
		}
	}
}

func TestSampledEvery(t *testing.T) {
	_, tr := writeTestPcap(t, testSpec)
	tests := []struct {
		n           int
		wantPackets uint64
		wantMarkers int
	}{
		{0, 3000, 70},
		{1, 3000, 70},
		{10, 300, 7},
		{7, 429, 10}, // indexes 0..2996 step 7; markers 3003..3066
		{3000, 1, 1},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.n), func(t *testing.T) {
			s := tr.SampledEvery(tt.n)
			if s.Total.Packets != tt.wantPackets || len(s.Markers) != tt.wantMarkers {
				t.Errorf("SampledEvery(%d) = %d packets, %d markers; want %d, %d", tt.n, s.Total.Packets, len(s.Markers), tt.wantPackets, tt.wantMarkers)
			}
			var bytes uint64
			for _, f := range tr.Frames {
				if tt.n <= 1 || f.Index%tt.n == 0 {
					bytes += uint64(f.IPBytes)
				}
			}
			if s.Total.Bytes != bytes {
				t.Errorf("bytes = %d, want %d", s.Total.Bytes, bytes)
			}
		})
	}
}

// TestPcapWithTshark checks the file and the checksums with an independent
// reader.
func TestPcapWithTshark(t *testing.T) {
	SkipIfMissing(t, "tshark")
	path, tr := writeTestPcap(t, testSpec)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-r", path, "-n",
		"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-T", "fields", "-E", "separator=,", "-e", "ip.src", "-e", "ip.len", "-e", "ipv6.plen",
		"-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "udp.checksum.status",
		"-e", "frame.len").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var c Counter
	var markers int
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, line := range lines {
		f := strings.Split(line, ",")
		if f[0] == MarkerSrc.String() {
			markers++
			continue
		}
		ipLen, _ := strconv.Atoi(f[1])
		if f[2] != "" {
			plen, _ := strconv.Atoi(f[2])
			ipLen = plen + 40
		}
		for _, st := range f[3:6] {
			if st != "" && st != "1" { // 1 = good
				t.Fatalf("line %d: checksum status %q: %s", i, st, line)
			}
		}
		fl, _ := strconv.Atoi(f[6])
		c.Packets++
		c.Bytes += uint64(ipLen)
		c.FrameBytes += uint64(fl)
	}
	if c != tr.Total || markers != len(tr.Markers) {
		t.Errorf("tshark: %+v and %d markers, truth %+v and %d markers", c, markers, tr.Total, len(tr.Markers))
	}
	// Every checksum must verify: ask tshark for the bad ones.
	bad, err := exec.CommandContext(ctx, "tshark", "-r", path, "-n",
		"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-Y", "ip.checksum.status==0 || tcp.checksum.status==0 || udp.checksum.status==0 || icmp.checksum.status==0").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if len(bytes.TrimSpace(bad)) != 0 {
		t.Errorf("frames with bad checksums:\n%s", bad)
	}
}

// runCaptured runs an exporter against a new Capture and returns the
// datagrams once the exporter exited and the socket went quiet.
func runCaptured(t *testing.T, ctx context.Context, name string, exporter func(target string) error) []Datagram {
	t.Helper()
	c, err := NewCapture(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := exporter(c.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitQuiet(ctx, 1, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d datagrams in %v (SO_RCVBUF %d)", name, c.Len(), time.Since(start).Round(time.Millisecond), c.ReadBuffer())
	keep(t, c, name)
	return c.Datagrams()
}

// normalise makes nfdump's keys comparable with the Truth's: ICMP ports are
// the type/code in NetFlow, 0 in the Truth.
func normalise(k FlowKey) FlowKey {
	if k.Proto == ProtoICMP || k.Proto == ProtoICMPv6 {
		k.SrcPort, k.DstPort = 0, 0
	}
	return k
}

// scale multiplies every counter of t by n, as nfcapd does with the
// sampling rate of a NetFlow v5 header.
func scale(t Truth, n uint64) Truth {
	out := Truth{Total: t.Total, ByFlow: map[FlowKey]Counter{}}
	out.Total.Packets *= n
	out.Total.Bytes *= n
	for k, c := range t.ByFlow {
		c.Packets *= n
		c.Bytes *= n
		out.ByFlow[k] = c
	}
	return out
}

// compareFlows checks nfdump's records flow by flow against want.
func compareFlows(t *testing.T, recs []NfdumpRecord, want Truth) {
	t.Helper()
	got := map[FlowKey]Counter{}
	for _, r := range recs {
		if r.Src == MarkerSrc {
			continue
		}
		k := normalise(r.FlowKey)
		c := got[k]
		c.Packets += r.Packets
		c.Bytes += r.Bytes
		got[k] = c
	}
	for k, w := range want.ByFlow {
		g := got[k]
		if g.Packets != w.Packets || g.Bytes != w.Bytes {
			t.Errorf("flow %v: got %d packets %d bytes, want %d, %d", k, g.Packets, g.Bytes, w.Packets, w.Bytes)
		}
		delete(got, k)
	}
	for k, g := range got {
		t.Errorf("unexpected flow %v: %+v", k, g)
	}
}

func TestSoftflowdAgainstNfdump(t *testing.T) {
	SkipIfMissing(t, "softflowd", "nfcapd", "nfdump")
	path, truth := writeTestPcap(t, testSpec)
	tests := []struct {
		version, sampling int
	}{
		{5, 0}, {9, 0}, {10, 0},
		{5, 10}, {9, 10}, {10, 10},
		{9, 7},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("v%d_s%d", tt.version, tt.sampling)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			dgrams := runCaptured(t, ctx, "softflowd_"+name, func(target string) error {
				return RunSoftflowd(ctx, path, target, tt.version, tt.sampling)
			})
			recs, err := NfdumpDatagrams(ctx, dgrams)
			if err != nil {
				t.Fatal(err)
			}
			want := truth.SoftflowdSampled(tt.version, tt.sampling)
			got := SumNfdump(recs)
			if tt.version == 5 && tt.sampling > 1 {
				// nfcapd multiplies v5 counts by the header's rate.
				want = scale(want, uint64(tt.sampling))
			}
			if got.Packets != want.Total.Packets || got.Bytes != want.Total.Bytes {
				t.Errorf("nfdump total: %d packets %d bytes, want %d, %d", got.Packets, got.Bytes, want.Total.Packets, want.Total.Bytes)
			}
			compareFlows(t, recs, want)
		})
	}
}

func TestPmacctNfprobeAgainstNfdump(t *testing.T) {
	SkipIfMissing(t, "pmacctd", "nfcapd", "nfdump")
	path, truth := writeTestPcap(t, testSpec)
	tests := []struct {
		version, sampling int
	}{
		{5, 0}, {9, 0}, {10, 0},
		{9, 10}, // random: only a plausibility check
	}
	for _, tt := range tests {
		name := fmt.Sprintf("v%d_s%d", tt.version, tt.sampling)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
			defer cancel()
			dgrams := runCaptured(t, ctx, "nfprobe_"+name, func(target string) error {
				return RunPmacctNfprobe(ctx, path, target, tt.version, tt.sampling)
			})
			recs, err := NfdumpDatagrams(ctx, dgrams)
			if err != nil {
				t.Fatal(err)
			}
			want := truth
			if tt.version == 5 {
				want = want.IPv4Only()
			}
			got := SumNfdump(recs)
			if tt.sampling > 1 {
				// 1-in-10 at random: expect 300 +- 30% packets.
				exp := want.Total.Packets / uint64(tt.sampling)
				if got.Packets < exp*7/10 || got.Packets > exp*13/10 {
					t.Errorf("sampled packets %d, want about %d", got.Packets, exp)
				}
				return
			}
			if got.Packets != want.Total.Packets || got.Bytes != want.Total.Bytes {
				t.Errorf("nfdump total: %d packets %d bytes, want %d, %d", got.Packets, got.Bytes, want.Total.Packets, want.Total.Bytes)
			}
			compareFlows(t, recs, want)
		})
	}
}

// sflowSample is the part of an sFlow v5 flow sample the tests check.
type sflowSample struct {
	rate, pool  uint32
	frameLength uint32
	src         netip.Addr
}

// parseSflow decodes the flow samples with a raw packet header record from
// an sFlow v5 datagram (IPv4 agent). Just enough for these tests.
func parseSflow(b []byte) ([]sflowSample, error) {
	r := &xdr{b: b}
	if v := r.u32(); v != 5 {
		return nil, fmt.Errorf("sflow version %d", v)
	}
	if at := r.u32(); at != 1 {
		return nil, fmt.Errorf("agent address type %d", at)
	}
	r.skip(4 + 4 + 4 + 4) // agent, sub-agent, sequence, uptime
	n := r.u32()
	var out []sflowSample
	for range n {
		typ, length := r.u32(), r.u32()
		body := &xdr{b: r.take(int(length))}
		if typ != 1 { // only flow samples
			continue
		}
		var s sflowSample
		body.skip(4 + 4) // sequence, source id
		s.rate, s.pool = body.u32(), body.u32()
		body.skip(4 + 4 + 4) // drops, input, output
		nrec := body.u32()
		for range nrec {
			format, rlen := body.u32(), body.u32()
			rec := &xdr{b: body.take(int(rlen))}
			if format != 1 {
				continue
			}
			rec.skip(4) // header protocol
			s.frameLength = rec.u32()
			rec.skip(4) // stripped
			hdr := rec.take(int(rec.u32()))
			if len(hdr) >= 34 && binary.BigEndian.Uint16(hdr[12:]) == 0x0800 {
				s.src = netip.AddrFrom4([4]byte(hdr[26:30]))
			} else if len(hdr) >= 54 && binary.BigEndian.Uint16(hdr[12:]) == 0x86dd {
				s.src = netip.AddrFrom16([16]byte(hdr[22:38]))
			}
		}
		out = append(out, s)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

type xdr struct {
	b   []byte
	err error
}

func (x *xdr) take(n int) []byte {
	padded := (n + 3) &^ 3
	if x.err != nil || n < 0 || padded > len(x.b) {
		x.err = errors.New("sflow: truncated")
		return nil
	}
	v := x.b[:n]
	x.b = x.b[padded:]
	return v
}

func (x *xdr) u32() uint32 {
	v := x.take(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (x *xdr) skip(n int) { x.take(n) }

func TestPmacctSfprobe(t *testing.T) {
	SkipIfMissing(t, "pmacctd")
	spec := testSpec
	spec.Markers = SfprobeMarkers(10)
	path, truth := writeTestPcap(t, spec)
	tests := []struct{ rate int }{{0}, {10}}
	for _, tt := range tests {
		name := fmt.Sprintf("rate%d", tt.rate)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
			defer cancel()
			dgrams := runCaptured(t, ctx, "sfprobe_"+name, func(target string) error {
				return RunPmacctSfprobe(ctx, path, target, tt.rate)
			})
			var traffic, markers int
			var frameBytes uint64
			var lastPool uint32
			// SfprobeMarkers relies on the samples per datagram and the
			// largest skip between samples; check both.
			maxSkip := uint32(2*max(tt.rate, 1) - 1)
			for i, d := range dgrams {
				samples, err := parseSflow(d.Data)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if len(samples) > SfprobeMaxSamplesPerDatagram {
					t.Errorf("datagram %d has %d samples, SfprobeMaxSamplesPerDatagram is %d", i, len(samples), SfprobeMaxSamplesPerDatagram)
				}
				for _, s := range samples {
					if want := uint32(max(tt.rate, 1)); s.rate != want {
						t.Errorf("sampling rate %d, want %d", s.rate, want)
					}
					if s.pool <= lastPool || s.pool-lastPool > maxSkip {
						t.Errorf("sample pool %d after %d: want 1 to %d more", s.pool, lastPool, maxSkip)
					}
					lastPool = s.pool
					if s.src == MarkerSrc {
						markers++
						continue
					}
					traffic++
					frameBytes += uint64(s.frameLength)
				}
			}
			if markers == 0 {
				t.Errorf("no marker samples arrived: traffic samples may have been lost at exit")
			}
			if tt.rate <= 1 {
				// Every frame is a sample; frame length counts 4 bytes of FCS.
				if uint64(traffic) != truth.Total.Packets {
					t.Errorf("samples = %d, want %d", traffic, truth.Total.Packets)
				}
				if want := truth.Total.FrameBytes + 4*truth.Total.Packets; frameBytes != want {
					t.Errorf("frame bytes = %d, want %d (frames + 4 B FCS each)", frameBytes, want)
				}
				return
			}
			exp := int(truth.Total.Packets) / tt.rate
			if traffic < exp*7/10 || traffic > exp*13/10 {
				t.Errorf("samples = %d, want about %d", traffic, exp)
			}
		})
	}
}

func TestSkipIfMissing(t *testing.T) {
	tests := []struct {
		name     string
		ci       string
		bin      string
		wantSkip bool
		wantFail bool
	}{
		{"present", "", "sh", false, false},
		{"missing local", "", "no-such-binary-testkit", true, false},
		{"missing CI", "true", "no-such-binary-testkit", false, true},
		{"missing CI=false", "false", "no-such-binary-testkit", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			ft := &fakeTB{TB: t}
			SkipIfMissing(ft, tt.bin)
			if ft.skipped != tt.wantSkip || ft.failed != tt.wantFail {
				t.Errorf("skipped=%v failed=%v, want %v %v", ft.skipped, ft.failed, tt.wantSkip, tt.wantFail)
			}
		})
	}
}

// fakeTB records Skipf and Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestSampledEveryIf(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	// Frames 0..9; IPv6 at 0, 3 and 4.
	var frames []Frame
	for i := range 10 {
		src := v4
		if i == 0 || i == 3 || i == 4 {
			src = v6
		}
		frames = append(frames, Frame{Index: i, FlowKey: FlowKey{Src: src}, IPBytes: 100 + i})
	}
	tr := newTruth(frames, nil)
	onlyV4 := func(f Frame) bool { return f.Src.Is4() }
	tests := []struct {
		name   string
		n      int
		accept func(Frame) bool
		want   []int
	}{
		{"all every 3", 3, func(Frame) bool { return true }, []int{0, 3, 6, 9}},
		// Slot 0 hits IPv6: frame 1 takes it; then 4 (IPv6) holds the slot
		// open until 5; next slot is 8.
		{"v4 every 3", 3, onlyV4, []int{1, 5, 8}},
		{"v4 unsampled", 1, onlyV4, []int{1, 2, 5, 6, 7, 8, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tr.SampledEveryIf(tt.n, tt.accept)
			var idx []int
			for _, f := range got.Frames {
				idx = append(idx, f.Index)
			}
			if fmt.Sprint(idx) != fmt.Sprint(tt.want) {
				t.Errorf("frames %v, want %v", idx, tt.want)
			}
		})
	}
}

// TestScrapeTimesOut: a server that accepts a scrape and never answers
// fails it after the client's timeout rather than hanging the test.
func TestScrapeTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	old := scrapeClient.Timeout
	scrapeClient.Timeout = 200 * time.Millisecond
	defer func() { scrapeClient.Timeout = old }()
	_, err = Scrape("http://" + ln.Addr().String() + "/metrics")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Scrape of a silent server: err = %v, want a timeout", err)
	}
}
