package decode

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"
	"github.com/netsampler/goflow2/v2/producer"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// genStream is a flowgen export stream: the template/options datagram (nil
// for v5 and sFlow) and data datagrams from a Zipf address mix.
type genStream struct {
	tpl     []byte
	data    [][]byte
	records int // per data datagram
}

// genDatagrams returns n data datagrams of one simulated exporter, sampled
// 1:100 (stated in the v5 header, v9/IPFIX options data or sFlow samples).
func genDatagrams(tb testing.TB, p flowgen.Protocol, n int) genStream {
	tb.Helper()
	g, err := flowgen.New(flowgen.Config{Protocol: p, Domain: 1, SamplingRate: 100, Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	s := genStream{tpl: g.Templates(), records: flowgen.RecordsPerDatagram(p)}
	for i := 0; i < n; i++ {
		dg, _ := g.Data(nil)
		s.data = append(s.data, append([]byte(nil), dg...))
	}
	return s
}

// benchProtocols are the wire formats the comparison benchmarks cover.
var benchProtocols = []struct {
	name string
	p    flowgen.Protocol
}{{"netflow_v5", flowgen.V5}, {"netflow_v9", flowgen.V9}, {"ipfix", flowgen.IPFIX}, {"sflow_v5", flowgen.SFlow}}

// reportPerRecord adds ns/record and records/s to a benchmark whose every
// iteration handled perOp records.
func reportPerRecord(b *testing.B, perOp int) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*perOp)
	b.ReportMetric(ns, "ns/record")
	b.ReportMetric(1e9/ns, "records/s")
}

// BenchmarkDecodeCompare decodes flowgen streams (64 different data
// datagrams per protocol, 30 records each, 8 samples for sFlow) four ways:
//
//   - flowmetrics: Decoder.Decode as the intake calls it (fast paths on);
//   - flowmetrics_goflow2: Decoder.Decode with the fast paths off (goflow2's
//     wire decoders and our producer: the reference);
//   - goflow2: goflow2's DecodeMessageVersion alone, nothing produced;
//   - goflow2_protoproducer: goflow2's decoder plus its ProtoProducer (what
//     the goflow2 binary does before formatting).
//
// One operation is one datagram; ns/record and records/s are per flow record
// (sFlow: per sample).
func BenchmarkDecodeCompare(b *testing.B) {
	addr := netip.MustParseAddr("192.0.2.1")
	for _, pc := range benchProtocols {
		s := genDatagrams(b, pc.p, 64)
		for _, fast := range []bool{true, false} {
			name := "flowmetrics"
			if !fast {
				name = "flowmetrics_goflow2"
			}
			b.Run(pc.name+"/"+name, func(b *testing.B) {
				d, ex := New(Limits{}), &health.Exporter{}
				d.noFastPath = !fast
				if s.tpl != nil {
					d.Decode(s.tpl, addr, ex)
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(s.data[0])))
				for i := 0; i < b.N; i++ {
					res, _ := d.Decode(s.data[i%len(s.data)], addr, ex)
					if len(res.Records) != s.records {
						b.Fatalf("%d records, want %d", len(res.Records), s.records)
					}
				}
				reportPerRecord(b, s.records)
			})
		}
		b.Run(pc.name+"/goflow2", func(b *testing.B) {
			dec := newGoflow2(s.tpl)
			b.ReportAllocs()
			b.SetBytes(int64(len(s.data[0])))
			for i := 0; i < b.N; i++ {
				if _, err := dec.decode(s.data[i%len(s.data)]); err != nil {
					b.Fatal(err)
				}
			}
			reportPerRecord(b, s.records)
		})
		b.Run(pc.name+"/goflow2_protoproducer", func(b *testing.B) {
			dec := newGoflow2(s.tpl)
			cfg, err := (*protoproducer.ProducerConfig)(nil).Compile()
			if err != nil {
				b.Fatal(err)
			}
			prod, err := protoproducer.CreateProtoProducer(cfg, protoproducer.CreateSamplingSystem)
			if err != nil {
				b.Fatal(err)
			}
			args := &producer.ProduceArgs{
				Src: netip.AddrPortFrom(addr, 9995), SamplerAddress: addr, TimeReceived: time.Now(),
			}
			if s.tpl != nil {
				msg, _ := dec.decode(s.tpl)
				msgs, _ := prod.Produce(msg, args)
				prod.Commit(msgs)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(s.data[0])))
			for i := 0; i < b.N; i++ {
				msg, err := dec.decode(s.data[i%len(s.data)])
				if err != nil {
					b.Fatal(err)
				}
				msgs, err := prod.Produce(msg, args)
				if err != nil || len(msgs) != s.records {
					b.Fatalf("%d messages, %v", len(msgs), err)
				}
				prod.Commit(msgs)
			}
			reportPerRecord(b, s.records)
		})
	}
}

// goflow2Decoder decodes datagrams with goflow2 alone, the way its
// DecoderFunc does: a fresh packet value per datagram.
type goflow2Decoder struct {
	templates netflow.NetFlowTemplateSystem
}

func newGoflow2(tpl []byte) *goflow2Decoder {
	d := &goflow2Decoder{templates: netflow.CreateTemplateSystem()}
	if tpl != nil {
		_, _ = d.decode(tpl)
	}
	return d
}

// decode returns the decoded packet (a pointer, as ProtoProducer takes it).
func (d *goflow2Decoder) decode(b []byte) (any, error) {
	buf := bytes.NewBuffer(b)
	switch Protocol(b) {
	case flow.NetFlowV5:
		var p netflowlegacy.PacketNetFlowV5
		return &p, netflowlegacy.DecodeMessageVersion(buf, &p)
	case flow.NetFlowV9:
		var p netflow.NFv9Packet
		return &p, netflow.DecodeMessageVersion(buf, d.templates, &p, nil)
	case flow.IPFIX:
		var p netflow.IPFIXPacket
		return &p, netflow.DecodeMessageVersion(buf, d.templates, nil, &p)
	}
	var p sflow.Packet
	return &p, sflow.DecodeMessageVersion(buf, &p)
}
