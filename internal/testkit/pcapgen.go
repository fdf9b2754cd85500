package testkit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"time"
)

// IP protocol numbers used by the generator.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// Marker frames are appended after the traffic when Spec.Markers > 0. They are
// IPv4 UDP from MarkerSrc to MarkerDst port MarkerPort, so a test can drop
// them by source address. They are never part of a Truth.
var (
	MarkerSrc  = netip.MustParseAddr("192.0.2.254")
	MarkerDst  = netip.MustParseAddr("192.0.2.253")
	MarkerPort = uint16(9)
)

// DefaultStart is the timestamp of the first frame when Spec.Start is zero.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Spec describes a synthetic, deterministic traffic mix. Zero fields take the
// defaults documented on each field.
type Spec struct {
	// Seed seeds the generator; the same Spec always yields the same bytes.
	Seed int64
	// Flows is the number of unidirectional flows (default 40, at least Hosts).
	Flows int
	// Packets is the number of traffic frames (default 3000, at least Flows).
	Packets int
	// Hosts is the number of IPv4 source hosts (default 6). Host k gets about
	// 2^-k of the packets, so the top-talker order is 10.1.0.1, 10.1.0.2, ...
	Hosts int
	// IPv6 turns every eighth flow (at least two) into an IPv6 TCP or UDP flow
	// from 2001:db8:1::<host>.
	IPv6 bool
	// Start is the time of the first frame (default DefaultStart).
	Start time.Time
	// Gap is the time between consecutive frames (default 1ms).
	Gap time.Duration
	// Markers is the number of marker frames appended after the traffic
	// (default 0). See MarkerSrc.
	Markers int
}

func (s Spec) withDefaults() Spec {
	if s.Hosts <= 0 {
		s.Hosts = 6
	}
	if s.Flows <= 0 {
		s.Flows = 40
	}
	if s.Flows < s.Hosts {
		s.Flows = s.Hosts
	}
	if s.Packets <= 0 {
		s.Packets = 3000
	}
	if s.Packets < s.Flows {
		s.Packets = s.Flows
	}
	if s.Start.IsZero() {
		s.Start = DefaultStart
	}
	if s.Gap <= 0 {
		s.Gap = time.Millisecond
	}
	return s
}

// Counter is a pair of totals. Bytes counts IP bytes (IPv4 total length, or
// IPv6 payload length + 40), as NetFlow and IPFIX exporters do; FrameBytes
// counts whole Ethernet frames without FCS, as sFlow's frame length does.
type Counter struct {
	Packets    uint64 // frames
	Bytes      uint64 // IP bytes
	FrameBytes uint64 // Ethernet bytes without FCS
}

func (c *Counter) add(f Frame) {
	c.Packets++
	c.Bytes += uint64(f.IPBytes)
	c.FrameBytes += uint64(f.FrameLen)
}

// AppKey identifies an application: IP protocol and destination port (0 for
// ICMP and ICMPv6).
type AppKey struct {
	Proto   uint8
	DstPort uint16
}

// FlowKey is the 5-tuple of a unidirectional flow (ports 0 for ICMP).
type FlowKey struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
}

// Frame describes one frame written to the pcap.
type Frame struct {
	// Index is the zero-based position of the frame in the file.
	Index int
	// Time is the frame's capture timestamp.
	Time time.Time
	FlowKey
	// IPBytes is the IP datagram length (what NetFlow counts).
	IPBytes int
	// FrameLen is the Ethernet frame length without FCS (what sFlow sees).
	FrameLen int
}

// Truth is what a pcap written by WritePcap contains, marker frames excluded.
type Truth struct {
	// Total sums every traffic frame.
	Total Counter
	// BySrc and ByDst sum the frames by source and destination address.
	BySrc, ByDst map[netip.Addr]Counter
	// ByProto sums the frames by IP protocol.
	ByProto map[uint8]Counter
	// ByApp sums the frames by protocol and destination port.
	ByApp map[AppKey]Counter
	// ByFlow sums the frames by 5-tuple.
	ByFlow map[FlowKey]Counter
	// Frames lists the traffic frames in file order (markers excluded).
	Frames []Frame
	// Markers lists the marker frames, which follow the traffic frames.
	Markers []Frame
}

