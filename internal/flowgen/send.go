package flowgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// DefaultRing is how many distinct data datagrams Send builds per exporter
// unless told otherwise. The collector's cost per record grows with the
// keys it sees (more of them overflow a family into its "other" series),
// so benchmarks that replay datagrams use as many, to be comparable with
// the load test.
const DefaultRing = 256

// SendConfig describes a bounded load.
type SendConfig struct {
	Config
	// Target is the collector's UDP address.
	Target netip.AddrPort
	// Exporters is the number of simulated exporters, each with its own
	// observation domain (Config.Domain + i). On an IPv4 loopback target
	// each also sends from its own address 127.0.0.(10+i) unless
	// SameSource is set.
	Exporters int
	// SameSource sends every exporter's datagrams from one address (the
	// exporters then differ by observation domain and source port only).
	SameSource bool
	// Records is the total number of flow records (sFlow: samples) to send.
	Records int
	// Rate is records per second, 0 for as fast as possible.
	Rate float64
	// DatagramRate is data datagrams per second; it is used when Rate is 0.
	DatagramRate float64
	// TemplateEvery resends templates and options every this many data
	// datagrams per exporter.
	TemplateEvery int
	// Ring is how many distinct data datagrams are built per exporter
	// before sending; they are replayed with fresh sequence numbers, so the
	// sender's own cost stays far below the collector's. Default
	// DefaultRing, at least Batch.
	Ring int
	// Batch is the most datagrams handed to the kernel in one sendmmsg
	// call. Default 16.
	Batch int
	// AllowRemote permits a non-loopback target.
	AllowRemote bool
}

// Result says what was sent.
type Result struct {
	Datagrams, Records int
	Bytes, Packets     uint64 // as stated in the records, before sampling
	// Start is when sending began, once the exporters' sockets and
	// datagram rings were ready; Elapsed runs from it.
	Start   time.Time
	Elapsed time.Duration
}

// ringEntry is one prebuilt data datagram and what it carries.
type ringEntry struct {
	b              []byte
	bytes, packets uint64
}

type exporter struct {
	g    *Generator
	conn *net.UDPConn
	pc   *ipv4.PacketConn // sendmmsg on the same socket
	ring []ringEntry
	sent int // data datagrams
}

// Send generates and sends the load, stopping at Records or when ctx ends.
func Send(ctx context.Context, c SendConfig) (Result, error) {
	var res Result
	if !c.Target.Addr().IsLoopback() && !c.AllowRemote {
		return res, fmt.Errorf("flowgen: target %s is not a loopback address (use --allow-remote to send elsewhere)", c.Target)
	}
	if c.Exporters <= 0 {
		c.Exporters = 1
	}
	if c.TemplateEvery <= 0 {
		c.TemplateEvery = 100
	}
	if c.Ring <= 0 {
		c.Ring = DefaultRing
	}
	if c.Batch <= 0 {
		c.Batch = 16
	}
	// A batch must not hold one ring entry twice: it is restamped in place.
	c.Ring = max(c.Ring, c.Batch)
	var exps []*exporter
	defer func() {
		for _, e := range exps {
			e.conn.Close()
		}
	}()
	for i := 0; i < c.Exporters; i++ {
		e, err := newExporter(c, i)
		if err != nil {
			return res, err
		}
		exps = append(exps, e)
	}
	per := RecordsPerDatagram(c.Protocol)
	rate := c.Rate
	if rate <= 0 && c.DatagramRate > 0 {
		rate = c.DatagramRate * float64(per)
	}
	// A paced batch holds at most pacingTick's worth of records (at least
	// one datagram): at a low rate a full batch would leave as one burst
	// far ahead of the rate asked for.
	maxData := c.Batch
	if rate > 0 {
		maxData = min(maxData, max(1, int(rate*pacingTick.Seconds())/per))
	}
	msgs := make([]ipv4.Message, c.Batch)
	start := time.Now()
	res.Start = start
	for i := 0; res.Records < c.Records; i++ {
		if err := ctx.Err(); err != nil {
			break
		}
		e := exps[i%len(exps)]
		msgs = msgs[:0]
		for data := 0; len(msgs) < c.Batch && data < maxData && res.Records < c.Records; {
			if e.sent%c.TemplateEvery == 0 {
				if tpl := e.g.Templates(); tpl != nil {
					msgs = append(msgs, ipv4.Message{Buffers: [][]byte{tpl}})
				}
			}
			r := &e.ring[e.sent%len(e.ring)]
			e.g.Restamp(r.b)
			msgs = append(msgs, ipv4.Message{Buffers: [][]byte{r.b}})
			e.sent++
			data++
			res.Records += per
			res.Bytes += r.bytes
			res.Packets += r.packets
			if len(msgs) >= c.Batch-1 {
				break // leave room for a template datagram
			}
		}
		for sent := 0; sent < len(msgs); {
			n, err := e.pc.WriteBatch(msgs[sent:], 0)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					// The error names the local address; say which target
					// refused (ICMP port unreachable for an earlier datagram).
					return res, fmt.Errorf("flowgen: sending to %s: %w (is a collector listening there?)", c.Target, err)
				}
				return res, fmt.Errorf("flowgen: sending to %s: %w", c.Target, err)
			}
			sent += n
		}
		res.Datagrams += len(msgs)
		if rate > 0 {
			due := start.Add(time.Duration(float64(res.Records) / rate * float64(time.Second)))
			if !sleepUntil(ctx, due) {
				break
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// pacingTick is the longest stretch of a paced send's records that one
// batch may carry.
const pacingTick = 10 * time.Millisecond

// sleepUntil waits until t or until ctx ends, whichever comes first, and
// reports whether t was reached. At a low rate the next batch can be due
// minutes away: the wait must not outlast --duration or a Ctrl-C.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// newExporter builds exporter i: its generator, socket and datagram ring.
func newExporter(c SendConfig, i int) (*exporter, error) {
	cfg := c.Config
	cfg.Domain = c.Domain + uint32(i)
	cfg.Seed = c.Seed + uint64(i)
	g, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var laddr *net.UDPAddr
	if c.Target.Addr().IsLoopback() && c.Target.Addr().Is4() && c.Exporters > 1 && !c.SameSource {
		laddr = &net.UDPAddr{IP: net.IPv4(127, 0, byte((10+i)>>8), byte(10+i))}
	}
	conn, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(c.Target))
	if err != nil {
		return nil, fmt.Errorf("flowgen: exporter %d: %w", i, err)
	}
	_ = conn.SetWriteBuffer(4 << 20)
	e := &exporter{g: g, conn: conn, pc: ipv4.NewPacketConn(conn)}
	var flows []Flow
	for j := 0; j < c.Ring; j++ {
		var dg []byte
		dg, flows = g.Data(flows)
		r := ringEntry{b: append([]byte(nil), dg...)}
		for _, f := range flows {
			if c.Protocol == SFlow {
				r.bytes += uint64(f.Bytes / f.Packets)
				r.packets++
			} else {
				r.bytes += uint64(f.Bytes)
				r.packets += uint64(f.Packets)
			}
		}
		e.ring = append(e.ring, r)
	}
	g.seq = 0 // the ring is replayed from the start of the sequence
	return e, nil
}
