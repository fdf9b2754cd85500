package flowgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// SendConfig describes a bounded load.
type SendConfig struct {
	Config
	// Target is the collector's UDP address.
	Target netip.AddrPort
	// Exporters is the number of simulated exporters; on a loopback target
	// each sends from its own address 127.0.0.(10+i) with its own domain.
	Exporters int
	// Records is the total number of flow records (sFlow: samples) to send.
	Records int
	// Rate is records per second, 0 for as fast as possible.
	Rate float64
	// TemplateEvery resends templates and options every this many data
	// datagrams per exporter.
	TemplateEvery int
	// AllowRemote permits a non-loopback target.
	AllowRemote bool
}

// Result says what was sent.
type Result struct {
	Datagrams, Records int
	Bytes, Packets     uint64 // as stated in the records, before sampling
	Elapsed            time.Duration
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
	type exp struct {
		g    *Generator
		conn *net.UDPConn
		sent int
	}
	var exps []*exp
	defer func() {
		for _, e := range exps {
			e.conn.Close()
		}
	}()
	for i := 0; i < c.Exporters; i++ {
		cfg := c.Config
		cfg.Domain = c.Domain + uint32(i)
		cfg.Seed = c.Seed + uint64(i)
		g, err := New(cfg)
		if err != nil {
			return res, err
		}
		var laddr *net.UDPAddr
		if c.Target.Addr().IsLoopback() && c.Target.Addr().Is4() && c.Exporters > 1 {
			laddr = &net.UDPAddr{IP: net.IPv4(127, 0, byte((10+i)>>8), byte(10+i))}
		}
		conn, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(c.Target))
		if err != nil {
			return res, fmt.Errorf("flowgen: exporter %d: %w", i, err)
		}
		exps = append(exps, &exp{g: g, conn: conn})
	}
	start := time.Now()
	per := RecordsPerDatagram(c.Protocol)
	var flows []Flow
	for i := 0; res.Records < c.Records; i++ {
		if err := ctx.Err(); err != nil {
			break
		}
		e := exps[i%len(exps)]
		if e.sent%c.TemplateEvery == 0 {
			if tpl := e.g.Templates(); tpl != nil {
				if _, err := e.conn.Write(tpl); err != nil {
					return res, err
				}
				res.Datagrams++
			}
		}
		var dg []byte
		dg, flows = e.g.Data(flows)
		if _, err := e.conn.Write(dg); err != nil {
			return res, err
		}
		e.sent++
		res.Datagrams++
		res.Records += per
		for _, f := range flows {
			if c.Protocol == SFlow {
				res.Bytes += uint64(f.Bytes / f.Packets)
				res.Packets++
			} else {
				res.Bytes += uint64(f.Bytes)
				res.Packets += uint64(f.Packets)
			}
		}
		if c.Rate > 0 {
			due := start.Add(time.Duration(float64(res.Records) / c.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
