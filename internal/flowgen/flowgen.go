// Package flowgen builds realistic NetFlow v5, NetFlow v9, IPFIX and sFlow v5
// export datagrams for load tests, demos and benchmarks: templates and
// options data carrying the sampling rate, a Zipf-distributed (heavy-tailed)
// address and port mix, several interfaces per exporter. It only builds
// bytes; cmd/flowgen sends them.
package flowgen

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

// Protocol names a wire format.
type Protocol string

// Supported protocols.
const (
	V5    Protocol = "v5"
	V9    Protocol = "v9"
	IPFIX Protocol = "ipfix"
	SFlow Protocol = "sflow"
)

// RecordsPerDatagram is how many flow records (sFlow: samples) a data
// datagram carries.
func RecordsPerDatagram(p Protocol) int {
	if p == SFlow {
		return 8
	}
	return 30
}

// Config describes one simulated exporter's stream.
type Config struct {
	Protocol Protocol
	// Domain is the v9 source id / IPFIX observation domain / sFlow sub-agent.
	Domain uint32
	// SamplingRate is stated in the v5 header, v9/IPFIX options data or each
	// sFlow sample; 0 or 1 means unsampled.
	SamplingRate uint32
	// Hosts is the size of the address population (Zipf over it).
	Hosts int
	// Interfaces is the number of ifIndex values used.
	Interfaces int
	// AgentDrops (sFlow) is how many samples the simulated agent drops, for
	// lack of resources, before each one it sends: its sample pool and drops
	// counter still count them, so the effective rate is SamplingRate ×
	// (AgentDrops+1).
	AgentDrops uint32
	Seed       uint64
}

// Generator produces one exporter's datagrams. Not safe for concurrent use.
type Generator struct {
	cfg  Config
	rng  *rand.Rand
	zipf *rand.Zipf
	seq  uint32 // v5/IPFIX: records sent; v9/sFlow: datagrams sent
	// sfSeq is each sFlow source's (input interface's) sample sequence
	// number, by the source's 16-bit index: samples it sent so far. A
	// slice, not a map: a map's two lookups per sample took about 15 % of
	// a sending core (perf), which capped the rate a load test could offer.
	sfSeq []uint32
	buf   []byte
	boot  uint32
	ports []uint16
}

// New returns a generator for cfg.
func New(cfg Config) (*Generator, error) {
	switch cfg.Protocol {
	case V5, V9, IPFIX, SFlow:
	default:
		return nil, fmt.Errorf("flowgen: unknown protocol %q (v5, v9, ipfix, sflow)", cfg.Protocol)
	}
	if cfg.Hosts <= 1 {
		cfg.Hosts = 10000
	}
	if cfg.Interfaces <= 0 {
		cfg.Interfaces = 8
	}
	if cfg.SamplingRate == 0 {
		cfg.SamplingRate = 1
	}
	if cfg.Protocol == V5 && cfg.SamplingRate > 0x3fff {
		// The header's sampling interval is 14 bits: a larger rate would
		// go out as 16383 while the sender reports the one asked for.
		return nil, fmt.Errorf("flowgen: NetFlow v5 states sampling rates up to 16383 (a 14-bit header field), not %d", cfg.SamplingRate)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	return &Generator{
		cfg: cfg, rng: rng,
		zipf:  rand.NewZipf(rng, 1.2, 1, uint64(cfg.Hosts-1)),
		ports: []uint16{443, 80, 53, 22, 123, 25, 993, 3306, 5432, 8080},
	}, nil
}

// Templates returns the datagram that announces templates and the sampling
// options (nil for v5 and sFlow). Send it first and periodically.
func (g *Generator) Templates() []byte {
	switch g.cfg.Protocol {
	case V9:
		tpl := set(0, cat(u16(256), u16(uint16(len(v4Fields))), fields(v4Fields)))
		opt := set(1, cat(u16(257), u16(4), u16(8), u16(1), u16(4), u16(34), u16(4), u16(35), u16(1)))
		data := set(257, cat(u32(0), u32(g.cfg.SamplingRate), []byte{1}, []byte{0, 0, 0}))
		g.seq++
		return cat(u16(9), u16(3), u32(g.uptime()), u32(1700000000), u32(g.seq-1), u32(g.cfg.Domain), tpl, opt, data)
	case IPFIX:
		tpl := set(2, cat(u16(256), u16(uint16(len(v4Fields))), fields(v4Fields)))
		// systematic count-based sampling: interval 1, space N-1
		opt := set(3, cat(u16(257), u16(4), u16(1), u16(149), u16(4), u16(304), u16(2), u16(305), u16(4), u16(306), u16(4)))
		data := set(257, cat(u32(g.cfg.Domain), u16(1), u32(1), u32(g.cfg.SamplingRate-1), []byte{0, 0}))
		body := cat(tpl, opt, data)
		msg := cat(u16(10), u16(uint16(16+len(body))), u32(1700000000), u32(g.seq), u32(g.cfg.Domain), body)
		g.seq++ // the options record
		return msg
	}
	return nil
}

// v4Fields is the data template: src, dst, ports, proto, flags, bytes,
// packets, in/out interface, AS numbers, direction.
var v4Fields = [][2]uint16{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {6, 1}, {1, 4}, {2, 4}, {10, 2}, {14, 2}, {16, 4}, {17, 4}, {61, 1}}

func fields(fs [][2]uint16) []byte {
	var b []byte
	for _, f := range fs {
		b = cat(b, u16(f[0]), u16(f[1]))
	}
	return b
}

// Flow is one generated flow, also the ground truth of what was sent.
type Flow struct {
	Src, Dst         [4]byte
	SrcPort, DstPort uint16
	Proto            uint8
	Bytes, Packets   uint32
	InIf, OutIf      uint16
}

// next draws a flow from the heavy-tailed mix.
func (g *Generator) next() Flow {
	h := uint32(g.zipf.Uint64())
	d := uint32(g.zipf.Uint64())
	f := Flow{
		Src:     [4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)},
		Dst:     [4]byte{172, 16 + byte(d>>16)&15, byte(d >> 8), byte(d)},
		SrcPort: uint16(32768 + g.rng.IntN(28000)),
		DstPort: g.ports[min(int(g.zipf.Uint64())%len(g.ports), len(g.ports)-1)],
		Proto:   6,
		Packets: uint32(1 + g.rng.IntN(20)),
		InIf:    uint16(1 + g.rng.IntN(g.cfg.Interfaces)),
		OutIf:   uint16(1 + g.rng.IntN(g.cfg.Interfaces)),
	}
	if f.DstPort == 53 || f.DstPort == 123 {
		f.Proto = 17
	}
	f.Bytes = f.Packets * uint32(64+g.rng.IntN(1400))
	return f
}

