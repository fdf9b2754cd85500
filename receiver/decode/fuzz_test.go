package decode

import (
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/health"
)

// FuzzDecode feeds arbitrary datagrams to one decoder, so that templates
// learnt from one input apply to the next. It checks that decoding never
// panics or hangs and that every record is sane.
func FuzzDecode(f *testing.F) {
	f.Add(datagram(9, 1, 7, templateSet(9, 256, flowFields...),
		dataSet(256, flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3))))
	f.Add(datagram(10, 1, 7, templateSet(10, 256, flowFields...),
		dataSet(256, flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3))))
	f.Add(datagram(10, 1, 1, optionsTemplateSet(10, 257, []field{{149, 4}}, []field{{304, 2}, {305, 4}, {309, 4}, {310, 4}}),
		dataSet(257, cat(u32(1), u16(3), u32(1), u32(1), u32(256)))))
	f.Add(datagram(10, 2, 1, templateSet(10, 258, field{1, 0xffff}, field{8, 4}), dataSet(258, []byte{3, 1, 2, 3, 10, 0, 0, 1})))
	f.Add(datagram(10, 3, 1, templateSet(10, 259, field{10, 4}, field{ieDataLinkFrameSize, 2}, field{ieDataLinkFrameSection, 0xffff}),
		dataSet(259, cat(u32(3), u16(1418), varBytes(ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443))))))
	f.Add(datagram(10, 4, 1, templateSet(10, 260, field{ieDataLinkFrameSection, 0xffff}),
		dataSet(260, varBytes(ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)), []byte{255, 0, 1, 0})))
	f.Add(datagram(9, 5, 1, optionsTemplateSet(9, 261, []field{{1, 4}}, []field{{ieSamplingInterval, 4}, {82, 0xffff}}),
		dataSet(261, cat(u32(0), u32(100), varBytes([]byte("eth0"))), make([]byte, 8))))
	f.Add(v5Datagram(0, 100, 2, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 4))
	f.Add(sflowDatagram(1, 512, ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443), 1418))
	d := New(Limits{MaxTemplates: 16})
	ex := &health.Exporter{}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, _ := d.Decode(b, exporter, ex)
		for _, r := range res.Records {
			if r.IPVersion != 0 && r.IPVersion != 4 && r.IPVersion != 6 {
				t.Fatalf("ip version %d", r.IPVersion)
			}
			if r.Exporter != exporter {
				t.Fatalf("exporter %v", r.Exporter)
			}
		}
		if n := ex.Templates.Load(); n > 16 {
			t.Fatalf("%d templates, limit 16", n)
		}
	})
}