func newTruth(frames, markers []Frame) Truth {
	t := Truth{
		BySrc:   map[netip.Addr]Counter{},
		ByDst:   map[netip.Addr]Counter{},
		ByProto: map[uint8]Counter{},
		ByApp:   map[AppKey]Counter{},
		ByFlow:  map[FlowKey]Counter{},
		Frames:  frames,
		Markers: markers,
	}
	for _, f := range frames {
		t.Total.add(f)
		bump(t.BySrc, f.Src, f)
		bump(t.ByDst, f.Dst, f)
		bump(t.ByProto, f.Proto, f)
		bump(t.ByApp, AppKey{f.Proto, f.DstPort}, f)
		bump(t.ByFlow, f.FlowKey, f)
	}
	return t
}

func bump[K comparable](m map[K]Counter, k K, f Frame) {
	c := m[k]
	c.add(f)
	m[k] = c
}

// SampledEvery returns the totals of the frames a deterministic 1-in-n
// sampler keeps: frames 1, n+1, 2n+1, ... of the file (zero-based indexes
// 0, n, 2n, ...), which is what `softflowd -s n` exports when it accepts
// every frame (NetFlow v9 and IPFIX: IPv4 and IPv6). Marker frames are
// sampled the same way and listed apart. n <= 1 returns t unchanged.
func (t Truth) SampledEvery(n int) Truth {
	return t.SampledEveryIf(n, func(Frame) bool { return true })
}

// SampledEveryIf is SampledEvery for a sampler that drops the frames accept
// rejects after sampling them, without advancing its counter, as softflowd
// 1.1.0 does (flow_cb): the sample slot then moves to the next accepted
// frame and every later slot shifts by one. The result holds accepted frames
// only. softflowd -v 5 rejects IPv6 frames (unless run with -6).
func (t Truth) SampledEveryIf(n int, accept func(Frame) bool) Truth {
	if n <= 1 {
		return t.Filter(accept)
	}
	var kept, markers []Frame
	counter := 0 // softflowd's total_packets + non_sampled_packets
	visit := func(f Frame, out *[]Frame) {
		if counter%n != 0 {
			counter++
			return
		}
		if accept(f) {
			counter++
			*out = append(*out, f)
		}
	}
	for _, f := range t.Frames {
		visit(f, &kept)
	}
	for _, f := range t.Markers {
		visit(f, &markers)
	}
	return newTruth(kept, markers)
}

// SoftflowdSampled returns what softflowd -v version -s n reports: for
// version 5 only IPv4 frames, sampled as SampledEveryIf describes.
func (t Truth) SoftflowdSampled(version, n int) Truth {
	if version == 5 {
		return t.SampledEveryIf(n, func(f Frame) bool { return f.Src.Is4() })
	}
	return t.SampledEvery(n)
}

// Filter returns the Truth of the frames keep accepts. Markers are kept.
func (t Truth) Filter(keep func(Frame) bool) Truth {
	var kept []Frame
	for _, f := range t.Frames {
		if keep(f) {
			kept = append(kept, f)
		}
	}
	return newTruth(kept, t.Markers)
}

// IPv4Only returns the Truth of the IPv4 frames: what a NetFlow v5 exporter
// can report.
func (t Truth) IPv4Only() Truth {
	return t.Filter(func(f Frame) bool { return f.Src.Is4() })
}

// TopSources returns the source addresses ordered by IP bytes, largest first
// (ties broken by address).
func (t Truth) TopSources() []netip.Addr {
	return topOf(t.BySrc)
}

// TopDestinations returns the destination addresses ordered by IP bytes,
// largest first (ties broken by address).
func (t Truth) TopDestinations() []netip.Addr {
	return topOf(t.ByDst)
}

func topOf(m map[netip.Addr]Counter) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		bi, bj := m[out[i]].Bytes, m[out[j]].Bytes
		if bi != bj {
			return bi > bj
		}
		return out[i].Less(out[j])
	})
	return out
}

// service is one entry of the application mix.
type service struct {
	proto        uint8
	port         uint16
	weight       int
	minIP, maxIP int // IP length range for ordinary packets
	bigShare     int // percent of packets that are full-size (1500)
}

// services is the application mix. Minimum sizes keep every frame at or above
// the 60-byte Ethernet minimum so no exporter sees padding.
var services = []service{
	{ProtoTCP, 443, 40, 52, 1500, 50},
	{ProtoTCP, 80, 15, 52, 1500, 40},
	{ProtoUDP, 53, 15, 60, 300, 0},
	{ProtoTCP, 22, 10, 52, 400, 5},
	{ProtoICMP, 0, 8, 84, 84, 0},
	{ProtoUDP, 443, 7, 100, 1350, 30},
	{ProtoUDP, 123, 5, 76, 76, 0},
}

