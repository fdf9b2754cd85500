package decode

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// sfRecord encodes one sFlow record (flow or counter) of the given type.
func sfRecord(typ uint32, body []byte) []byte {
	return cat(u32(typ), u32(uint32(len(body))), body)
}

// sfFlowSample encodes a compact flow sample (format 1) holding records.
func sfFlowSample(seq, rate, in, out uint32, records ...[]byte) []byte {
	body := cat(u32(seq), u32(in), u32(rate), u32(rate*seq), u32(0), u32(in), u32(out), u32(uint32(len(records))), cat(records...))
	return cat(u32(1), u32(uint32(len(body))), body)
}

// sfExpandedSample encodes an expanded flow sample (format 3).
func sfExpandedSample(seq, rate, in, out uint32, records ...[]byte) []byte {
	body := cat(u32(seq), u32(0), u32(in), u32(rate), u32(rate*seq), u32(0), u32(0), u32(in), u32(0), u32(out),
		u32(uint32(len(records))), cat(records...))
	return cat(u32(3), u32(uint32(len(body))), body)
}

// sfCounterSample encodes a counter sample (format 2 or 4).
func sfCounterSample(format uint32, records ...[]byte) []byte {
	body := cat(u32(9), u32(5))
	if format == 4 {
		body = cat(body, u32(5))
	}
	body = cat(body, u32(uint32(len(records))), cat(records...))
	return cat(u32(format), u32(uint32(len(body))), body)
}

// sfDatagram encodes an sFlow v5 datagram from an IPv4 agent, declaring
// count samples (len(samples) when count < 0).
func sfDatagram(seq, subAgent uint32, count int, samples ...[]byte) []byte {
	if count < 0 {
		count = len(samples)
	}
	return cat(u32(5), u32(1), []byte{192, 0, 2, 50}, u32(subAgent), u32(seq), u32(1000), u32(uint32(count)), cat(samples...))
}

// rawHeader returns a sampled-header record of an Ethernet/IPv4/TCP packet.
func rawHeader(src, dst [4]byte, ipLen uint16) []byte {
	h := ethIPv4TCP(src, dst, ipLen, 40000, 443)
	pad := make([]byte, (4-len(h)%4)%4)
	return sfRecord(1, cat(u32(1), u32(uint32(ipLen)+18), u32(4), u32(uint32(len(h))), h, pad))
}

func sampledIPv4(src, dst [4]byte) []byte {
	return sfRecord(3, cat(u32(1400), u32(17), src[:], dst[:], u32(5353), u32(53), u32(0), u32(0)))
}

func sampledIPv6() []byte {
	src := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	dst := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	return sfRecord(4, cat(u32(900), u32(6), src[:], dst[:], u32(1234), u32(22), u32(0x18), u32(0)))
}

// gatewayRecord encodes an extended gateway record with an optional AS path.
func gatewayRecord(as, srcAS uint32, path []uint32, communities int) []byte {
	b := cat(u32(1), []byte{192, 0, 2, 1}, u32(as), u32(srcAS), u32(64999))
	if path == nil {
		b = cat(b, u32(0))
	} else {
		b = cat(b, u32(1), u32(2), u32(uint32(len(path))))
		for _, a := range path {
			b = cat(b, u32(a))
		}
	}
	b = cat(b, u32(uint32(communities)), make([]byte, 4*communities), u32(100))
	return sfRecord(1003, b)
}

