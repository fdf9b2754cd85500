package intake_test

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/config"
	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/receiver/intake"
)

// BenchmarkIntake measures one socket's whole path from the kernel's
// receive queue to updated counters: recvmmsg, decoding, sampling
// correction, the totals and config.Default()'s families. Each round fills
// the socket with datagrams of four flowgen exporters (not timed), then
// reads them as the socket's reader does (timed). Neither the sender's CPU
// nor the reader's wake-ups are counted, so ns/record is what one core
// spends per record while it is kept busy: the per-core cost without the
// noise of a sender on the same machine that the load test has.
//
// "receive_only" drops every datagram at the allowlist, after recvmmsg:
// the socket's own share (kernel and system call) of that cost.
// "interleaved" is "full" with the four exporters' datagrams taking turns
// one by one in the queue (many exporters on one socket) rather than in
// bursts of 16.
//
// It needs a receive buffer of at least 128 KiB (root, or net.core.rmem_max).
func BenchmarkIntake(b *testing.B) {
	for _, p := range []flowgen.Protocol{flowgen.V5, flowgen.V9, flowgen.IPFIX, flowgen.SFlow} {
		b.Run(string(p), func(b *testing.B) {
			b.Run("full", func(b *testing.B) { benchIntake(b, p, false, 16) })
			b.Run("receive_only", func(b *testing.B) { benchIntake(b, p, true, 16) })
			b.Run("interleaved", func(b *testing.B) { benchIntake(b, p, false, 1) })
		})
	}
}

// benchExporter is one simulated exporter: its generator, socket and a ring
// of prebuilt data datagrams replayed with fresh sequence numbers, as many
// as the load test's (flowgen.DefaultRing). With 64 the families saw fewer
// keys, fewer overflowed into "other", and an sFlow sample cost about a
// tenth less than with the load test's stream.
type benchExporter struct {
	g    *flowgen.Generator
	conn *net.UDPConn
	ring [][]byte
	next int
}

// benchIntake sends each exporter's datagrams in bursts of burst.
func benchIntake(b *testing.B, p flowgen.Protocol, receiveOnly bool, burst int) {
	cfg := config.Default()
	c := core.New(cfg.Core())
	icfg := intake.Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1, ReceiveBuffer: 32 << 20}
	if receiveOnly {
		icfg.AllowedExporters = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	}
	in := intake.New(icfg, c, slog.New(slog.DiscardHandler))
	if err := in.BindForBenchmark(); err != nil {
		b.Fatal(err)
	}
	defer in.Stop()
	target := in.Addrs()[0].(*net.UDPAddr)
	// As many datagrams per round as the buffer surely holds: on loopback
	// a datagram takes up to a few KiB of it with the kernel's overhead.
	perRound := min(1024, in.Stats()[0].ReceiveBuffer/8192)
	if perRound < 16 {
		b.Skipf("receive buffer of %d bytes: run as root or raise net.core.rmem_max", in.Stats()[0].ReceiveBuffer)
	}
	var exps []*benchExporter
	var templates int
	for i := range 4 {
		g, err := flowgen.New(flowgen.Config{Protocol: p, Domain: uint32(i), Seed: uint64(i + 1), SamplingRate: 1})
		if err != nil {
			b.Fatal(err)
		}
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(10+i))}, target)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		e := &benchExporter{g: g, conn: conn}
		for range flowgen.DefaultRing {
			dg, _ := g.Data(nil)
			e.ring = append(e.ring, append([]byte(nil), dg...))
		}
		if tpl := g.Templates(); tpl != nil {
			if _, err := conn.Write(tpl); err != nil {
				b.Fatal(err)
			}
			templates++
		}
		exps = append(exps, e)
	}
	read := func(n int) {
		if got, err := in.ReadForBenchmark(n, 10*time.Second); got != n {
			b.Fatalf("read %d of %d datagrams: %v (dropped by the kernel?)", got, n, err)
		}
	}
	read(templates)
	// fill sends one round: bursts of datagrams per exporter in turn. With
	// bursts of 16, as flowgen sends, a receive batch is mostly one
	// exporter's; with bursts of 1 it holds all four, interleaved.
	fill := func() {
		for sent := 0; sent < perRound; {
			e := exps[(sent/burst)%len(exps)]
			for j := 0; j < burst && sent < perRound; j++ {
				dg := e.ring[e.next%len(e.ring)]
				e.next++
				e.g.Restamp(dg)
				if _, err := e.conn.Write(dg); err != nil {
					b.Fatal(err)
				}
				sent++
			}
		}
	}
	// Warm up: fill the families to their steady state.
	for range 64 {
		fill()
		read(perRound)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fill()
		b.StartTimer()
		read(perRound)
	}
	records := b.N * perRound * flowgen.RecordsPerDatagram(p)
	ns := float64(b.Elapsed().Nanoseconds())
	b.StopTimer()
	// Every record read must have been counted (none was dropped).
	want := uint64((64 + b.N) * perRound * flowgen.RecordsPerDatagram(p))
	if receiveOnly {
		want = 0
	}
	var counted uint64
	for _, pt := range c.Totals().Collect(nil) {
		counted += pt.Flows
	}
	if counted != want {
		b.Fatalf("the totals count %d records, want %d", counted, want)
	}
	b.ReportMetric(ns/float64(b.N*perRound), "ns/datagram")
	b.ReportMetric(ns/float64(records), "ns/record")
	b.ReportMetric(1e9*float64(records)/ns, "records/s")
}