type genFlow struct {
	key     FlowKey
	svc     service
	packets int
}

// WritePcap writes a classic libpcap file (microsecond timestamps, linktype
// Ethernet) with the traffic mix spec describes and returns its Truth.
func WritePcap(path string, spec Spec) (Truth, error) {
	f, err := os.Create(path)
	if err != nil {
		return Truth{}, fmt.Errorf("testkit: create pcap: %w", err)
	}
	t, werr := GeneratePcap(f, spec)
	if cerr := f.Close(); werr == nil && cerr != nil {
		werr = fmt.Errorf("testkit: close pcap: %w", cerr)
	}
	return t, werr
}

// GeneratePcap writes the pcap WritePcap would write to w.
func GeneratePcap(w io.Writer, spec Spec) (Truth, error) {
	spec = spec.withDefaults()
	rng := rand.New(rand.NewPCG(uint64(spec.Seed), 0x666c6f776d657472))
	flows := planFlows(spec, rng)

	// One entry per frame naming its flow, shuffled so flows interleave.
	order := make([]int, 0, spec.Packets)
	for i, fl := range flows {
		for range fl.packets {
			order = append(order, i)
		}
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

	pw, err := NewPcapWriter(w)
	if err != nil {
		return Truth{}, err
	}
	frames := make([]Frame, 0, len(order))
	seen := make([]bool, len(flows))
	tcpSeq := make([]uint32, len(flows))
	buf := make([]byte, 0, 1600)
	for i, fi := range order {
		fl := flows[fi]
		ipLen := fl.svc.minIP
		if fl.svc.maxIP > fl.svc.minIP {
			ipLen += rng.IntN(fl.svc.maxIP - fl.svc.minIP + 1)
		}
		if fl.svc.bigShare > 0 && rng.IntN(100) < fl.svc.bigShare {
			ipLen = 1500
		}
		ipLen = max(ipLen, minIPLen(fl.key))
		var flags uint8 = 0x18 // ACK|PSH
		if !seen[fi] {
			flags = 0x02 // SYN on the first packet
			seen[fi] = true
		}
		buf = buildFrame(buf[:0], fl.key, ipLen, flags, uint32(i), tcpSeq[fi])
		if flags == 0x02 {
			tcpSeq[fi]++ // SYN takes one sequence number
		}
		if fl.key.Src.Is6() {
			tcpSeq[fi] += uint32(ipLen - 40 - 20)
		} else {
			tcpSeq[fi] += uint32(ipLen - 20 - 20)
		}
		ts := spec.Start.Add(time.Duration(i) * spec.Gap)
		if err := pw.WritePacket(ts, buf); err != nil {
			return Truth{}, err
		}
		frames = append(frames, Frame{Index: i, Time: ts, FlowKey: fl.key, IPBytes: ipLen, FrameLen: len(buf)})
	}
	markers := make([]Frame, 0, spec.Markers)
	mk := FlowKey{Src: MarkerSrc, Dst: MarkerDst, Proto: ProtoUDP, SrcPort: MarkerPort, DstPort: MarkerPort}
	for j := range spec.Markers {
		i := len(order) + j
		buf = buildFrame(buf[:0], mk, 100, 0, uint32(i), 0)
		ts := spec.Start.Add(time.Duration(i) * spec.Gap)
		if err := pw.WritePacket(ts, buf); err != nil {
			return Truth{}, err
		}
		markers = append(markers, Frame{Index: i, Time: ts, FlowKey: mk, IPBytes: 100, FrameLen: len(buf)})
	}
	if err := pw.Flush(); err != nil {
		return Truth{}, err
	}
	return newTruth(frames, markers), nil
}

// planFlows decides every flow's key, service and packet count.
//
// IPv4 host k gets about 2^-k of the IPv4 flows and packets, and its first
// flow (which gets the most packets) is always TCP 443, so the hosts' byte
// totals keep the order of their packet budgets. IPv6 flows, when enabled,
// get their own budget of 1/8 of the packets, spread over three sources.
func planFlows(spec Spec, rng *rand.Rand) []genFlow {
	v6Flows, v6Pkts := 0, 0
	if spec.IPv6 {
		v6Flows = min(max(2, spec.Flows/8), spec.Flows-spec.Hosts)
		v6Pkts = max(v6Flows, spec.Packets/8)
		if v6Flows <= 0 || spec.Packets-v6Pkts < spec.Flows-v6Flows {
			v6Flows, v6Pkts = 0, 0
		}
	}
	v4Flows, v4Pkts := spec.Flows-v6Flows, spec.Packets-v6Pkts

	weights := make([]float64, spec.Hosts)
	var sum float64
	for k := range weights {
		weights[k] = 1 / float64(uint64(1)<<k)
		sum += weights[k]
	}
	split := func(total int) []int {
		out := make([]int, spec.Hosts)
		used := 0
		for k := 1; k < len(out); k++ {
			out[k] = max(1, int(float64(total)*weights[k]/sum))
			used += out[k]
		}
		out[0] = total - used // host 0 takes the rounding remainder
		return out
	}
	flowsPer := split(v4Flows)
	pktsPer := split(v4Pkts)
	for k := range pktsPer {
		pktsPer[k] = max(pktsPer[k], flowsPer[k])
	}

	totalW := 0
	for _, s := range services {
		totalW += s.weight
	}
	pickService := func() service {
		r := rng.IntN(totalW)
		for _, s := range services {
			if r < s.weight {
				return s
			}
			r -= s.weight
		}
		return services[0]
	}
	// spread splits packets over n flows: each gets at least one, the rest
	// favour low-numbered flows for a heavy tail.
	spread := func(packets, n int) []int {
		counts := make([]int, n)
		for i := range counts {
			counts[i] = 1
		}
		for range packets - n {
			counts[min(rng.IntN(n), rng.IntN(n))]++
		}
		return counts
	}

	var flows []genFlow
	used := map[FlowKey]bool{}
	nextPort := uint16(40000)
	add := func(host int, svc service, v6 bool, packets int) {
		dstIdx := 1 + rng.IntN(12)
		var key FlowKey
		for {
			key = flowKey(host, dstIdx, svc, v6, nextPort)
			if !used[key] {
				break
			}
			dstIdx++ // ICMP flows have no ports: find a free destination
		}
		used[key] = true
		if svc.proto != ProtoICMP {
			nextPort++
		}
		flows = append(flows, genFlow{key: key, svc: svc, packets: packets})
	}
	for k := range spec.Hosts {
		for i, n := range spread(pktsPer[k], flowsPer[k]) {
			svc := services[0] // TCP 443 carries each host's bulk
			if i > 0 {
				svc = pickService()
			}
			add(k, svc, false, n)
		}
	}
	if v6Flows > 0 {
		for i, n := range spread(v6Pkts, v6Flows) {
			svc := pickService()
			if svc.proto == ProtoICMP {
				svc = services[2] // IPv6 flows are TCP or UDP only
			}
			add(i%3, svc, true, n)
		}
	}
	return flows
}

// minIPLen is the smallest IP length that holds the headers for key and
// makes an Ethernet frame of at least 60 bytes.
func minIPLen(key FlowKey) int {
	n := 20
	if key.Src.Is6() {
		n = 40
	}
	if key.Proto == ProtoTCP {
		n += 20
	} else {
		n += 8
	}
	return max(n, 46)
}

// flowKey builds the key of a flow of host k to server dstIdx.
func flowKey(k, dstIdx int, svc service, v6 bool, srcPort uint16) FlowKey {
	var key FlowKey
	if v6 {
		key.Src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 15: byte(k + 1)})
		key.Dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 15: byte(dstIdx)})
	} else {
		key.Src = netip.AddrFrom4([4]byte{10, 1, 0, byte(k + 1)})
		key.Dst = netip.AddrFrom4([4]byte{198, 51, 100, byte(dstIdx)})
	}
	key.Proto = svc.proto
	if svc.proto != ProtoICMP {
		key.SrcPort = srcPort
		key.DstPort = svc.port
	}
	return key
}