// Data returns the next data datagram and the flows it carries (valid until
// the next call). The slice is reused.
func (g *Generator) Data(flows []Flow) ([]byte, []Flow) {
	n := RecordsPerDatagram(g.cfg.Protocol)
	flows = flows[:0]
	for i := 0; i < n; i++ {
		flows = append(flows, g.next())
	}
	b := g.buf[:0]
	switch g.cfg.Protocol {
	case V5:
		b = append(b, u16(5)...)
		b = append(b, u16(uint16(n))...)
		b = append(b, u32(g.uptime())...)
		b = append(b, u32(1700000000)...)
		b = append(b, u32(0)...)
		b = append(b, u32(g.seq)...)
		rate := uint16(0)
		if g.cfg.SamplingRate > 1 {
			rate = 0x4000 | uint16(min(g.cfg.SamplingRate, 0x3fff))
		}
		b = append(b, byte(g.cfg.Domain>>8), byte(g.cfg.Domain))
		b = append(b, u16(rate)...)
		for _, f := range flows {
			b = append(b, f.Src[:]...)
			b = append(b, f.Dst[:]...)
			b = append(b, 0, 0, 0, 0)
			b = append(b, u16(f.InIf)...)
			b = append(b, u16(f.OutIf)...)
			b = append(b, u32(f.Packets)...)
			b = append(b, u32(f.Bytes)...)
			b = append(b, u32(0)...)
			b = append(b, u32(10)...)
			b = append(b, u16(f.SrcPort)...)
			b = append(b, u16(f.DstPort)...)
			b = append(b, 0, 0x18, f.Proto, 0)
			b = append(b, u16(64500)...)
			b = append(b, u16(64501)...)
			b = append(b, 24, 24, 0, 0)
		}
		g.seq += uint32(n)
	case V9, IPFIX:
		var recs []byte
		for _, f := range flows {
			recs = append(recs, f.Src[:]...)
			recs = append(recs, f.Dst[:]...)
			recs = append(recs, u16(f.SrcPort)...)
			recs = append(recs, u16(f.DstPort)...)
			recs = append(recs, f.Proto, 0x18)
			recs = append(recs, u32(f.Bytes)...)
			recs = append(recs, u32(f.Packets)...)
			recs = append(recs, u16(f.InIf)...)
			recs = append(recs, u16(f.OutIf)...)
			recs = append(recs, u32(64500)...)
			recs = append(recs, u32(64501)...)
			recs = append(recs, 0)
		}
		data := set(256, recs)
		if g.cfg.Protocol == V9 {
			b = append(b, cat(u16(9), u16(uint16(n)), u32(g.uptime()), u32(1700000000), u32(g.seq), u32(g.cfg.Domain), data)...)
			g.seq++
		} else {
			b = append(b, cat(u16(10), u16(uint16(16+len(data))), u32(1700000000), u32(g.seq), u32(g.cfg.Domain), data)...)
			g.seq += uint32(n)
		}
	case SFlow:
		b = append(b, cat(u32(5), u32(1), []byte{192, 0, 2, byte(g.cfg.Domain)}, u32(g.cfg.Domain), u32(g.seq), u32(g.uptime()), u32(uint32(n)))...)
		for _, f := range flows {
			hdr := packetHeader(f)
			rec := cat(u32(1), u32(uint32(f.Bytes/f.Packets)+18), u32(4), u32(uint32(len(hdr))), hdr, make([]byte, (4-len(hdr)%4)%4))
			// Sequence number, pool and drops are stamped below.
			sample := cat(u32(0), u32(uint32(f.InIf)), u32(g.cfg.SamplingRate),
				u32(0), u32(0), u32(uint32(f.InIf)), u32(uint32(f.OutIf)), u32(1),
				u32(1), u32(uint32(len(rec))), rec)
			g.stampSample(sample)
			b = append(b, cat(u32(1), u32(uint32(len(sample))), sample)...)
		}
		g.seq++
	}
	g.buf = b
	return b, flows
}