// sflowCorpus returns hand-built datagrams covering every branch of the sFlow
// fast path: accepted shapes and the ones it must leave to goflow2.
func sflowCorpus() [][]byte {
	a, b := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	hdr := rawHeader(a, b, 1400)
	ifCounters := sfRecord(1, make([]byte, 88))
	ethCounters := sfRecord(2, make([]byte, 52))
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	ipv4 := ethIPv4TCP(a, b, 1400, 40000, 443)
	ipv6 := ethVLANIPv6UDP(v6a, v6b, 1200, 5353, 53)
	fragment := append([]byte(nil), ipv4...)
	fragment[14+7] = 0x40 // fragment offset 64
	// IPv6: hop-by-hop options, then a first fragment, then UDP
	ipv6Ext := append([]byte(nil), ipv6[18:58]...)
	ipv6Ext[6] = 0
	ipv6Ext = cat(ipv6Ext, []byte{44, 0, 0, 0, 0, 0, 0, 0}, []byte{17, 0, 0, 0, 0, 0, 0, 1}, u16(5353), u16(53), u16(8), u16(0))
	return [][]byte{
		sfDatagram(1, 0, -1, sfFlowSample(1, 512, 3, 7, hdr)),
		sfDatagram(2, 0, -1, sfFlowSample(2, 512, 3|2<<30, 7, hdr), sfExpandedSample(3, 256, 4, 8, hdr, gatewayRecord(65000, 65001, []uint32{65002, 65003}, 2))),
		sfDatagram(3, 0, -1, sfFlowSample(4, 0, 1, 2, sampledIPv4(a, b), hdr)),           // sampled IP first, then header
		sfDatagram(4, 0, -1, sfFlowSample(5, 10, 1, 2, hdr, sampledIPv6())),              // header wins
		sfDatagram(5, 0, -1, sfFlowSample(6, 10, 1, 2, sampledIPv6())),                   // IPv6 sampled IP
		sfDatagram(6, 0, -1, sfFlowSample(7, 10, 1, 2, gatewayRecord(65000, 1, nil, 0))), // no path
		sfDatagram(7, 0, -1, sfFlowSample(8, 10, 1, 2, gatewayRecord(65000, 1, []uint32{}, 0))),
		sfDatagram(8, 0, -1, sfFlowSample(9, 10, 1, 2, gatewayRecord(65000, 1, make([]uint32, 1001), 0))), // path too long
		sfDatagram(9, 0, -1, sfFlowSample(10, 10, 1, 2, gatewayRecord(65000, 1, nil, 1001))),              // communities too many
		sfDatagram(10, 0, -1, sfFlowSample(11, 10, 1, 2, sfRecord(1001, make([]byte, 16)), sfRecord(1002, cat(u32(2), make([]byte, 16), u32(24), u32(24))), hdr)),
		sfDatagram(11, 0, -1, sfFlowSample(12, 10, 1, 2, sfRecord(1002, cat(u32(7), make([]byte, 12))))), // bad next-hop version
		sfDatagram(12, 0, -1, sfFlowSample(13, 10, 1, 2, sfRecord(2, make([]byte, 20)), sfRecord(1036, u32(3)), sfRecord(4242, []byte{1}), hdr)),
		sfDatagram(13, 0, -1, sfFlowSample(14, 10, 1, 2, sfRecord(1037, cat(u32(1), u32(3), []byte("abc"), u32(1))))), // ACL: goflow2 only
		sfDatagram(14, 0, -1, sfFlowSample(15, 10, 1, 2, sfRecord(3, make([]byte, 31)))),                              // short sampled IPv4
		sfDatagram(15, 0, -1, sfFlowSample(16, 10, 1, 2, sfRecord(1, make([]byte, 15)))),                              // short header record
		sfDatagram(16, 0, -1, sfCounterSample(2, ifCounters, ethCounters), sfFlowSample(17, 10, 1, 2, hdr)),
		sfDatagram(17, 0, -1, sfCounterSample(4, ifCounters, sfRecord(1001, make([]byte, 12)))),
		sfDatagram(18, 0, -1, sfCounterSample(2, sfRecord(1, make([]byte, 87)))), // short counters: goflow2 error
		sfDatagram(19, 0, -1, sfCounterSample(2, sfRecord(2, make([]byte, 51)))),
		sfDatagram(20, 0, -1, cat(u32(5), u32(8), make([]byte, 8))),                                             // drop sample
		sfDatagram(21, 0, -1, cat(u32(77), u32(8), make([]byte, 8))),                                            // unknown format
		sfDatagram(22, 0, 3, sfFlowSample(18, 10, 1, 2, hdr)),                                                   // fewer samples than declared
		sfDatagram(23, 0, 1, sfFlowSample(19, 10, 1, 2, hdr), sfFlowSample(20, 10, 1, 2, hdr)),                  // more than declared
		sfDatagram(24, 0, 1001, sfFlowSample(21, 10, 1, 2, hdr)),                                                // too many samples
		sfDatagram(25, 0, -1, sfFlowSample(22, 10, 1, 2, hdr)[:40]),                                             // sample longer than datagram
		sfDatagram(26, 0, -1, cat(u32(1), u32(12), u32(1), u32(2), u32(3))),                                     // flow sample cut short
		sfDatagram(27, 0, -1, cat(u32(1), u32(28), u32(23), u32(0), u32(10), u32(0), u32(0), u32(1), u32(2))),   // no record count: 28 of the 32 fixed bytes
		sfDatagram(28, 0, -1, sfFlowSample(24, 10, 1, 2, cat(u32(1), u32(4000), hdr[8:]))),                      // record longer than sample
		sfDatagram(29, 5, -1, sfFlowSample(25, 10, 1, 2, hdr)),                                                  // another sub-agent
		sfDatagram(40, 0, -1, sfFlowSample(26, 10, 1, 2, hdr)),                                                  // sequence gap
		cat(u32(5), u32(2), make([]byte, 16), u32(0), u32(41), u32(1), u32(1), sfFlowSample(27, 10, 1, 2, hdr)), // IPv6 agent
		cat(u32(5), u32(3), make([]byte, 20)),                                                                   // bad agent address version
		cat(u32(5), u32(1), []byte{1, 2}),                                                                       // truncated header
		sfDatagram(42, 0, -1, sfExpandedSample(28, 10, 1, 2)[:30]),
		// A raw header record whose header length disagrees with the bytes
		// that follow (more, and fewer): every byte left is the header.
		sfDatagram(43, 0, -1, sfFlowSample(29, 10, 1, 2, sfRecord(1, cat(u32(1), u32(78), u32(4), u32(9999), ethIPv4TCP([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 60, 40000, 443))))),
		sfDatagram(44, 0, -1, sfFlowSample(30, 10, 1, 2, sfRecord(1, cat(u32(1), u32(78), u32(4), u32(8), ethIPv4TCP([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 60, 40000, 443))))),
		// Header shapes: VLAN-tagged IPv6, Q-in-Q, MPLS, bare IPv4 and
		// IPv6 (header protocols 11 and 12), a later IPv4 fragment, IPv6
		// extension headers, and a header of an unknown protocol.
		sfDatagram(45, 0, -1, sfFlowSample(31, 10, 1, 2, headerRecord(1, ethVLANIPv6UDP(v6a, v6b, 1200, 5353, 53)))),
		sfDatagram(46, 0, -1, sfFlowSample(32, 10, 1, 2, headerRecord(1, cat(make([]byte, 12), u16(0x88a8), u16(10), u16(0x8100), u16(20), u16(0x0800), ipv4[14:])))),
		sfDatagram(47, 0, -1, sfFlowSample(33, 10, 1, 2, headerRecord(1, mplsFrame([]uint32{16, 17}, ipv4[14:]))),
			sfExpandedSample(34, 10, 1, 2, headerRecord(1, mplsFrame(make([]uint32, 9), ipv4[14:])))),
		sfDatagram(48, 0, -1, sfFlowSample(35, 10, 1, 2, headerRecord(11, ipv4[14:])), sfFlowSample(36, 10, 1, 2, headerRecord(12, ipv6[18:]))),
		sfDatagram(49, 0, -1, sfFlowSample(37, 10, 1, 2, headerRecord(1, fragment))),
		sfDatagram(50, 0, -1, sfFlowSample(38, 10, 1, 2, headerRecord(12, ipv6Ext))),
		sfDatagram(51, 0, -1, sfFlowSample(39, 10, 1, 2, headerRecord(99, ipv4[14:]))),
		// An expanded sample whose source id does not fit a pool key, and
		// one with no records.
		sfDatagram(52, 0, -1, cat(u32(3), u32(44), u32(40), u32(0x100), u32(1), u32(10), u32(400), u32(0), u32(0), u32(1), u32(0), u32(2), u32(0))),
		// Several samples of several formats, some records of unknown type.
		sfDatagram(53, 7, -1, sfCounterSample(2, ifCounters), sfFlowSample(41, 10, 1, 2, sfRecord(1005, make([]byte, 9)), hdr),
			sfExpandedSample(42, 20, 3, 4, sampledIPv6(), gatewayRecord(1, 2, []uint32{3}, 0)), sfFlowSample(43, 10, 1, 2)),
	}
}

// headerRecord returns a sampled-header record (flow type 1) of header
// protocol proto (1 Ethernet, 11 IPv4, 12 IPv6) holding h.
func headerRecord(proto uint32, h []byte) []byte {
	pad := make([]byte, (4-len(h)%4)%4)
	return sfRecord(1, cat(u32(proto), u32(uint32(len(h))+4), u32(4), u32(uint32(len(h))), h, pad))
}

// TestSFlowFastPathMatchesGoflow2 decodes hand-built corner cases, flowgen
// streams and (when pmacct is installed) real sfprobe exports through the
// fast path and through goflow2: records and health counters must be equal.
func TestSFlowFastPathMatchesGoflow2(t *testing.T) {
	t.Run("hand-built", func(t *testing.T) {
		p := newPair()
		for _, b := range sflowCorpus() {
			p.check(t, b)
		}
		if p.fast.fastHits == 0 {
			t.Fatal("the fast path was never taken")
		}
	})
	t.Run("flowgen", func(t *testing.T) {
		p := newPair()
		g, err := flowgen.New(flowgen.Config{Protocol: flowgen.SFlow, Domain: 2, SamplingRate: 64, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			dg, _ := g.Data(nil)
			p.check(t, dg)
		}
		if p.fast.fastHits != 200 {
			t.Fatalf("fast path took %d of 200 datagrams", p.fast.fastHits)
		}
		if got := p.exFast.DecodeErrors[health.ReasonTruncated].Load(); got != 0 {
			t.Fatalf("%d of 200 datagrams counted as truncated", got)
		}
	})
	t.Run("flowgen-agent-drops", func(t *testing.T) {
		// The agent drops three samples for each it sends: past
		// poolMinSamples of a source (eight input interfaces, each a source
		// with its own sequence and pool), both paths scale its samples by
		// the pool's rate, 4 x 64.
		p := newPair()
		g, err := flowgen.New(flowgen.Config{Protocol: flowgen.SFlow, Domain: 2, SamplingRate: 64, AgentDrops: 3, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		pooled := 0
		for i := 0; i < 1600; i++ {
			dg, _ := g.Data(nil)
			for _, r := range p.check(t, dg) {
				switch {
				case r.RateSource == flow.RatePool && r.SamplingRate == 256 && r.StatedRate == 64:
					pooled++
				case r.RateSource != flow.RateHeader || r.SamplingRate != 64 || r.StatedRate != 0:
					t.Fatalf("record rate %d (stated %d) from %v", r.SamplingRate, r.StatedRate, r.RateSource)
				}
			}
		}
		// 1600 datagrams of 8 samples over 8 sources: ~1600 samples each, the
		// last ~576 of each pooled.
		if p.fast.fastHits != 1600 || pooled < 4000 {
			t.Fatalf("fast path took %d of 1600 datagrams; %d of 12800 samples scaled by the pool's rate", p.fast.fastHits, pooled)
		}
	})
	t.Run("pmacct-sfprobe", func(t *testing.T) {
		testkit.SkipIfMissing(t, "pmacctd")
		pcap := filepath.Join(t.TempDir(), "t.pcap")
		if _, err := testkit.WritePcap(pcap, testkit.Spec{Seed: 5, IPv6: true, Flows: 200, Packets: 2000}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		capt, err := testkit.NewCapture(ctx, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer capt.Close()
		if err := testkit.RunPmacctSfprobe(ctx, pcap, capt.Addr(), 10); err != nil {
			t.Fatal(err)
		}
		if err := capt.WaitQuiet(ctx, 1, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		p := newPair()
		for _, d := range capt.Datagrams() {
			p.check(t, d.Data)
		}
		if p.fast.fastHits == 0 {
			t.Fatalf("the fast path decoded none of %d datagrams", len(capt.Datagrams()))
		}
		// A real agent's datagrams are whole.
		if got := p.exFast.DecodeErrors[health.ReasonTruncated].Load(); got != 0 {
			t.Fatalf("%d of %d datagrams counted as truncated", got, len(capt.Datagrams()))
		}
		t.Logf("%d datagrams, %d by the fast path", len(capt.Datagrams()), p.fast.fastHits)
	})
}

// FuzzSFlowFastPathMatchesGoflow2 feeds arbitrary sFlow datagrams to the
// fast path and to goflow2: the records and counters must be equal.
func FuzzSFlowFastPathMatchesGoflow2(f *testing.F) {
	for _, b := range sflowCorpus() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		b = append(u32(5), b[4:]...) // always sFlow v5
		newPair().check(t, b)
	})
}

// poolSampleBytes builds one flow sample (compact or expanded, at random)
// of source src with the given sequence number, pool and rate; one in
// three also carries a record that sends the datagram to goflow2 (an ACL
// record) or makes goflow2 fail midway (a short sampled IPv4 record).
func poolSampleBytes(rng *rand.Rand, src, seq, pool, rate uint32) []byte {
	recs := [][]byte{rawHeader([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1400)}
	switch rng.IntN(6) {
	case 0:
		recs = append(recs, sfRecord(1037, cat(u32(1), u32(3), []byte("abc"), u32(1))))
	case 1:
		recs = append(recs, sfRecord(3, make([]byte, 31)))
	}
	if rng.IntN(2) == 0 {
		body := cat(u32(seq), u32(src), u32(rate), u32(pool), u32(0), u32(1), u32(2), u32(uint32(len(recs))), cat(recs...))
		return cat(u32(1), u32(uint32(len(body))), body)
	}
	body := cat(u32(seq), u32(0), u32(src), u32(rate), u32(pool), u32(0), u32(0), u32(1), u32(0), u32(2), u32(uint32(len(recs))), cat(recs...))
	return cat(u32(3), u32(uint32(len(body))), body)
}

// TestSFlowPoolStateMatchesAcrossPaths runs one decoder pair over long
// streams whose sources' pools make their rates pooled, with sequence
// gaps, restarts, late and repeated samples, samples that send a datagram
// to goflow2 or make goflow2 stop midway, truncated datagrams and flipped
// bits: the sample-pool state carried from datagram to datagram must give
// both paths the same records throughout.
func TestSFlowPoolStateMatchesAcrossPaths(t *testing.T) {
	pooled, total := 0, 0
	for seed := uint64(0); seed < 10; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		p := newPair()
		seqs, pools := make([]uint32, 4), make([]uint32, 4)
		rates := []uint32{100, 100, 0, 256}
		for dg := 0; dg < 3000; dg++ {
			var samples [][]byte
			for range 1 + rng.IntN(8) {
				s := rng.IntN(4)
				seqs[s] += 1 + uint32(rng.IntN(3))
				pools[s] += uint32(300 + rng.IntN(100))
				if rng.IntN(5000) == 0 {
					seqs[s], pools[s] = uint32(rng.IntN(100)), uint32(rng.IntN(1000)) // restart
				}
				seq := seqs[s]
				if rng.IntN(20) == 0 {
					seq -= uint32(rng.IntN(50)) // late or repeated
				}
				samples = append(samples, poolSampleBytes(rng, uint32(s), seq, pools[s], rates[s]))
			}
			b := sfDatagram(uint32(dg), uint32(rng.IntN(2)), -1, samples...)
			if rng.IntN(10) == 0 {
				b = b[:rng.IntN(len(b))+1]
			}
			if rng.IntN(10) == 0 && len(b) > 40 {
				b = append([]byte(nil), b...)
				b[28+rng.IntN(len(b)-28)] ^= byte(1 << rng.IntN(8))
			}
			if len(b) < 4 {
				continue
			}
			for _, r := range p.check(t, b) {
				if r.RateSource == flow.RatePool {
					pooled++
				}
				total++
			}
		}
	}
	if pooled < total/5 {
		t.Fatalf("only %d of %d records scaled by the pool's rate: the streams do not exercise it", pooled, total)
	}
	t.Logf("%d of %d records scaled by the pool's rate", pooled, total)
}