var (
	srcMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	dstMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
)

// buildFrame appends an Ethernet frame carrying an IP datagram of ipLen bytes
// for key to b. frameNo sets the IPv4 identification and the ICMP echo
// sequence; tcpSeq is the TCP sequence number.
func buildFrame(b []byte, key FlowKey, ipLen int, tcpFlags uint8, frameNo, tcpSeq uint32) []byte {
	v6 := key.Src.Is6()
	b = append(b, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	if v6 {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
	}
	ipStart := len(b)
	hdrLen := 20
	if v6 {
		hdrLen = 40
	}
	proto := key.Proto
	if v6 && proto == ProtoICMP {
		proto = ProtoICMPv6
	}
	if v6 {
		b = append(b, 0x60, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(ipLen-40))
		b = append(b, proto, 64)
		s, d := key.Src.As16(), key.Dst.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(ipLen))
		b = binary.BigEndian.AppendUint16(b, uint16(frameNo)) // identification
		b = append(b, 0x40, 0)                                // DF, offset 0
		b = append(b, 64, proto, 0, 0)
		s, d := key.Src.As4(), key.Dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
		binary.BigEndian.PutUint16(b[ipStart+10:], checksum(b[ipStart:ipStart+20], 0))
	}
	l4Start := len(b)
	l4Len := ipLen - hdrLen
	switch key.Proto {
	case ProtoTCP:
		b = binary.BigEndian.AppendUint16(b, key.SrcPort)
		b = binary.BigEndian.AppendUint16(b, key.DstPort)
		b = binary.BigEndian.AppendUint32(b, tcpSeq)
		b = binary.BigEndian.AppendUint32(b, 1) // ack
		b = append(b, 0x50, tcpFlags)
		b = binary.BigEndian.AppendUint16(b, 65535) // window
		b = append(b, 0, 0, 0, 0)                   // checksum, urgent
	case ProtoUDP:
		b = binary.BigEndian.AppendUint16(b, key.SrcPort)
		b = binary.BigEndian.AppendUint16(b, key.DstPort)
		b = binary.BigEndian.AppendUint16(b, uint16(l4Len))
		b = append(b, 0, 0)
	default: // ICMP / ICMPv6 echo request
		typ := byte(8)
		if v6 {
			typ = 128
		}
		b = append(b, typ, 0, 0, 0, 0x12, 0x34)
		b = binary.BigEndian.AppendUint16(b, uint16(frameNo))
	}
	for len(b)-l4Start < l4Len {
		b = append(b, 0) // zero payload
	}
	// Layer-4 checksum (pseudo-header for TCP, UDP and ICMPv6).
	seg := b[l4Start:]
	var pseudo uint32
	if key.Proto != ProtoICMP || v6 {
		if v6 {
			pseudo = sum16(b[ipStart+8:ipStart+40], 0) + uint32(l4Len) + uint32(proto)
		} else {
			pseudo = sum16(b[ipStart+12:ipStart+20], 0) + uint32(l4Len) + uint32(proto)
		}
	}
	off := 2 // ICMP
	switch key.Proto {
	case ProtoTCP:
		off = 16
	case ProtoUDP:
		off = 6
	}
	cs := checksum(seg, pseudo)
	if key.Proto == ProtoUDP && cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(seg[off:], cs)
	return b
}