// Restamp rewrites the sequence number of a data datagram this generator
// built (possibly earlier) to continue the generator's current sequence, and
// advances the sequence as Data does. Senders use it to replay a ring of
// prebuilt datagrams as a gap-free stream without rebuilding them.
func (g *Generator) Restamp(dg []byte) {
	n := uint32(RecordsPerDatagram(g.cfg.Protocol))
	switch g.cfg.Protocol {
	case V5:
		binary.BigEndian.PutUint32(dg[16:], g.seq)
		g.seq += n
	case V9:
		binary.BigEndian.PutUint32(dg[12:], g.seq)
		g.seq++
	case IPFIX:
		binary.BigEndian.PutUint32(dg[8:], g.seq)
		g.seq += n
	case SFlow:
		binary.BigEndian.PutUint32(dg[16:], g.seq)
		g.seq++
		// And each flow sample's own sequence number and pool, so a
		// replayed ring is a gap-free stream per source too.
		off := 28 // header with an IPv4 agent address, as Data writes it
		if len(dg) >= 8 && binary.BigEndian.Uint32(dg[4:]) == 2 {
			off = 40 // IPv6 agent address
		}
		for off+8 <= len(dg) {
			format, length := binary.BigEndian.Uint32(dg[off:]), int(binary.BigEndian.Uint32(dg[off+4:]))
			if length > len(dg)-off-8 {
				break
			}
			if format == 1 && length >= 20 { // compact flow sample
				g.stampSample(dg[off+8 : off+8+length])
			}
			off += 8 + length
		}
	}
}

// stampSample writes the next sequence number of a flow sample's source,
// its sample pool and its drops counter into the compact flow sample body b
// (at least 20 bytes). Each input interface is a source (data source
// ifIndex) with its own sequence number and pool, as the spec has it; with
// AgentDrops, the pool and the drops counter also count the samples the
// agent skipped.
func (g *Generator) stampSample(b []byte) {
	src := int(uint16(binary.BigEndian.Uint32(b[4:])))
	if src >= len(g.sfSeq) {
		g.sfSeq = append(g.sfSeq, make([]uint32, src+1-len(g.sfSeq))...)
	}
	k := g.sfSeq[src] // samples this source sent before this one
	g.sfSeq[src] = k + 1
	per := g.cfg.AgentDrops + 1 // samples taken per sample sent
	binary.BigEndian.PutUint32(b[0:], k)
	binary.BigEndian.PutUint32(b[12:], binary.BigEndian.Uint32(b[8:])*per*(k+1)) // the sample's own rate
	binary.BigEndian.PutUint32(b[16:], g.cfg.AgentDrops*(k+1))
}

// packetHeader returns an Ethernet/IPv4/TCP-or-UDP header of one packet of
// the flow (IP length = the flow's mean packet size).
func packetHeader(f Flow) []byte {
	ipLen := uint16(f.Bytes / f.Packets)
	h := cat(make([]byte, 12), u16(0x0800), []byte{0x45, 0}, u16(ipLen), u32(0), []byte{64, f.Proto}, u16(0), f.Src[:], f.Dst[:])
	h = cat(h, u16(f.SrcPort), u16(f.DstPort), u32(0), u32(0), []byte{0x50, 0x18}, u16(0), u16(0), u16(0))
	return h
}

func (g *Generator) uptime() uint32 { return g.boot + g.seq }

func set(id uint16, body []byte) []byte {
	pad := (4 - len(body)%4) % 4
	return cat(u16(id), u16(uint16(4+len(body)+pad)), body, make([]byte, pad))
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
