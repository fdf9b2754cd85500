package flowgen

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/decode"
)

// TestDecodesToWhatWasSent decodes generated streams with flowmetrics'
// decoder: every record, its counters and its sampling rate match the flows
// generated, with no decode error.
func TestDecodesToWhatWasSent(t *testing.T) {
	for _, p := range []Protocol{V5, V9, IPFIX, SFlow} {
		t.Run(string(p), func(t *testing.T) {
			g, err := New(Config{Protocol: p, Domain: 3, SamplingRate: 100, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			d, ex := decode.New(decode.Limits{}), &health.Exporter{}
			addr := netip.MustParseAddr("127.0.0.1")
			if tpl := g.Templates(); tpl != nil {
				if res, errs := d.Decode(tpl, addr, ex); len(errs) > 0 || len(res.Records) != 0 {
					t.Fatalf("templates: %v", errs)
				}
			}
			var flows []Flow
			for i := 0; i < 20; i++ {
				var dg []byte
				dg, flows = g.Data(flows)
				res, errs := d.Decode(dg, addr, ex)
				if len(errs) > 0 || len(res.Records) != len(flows) {
					t.Fatalf("datagram %d: %d records for %d flows, errors %v", i, len(res.Records), len(flows), errs)
				}
				for j, r := range res.Records {
					f := flows[j]
					wantBytes, wantPkts := uint64(f.Bytes), uint64(f.Packets)
					if p == SFlow {
						wantBytes, wantPkts = uint64(f.Bytes/f.Packets), 1
					}
					if r.Bytes != wantBytes || r.Packets != wantPkts || r.SrcAddr != netip.AddrFrom4(f.Src) || r.DstPort != f.DstPort || r.Proto != f.Proto {
						t.Fatalf("record %d = %+v, flow %+v", j, r, f)
					}
					if r.SamplingRate != 100 || r.RateSource == flow.RateUnknown {
						t.Fatalf("rate %d from %v", r.SamplingRate, r.RateSource)
					}
				}
			}
			if ex.SequenceGaps.Load() != 0 {
				t.Fatalf("%d sequence gaps in a generated stream", ex.SequenceGaps.Load())
			}
		})
	}
}

// TestSendDecodesGapFree sends bounded loads over loopback (IPv4 from several
// source addresses, IPv4 from one, IPv6) and decodes what arrives: every
// record sent is decoded, with no sequence gap, though the datagrams are
// replayed from a small ring.
func TestSendDecodesGapFree(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		p          Protocol
		sameSource bool
		// agentDrops: an sFlow agent that skips samples; the replayed
		// ring must keep each source's sequence and pool going, so that
		// the decoder measures the effective rate (10 x (agentDrops+1)).
		agentDrops uint32
	}{
		{"v5", "127.0.0.1:0", V5, false, 0},
		{"v9", "127.0.0.1:0", V9, false, 0},
		{"ipfix-same-source", "127.0.0.1:0", IPFIX, true, 0},
		{"sflow", "127.0.0.1:0", SFlow, false, 0},
		{"sflow-agent-drops", "127.0.0.1:0", SFlow, false, 1},
		{"ipfix-ipv6", "[::1]:0", IPFIX, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", tt.target)
			if err != nil {
				t.Skip(err)
			}
			defer pc.Close()
			_ = pc.(*net.UDPConn).SetReadBuffer(8 << 20)
			const records = 20_000
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := Send(ctx, SendConfig{
				Config: Config{Protocol: tt.p, SamplingRate: 10, AgentDrops: tt.agentDrops, Interfaces: 2, Seed: 7}, Target: netip.MustParseAddrPort(pc.LocalAddr().String()),
				Exporters: 3, SameSource: tt.sameSource, Records: records, Rate: 400_000, Ring: 8, TemplateEvery: 10,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Records < records {
				t.Fatalf("sent %d records, want %d", res.Records, records)
			}
			d := decode.New(decode.Limits{})
			exs := map[netip.Addr]*health.Exporter{}
			buf := make([]byte, 65535)
			got, pooled := 0, 0
			for i := 0; i < res.Datagrams; i++ {
				_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					t.Fatalf("after %d of %d datagrams: %v", i, res.Datagrams, err)
				}
				addr := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
				if exs[addr] == nil {
					exs[addr] = &health.Exporter{}
				}
				r, errs := d.Decode(buf[:n], addr, exs[addr])
				if len(errs) > 0 {
					t.Fatalf("datagram %d: %v", i, errs)
				}
				got += len(r.Records)
				for _, rec := range r.Records {
					if rec.RateSource == flow.RatePool {
						pooled++
						if rec.SamplingRate != 10*(tt.agentDrops+1) {
							t.Fatalf("pool rate %d, want %d", rec.SamplingRate, 10*(tt.agentDrops+1))
						}
					}
				}
			}
			// 20,000 samples from 3 exporters of 2 sources each: ~3,300
			// per source, all but the first 1,024 scaled by the pool's rate.
			if tt.agentDrops > 0 && pooled < records/2 || tt.agentDrops == 0 && pooled != 0 {
				t.Fatalf("%d of %d records scaled by the pool's rate", pooled, got)
			}
			if got != res.Records {
				t.Fatalf("decoded %d records, sent %d", got, res.Records)
			}
			wantAddrs := 3
			if tt.sameSource || tt.target[0] == '[' {
				wantAddrs = 1
			}
			if len(exs) != wantAddrs {
				t.Fatalf("%d source addresses, want %d", len(exs), wantAddrs)
			}
			for a, ex := range exs {
				if ex.SequenceGaps.Load() != 0 || ex.SequenceResets.Load() != 0 {
					t.Fatalf("%v: %d gaps, %d resets", a, ex.SequenceGaps.Load(), ex.SequenceResets.Load())
				}
			}
		})
	}
}

// TestV5SamplingRateFits: the v5 header holds a 14-bit sampling interval;
// 16383 is sent as stated and decoded as such, a larger rate is refused
// rather than sent as 16383 while the sender reports the one asked for.
func TestV5SamplingRateFits(t *testing.T) {
	g, err := New(Config{Protocol: V5, SamplingRate: 16383, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	dg, _ := g.Data(nil)
	res, errs := decode.New(decode.Limits{}).Decode(dg, netip.MustParseAddr("127.0.0.1"), &health.Exporter{})
	if len(errs) > 0 || len(res.Records) == 0 || res.Records[0].SamplingRate != 16383 {
		t.Fatalf("rate 16383: %v, errors %v", res.Records, errs)
	}
	if _, err := New(Config{Protocol: V5, SamplingRate: 16384}); err == nil {
		t.Fatal("v5 with sampling rate 16384 accepted")
	}
	if _, err := New(Config{Protocol: V9, SamplingRate: 1 << 20}); err != nil {
		t.Fatalf("v9 states 32-bit rates: %v", err)
	}
}

// TestPacedSendStopsWithContext: a paced send ends when its context does,
// however far off the next batch is due. At 10 records/s the first batch
// (15 v9 datagrams, 450 records) was followed by a 45 s sleep that ignored
// the context, so --duration and Ctrl-C had no effect on flowgen.
func TestPacedSendStopsWithContext(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan Result, 1)
	go func() {
		res, err := Send(ctx, SendConfig{
			Config: Config{Protocol: V9, Seed: 1}, Target: netip.MustParseAddrPort(pc.LocalAddr().String()),
			Records: 10_000, Rate: 10, Ring: 16,
		})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case res := <-done:
		if res.Elapsed > 2*time.Second {
			t.Fatalf("ran %v after a 300 ms context", res.Elapsed)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send still running 5 s after its 300 ms context ended")
	}
}

// TestPacedSendKeepsRate: a paced send never runs ahead of its rate by more
// than one datagram. Batches of up to 15 data datagrams went out whole
// before the pause, so at 300 records/s the first 450 records left at once
// and a run cut short by its context had sent 1.5x the rate asked for.
func TestPacedSendKeepsRate(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const rate = 300.0
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := Send(ctx, SendConfig{
		Config: Config{Protocol: V9, Seed: 1}, Target: netip.MustParseAddrPort(pc.LocalAddr().String()),
		Records: 10_000, Rate: rate, Ring: 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	per := RecordsPerDatagram(V9)
	if max := rate*res.Elapsed.Seconds() + float64(per); float64(res.Records) > max {
		t.Fatalf("sent %d records in %v at %v records/s, more than %.0f", res.Records, res.Elapsed, rate, max)
	}
	if res.Records < 5*per {
		t.Fatalf("sent only %d records in %v at %v records/s", res.Records, res.Elapsed, rate)
	}
}
