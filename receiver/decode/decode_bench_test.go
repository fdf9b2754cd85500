package decode

import (
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/health"
)

// softflowdFields is the shape of softflowd's IPv4 data template.
var softflowdFields = []field{{8, 4}, {12, 4}, {22, 4}, {21, 4}, {1, 4}, {2, 4}, {10, 2}, {14, 2}, {7, 2}, {11, 2}, {6, 1}, {4, 1}, {5, 1}}

func softflowdRecord(i int) []byte {
	return cat([]byte{10, 1, 0, byte(i)}, []byte{10, 2, 0, byte(i)}, u32(100), u32(200), u32(1500), u32(3), u16(1), u16(2), u16(40000), u16(443), []byte{0x18, 6, 0})
}

// benchDatagrams returns a template datagram and a 30-record data datagram.
func benchDatagrams(version uint16) (tpl, data []byte) {
	var recs [][]byte
	for i := 0; i < 30; i++ {
		recs = append(recs, softflowdRecord(i))
	}
	return datagram(version, 0, 1, templateSet(version, 256, softflowdFields...)), datagram(version, 1, 1, dataSet(256, recs...))
}

func benchDecode(b *testing.B, fast bool, tpl, data []byte) {
	d, ex := New(Limits{}), &health.Exporter{}
	d.noFastPath = !fast
	d.Decode(tpl, exporter, ex)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	n := 0
	for i := 0; i < b.N; i++ {
		res, _ := d.Decode(data, exporter, ex)
		n += len(res.Records)
	}
	if n == 0 {
		b.Fatal("no records")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
}

// BenchmarkDecode decodes one 30-record datagram per operation. The goflow2
// variants are the reference decoder (goflow2's generic data sets plus our
// producer); fast is the compiled-template path.
func BenchmarkDecode(b *testing.B) {
	for _, tc := range []struct {
		name    string
		version uint16
		fast    bool
	}{
		{"netflow_v9/fast", 9, true}, {"netflow_v9/goflow2", 9, false},
		{"ipfix/fast", 10, true}, {"ipfix/goflow2", 10, false},
	} {
		tpl, data := benchDatagrams(tc.version)
		b.Run(tc.name, func(b *testing.B) { benchDecode(b, tc.fast, tpl, data) })
	}
	// PSAMP records with a variable-length packet section (varDataSet)
	psamp := []field{{ieInIf, 4}, {ieDataLinkFrameSize, 2}, {ieDataLinkFrameSection, 0xffff}}
	var recs [][]byte
	for i := 0; i < 30; i++ {
		hdr := ethIPv4TCP([4]byte{10, 1, 0, byte(i)}, [4]byte{10, 2, 0, byte(i)}, 1400, 40000, 443)
		recs = append(recs, cat(u32(3), u16(1418), varBytes(hdr)))
	}
	b.Run("ipfix_varlen/fast", func(b *testing.B) {
		benchDecode(b, true, datagram(10, 0, 1, templateSet(10, 256, psamp...)), datagram(10, 1, 1, dataSet(256, recs...)))
	})
	b.Run("netflow_v5", func(b *testing.B) {
		benchDecode(b, true, nil, v5Datagram(0, 0, 30, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1500, 3))
	})
	b.Run("sflow_v5", func(b *testing.B) {
		hdr := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
		benchDecode(b, true, nil, sflowDatagram(1, 512, hdr, 1418))
	})
}