func sum16(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// checksum returns the Internet checksum of b with initial sum s.
func checksum(b []byte, s uint32) uint16 {
	s = sum16(b, s)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// PcapWriter writes a classic libpcap file with microsecond timestamps and
// linktype Ethernet (1).
type PcapWriter struct {
	w   *bufio.Writer
	hdr [16]byte
}

// NewPcapWriter writes the pcap file header to w and returns a writer for
// the packet records.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	return newPcapWriter(w, 1)
}

func newPcapWriter(w io.Writer, linktype uint32) (*PcapWriter, error) {
	pw := &PcapWriter{w: bufio.NewWriterSize(w, 64<<10)}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144) // snaplen
	binary.LittleEndian.PutUint32(h[20:], linktype)
	if _, err := pw.w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("testkit: write pcap header: %w", err)
	}
	return pw, nil
}

// WritePacket writes one frame captured at ts.
func (pw *PcapWriter) WritePacket(ts time.Time, frame []byte) error {
	if ts.Unix() < 0 || ts.Unix() > 1<<32-1 {
		return errors.New("testkit: pcap timestamp out of range")
	}
	binary.LittleEndian.PutUint32(pw.hdr[0:], uint32(ts.Unix()))
	binary.LittleEndian.PutUint32(pw.hdr[4:], uint32(ts.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(pw.hdr[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(pw.hdr[12:], uint32(len(frame)))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return fmt.Errorf("testkit: write pcap record: %w", err)
	}
	if _, err := pw.w.Write(frame); err != nil {
		return fmt.Errorf("testkit: write pcap record: %w", err)
	}
	return nil
}

// Flush writes any buffered data to the underlying writer.
func (pw *PcapWriter) Flush() error {
	if err := pw.w.Flush(); err != nil {
		return fmt.Errorf("testkit: flush pcap: %w", err)
	}
	return nil
}
