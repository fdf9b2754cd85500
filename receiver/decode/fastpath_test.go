package decode

import (
	"bytes"
	"context"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// pair decodes every datagram with the fast path on and off and fails on the
// first difference in records or health counters.
type pair struct {
	fast, ref     *Decoder
	exFast, exRef *health.Exporter
}

func newPair() *pair {
	p := &pair{fast: New(Limits{MaxTemplates: 64}), ref: New(Limits{MaxTemplates: 64}), exFast: &health.Exporter{}, exRef: &health.Exporter{}}
	p.ref.noFastPath = true
	return p
}

func counters(ex *health.Exporter) []uint64 {
	out := []uint64{ex.TemplateMissingSets.Load(), uint64(ex.Templates.Load()), ex.SequenceGaps.Load(), ex.LostRecords.Load(), ex.SequenceResets.Load()}
	for i := range ex.DecodeErrors {
		out = append(out, ex.DecodeErrors[i].Load())
	}
	return out
}

// check decodes b through both paths, requires equal records and counters,
// and returns the records.
func (p *pair) check(t testing.TB, b []byte) []flow.Record {
	t.Helper()
	rf, _ := p.fast.Decode(b, exporter, p.exFast)
	fastRecs := append([]flow.Record(nil), rf.Records...)
	rr, _ := p.ref.Decode(b, exporter, p.exRef)
	if len(fastRecs) != len(rr.Records) {
		t.Fatalf("fast path %d records, goflow2 %d", len(fastRecs), len(rr.Records))
	}
	for i := range fastRecs {
		if !reflect.DeepEqual(fastRecs[i], rr.Records[i]) {
			t.Fatalf("record %d differs:\nfast    %+v\ngoflow2 %+v", i, fastRecs[i], rr.Records[i])
		}
	}
	if cf, cr := counters(p.exFast), counters(p.exRef); !reflect.DeepEqual(cf, cr) {
		t.Fatalf("health counters differ: fast %v, goflow2 %v", cf, cr)
	}
	return fastRecs
}

// TestFastPathMatchesGoflow2 replays real exports (softflowd v5, v9 and IPFIX,
// unsampled and 1:10; pmacct nfprobe v9 and IPFIX at 1:10, with sampler ids)
// and hand-built corner cases through both paths.
func TestFastPathMatchesGoflow2(t *testing.T) {
	t.Run("hand-built", func(t *testing.T) {
		p := newPair()
		rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
		withPen := []field{{8, 4}, {12, 4}, {0x8000 | 5, 4}} // an enterprise field in between
		for _, b := range [][]byte{
			datagram(10, 0, 1, templateSet(10, 256, flowFields...), optionsTemplateSet(10, 257, []field{{149, 4}}, []field{{34, 4}}), dataSet(257, cat(u32(1), u32(100)))),
			datagram(10, 1, 1, dataSet(256, rec, rec, rec)),
			datagram(10, 4, 1, dataSet(256, rec), dataSet(256, rec, make([]byte, 3))), // padding
			datagram(10, 6, 1, dataSet(256, rec[:10])),                                // short set: no record
			datagram(10, 6, 1, dataSet(300, rec)),                                     // unknown template
			datagram(10, 7, 2, dataSet(256, rec)),                                     // other domain
			datagram(9, 0, 1, templateSet(9, 256, flowFields...), dataSet(256, rec)),
			datagram(9, 1, 1, dataSet(256, rec, rec)),
			datagram(9, 5, 1, dataSet(256, rec)), // gap
			datagram(10, 8, 1, templateSet(10, 258, withPen...)),
			datagram(10, 8, 1, dataSet(258, cat([]byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, u32(9)))),
			datagram(10, 9, 1, templateSet(10, 256, field{1, 8}, field{8, 4})), // template changes
			datagram(10, 9, 1, dataSet(256, cat(u32(0), u32(77), []byte{10, 0, 0, 9}))),
			v5Datagram(0, 0x4000|100, 30, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1500, 3),
			v5Datagram(40, 0, 2, [4]byte{10, 9, 0, 1}, [4]byte{192, 0, 2, 2}, 0xffffffff, 1),
		} {
			p.check(t, b)
		}
		if p.fast.fastHits == 0 {
			t.Fatal("the fast path was never taken")
		}
	})
	testkit.SkipIfMissing(t, "softflowd", "pmacctd")
	pcap := filepath.Join(t.TempDir(), "t.pcap")
	if _, err := testkit.WritePcap(pcap, testkit.Spec{Seed: 4, IPv6: true, Flows: 300, Packets: 3000}); err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		name string
		run  func(ctx context.Context, target string) error
	}{
		{"softflowd-v5-s10", func(ctx context.Context, a string) error { return testkit.RunSoftflowd(ctx, pcap, a, 5, 10) }},
		{"softflowd-v9", func(ctx context.Context, a string) error { return testkit.RunSoftflowd(ctx, pcap, a, 9, 0) }},
		{"softflowd-v9-s10", func(ctx context.Context, a string) error { return testkit.RunSoftflowd(ctx, pcap, a, 9, 10) }},
		{"softflowd-ipfix", func(ctx context.Context, a string) error { return testkit.RunSoftflowd(ctx, pcap, a, 10, 0) }},
		{"softflowd-ipfix-s10", func(ctx context.Context, a string) error { return testkit.RunSoftflowd(ctx, pcap, a, 10, 10) }},
		{"pmacct-v9-r10", func(ctx context.Context, a string) error { return testkit.RunPmacctNfprobe(ctx, pcap, a, 9, 10) }},
		{"pmacct-ipfix-r10", func(ctx context.Context, a string) error { return testkit.RunPmacctNfprobe(ctx, pcap, a, 10, 10) }},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			capt, err := testkit.NewCapture(ctx, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer capt.Close()
			if err := r.run(ctx, capt.Addr()); err != nil {
				t.Fatal(err)
			}
			if err := capt.WaitQuiet(ctx, 1, 200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			p := newPair()
			n := 0
			for _, d := range capt.Datagrams() {
				p.check(t, d.Data)
				n++
			}
			if p.fast.fastHits == 0 {
				t.Fatalf("the fast path decoded none of %d datagrams", n)
			}
			t.Logf("%d datagrams, %d by the fast path", n, p.fast.fastHits)
		})
	}
}

// FuzzFastPathMatchesGoflow2 teaches both decoders a template and options,
// then feeds arbitrary datagrams: the records and counters must be equal.
func FuzzFastPathMatchesGoflow2(f *testing.F) {
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	f.Add(datagram(10, 1, 1, dataSet(256, rec, rec)))
	f.Add(datagram(9, 1, 1, dataSet(256, rec)))
	f.Add(datagram(10, 1, 1, dataSet(256, rec), dataSet(300, rec)))
	f.Add(datagram(10, 1, 1, dataSet(256, rec[:7])))
	f.Add(v5Datagram(7, 0x4000|64, 3, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1500, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := newPair()
		for _, v := range []uint16{9, 10} {
			p.check(t, datagram(v, 0, 1, templateSet(v, 256, flowFields...), templateSet(v, 257, field{1, 8}, field{2, 8}, field{27, 16}, field{28, 16}, field{48, 1}),
				optionsTemplateSet(v, 258, []field{{1, 4}}, []field{{48, 1}, {50, 4}}), dataSet(258, cat(u32(0), []byte{3}, u32(64)))))
		}
		p.check(t, b)
	})
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name       string
		fields     []field
		wantNil    bool
		wantSize   int
		wantDirect bool
		wantOps    int // fields left to recordBuilder.field
	}{
		{"flow fields", flowFields, false, 25, true, 0},
		{"variable length", []field{{1, 0xffff}, {8, 4}}, true, 0, false, 0},
		{"unused field", []field{{1, 4}, {999, 8}, {2, 4}}, false, 16, true, 0},
		{"totals and sampling", []field{{85, 8}, {8, 4}, {34, 4}, {48, 1}}, false, 17, true, 3},
		{"twice the same value", []field{{1, 4}, {1, 8}, {34, 4}}, false, 16, false, 3},
		{"v4 and v6 source", []field{{8, 4}, {27, 16}}, false, 20, false, 2},
		{"v6 source of the wrong length", []field{{8, 4}, {27, 4}}, false, 8, true, 0},
		{"only zero-length fields", []field{{1, 0}}, true, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compile(templateRecordOf(tt.fields))
			if (c == nil) != tt.wantNil {
				t.Fatalf("compile = %v", c)
			}
			if c == nil {
				return
			}
			if c.size != tt.wantSize || (c.direct != nil) != tt.wantDirect || len(c.ops) != tt.wantOps {
				t.Fatalf("size %d direct %v ops %d, want %d %v %d", c.size, c.direct != nil, len(c.ops), tt.wantSize, tt.wantDirect, tt.wantOps)
			}
		})
	}
}

// layoutIEs are the elements templateFromSpec draws from: every one
// recordBuilder reads, and one it does not.
var layoutIEs = append(slices.Sorted(maps.Keys(usedIE)), 999)

// templateFromSpec turns two bytes per field into a template of at most 24
// fields: an element of layoutIEs (the first byte's low 7 bits; its top bit
// sets the enterprise bit, so in IPFIX the same number from another
// enterprise, which the decoders must ignore) and a length, the address
// lengths and odd ones included.
func templateFromSpec(spec []byte) []field {
	lengths := []uint16{1, 2, 4, 8, 16, 4, 3, 0, 12}
	var fields []field
	for i := 0; i+1 < len(spec) && len(fields) < 24; i += 2 {
		typ := layoutIEs[int(spec[i]&0x7f)%len(layoutIEs)]
		if spec[i]&0x80 != 0 {
			typ |= 0x8000
		}
		fields = append(fields, field{typ, lengths[int(spec[i+1])%len(lengths)]})
	}
	return fields
}

// checkTemplate teaches both paths the template spec describes and decodes
// data as its records through both.
func checkTemplate(t testing.TB, spec, data []byte) {
	fields := templateFromSpec(spec)
	if len(fields) == 0 {
		return
	}
	size := 0
	for _, f := range fields {
		size += int(f.length)
	}
	for _, v := range []uint16{9, 10} {
		p := newPair()
		p.check(t, datagram(v, 0, 1, templateSet(v, 256, fields...)))
		p.check(t, datagram(v, 1, 1, dataSet(256, data)))
		// Every template with a byte in it is compiled, so the fast path
		// must have decoded the data set rather than handed it to goflow2.
		if want := size > 0; (p.fast.fastHits == 1) != want {
			t.Fatalf("v%d: fast path took %d datagrams, want %v (template %v)", v, p.fast.fastHits, want, fields)
		}
	}
}

// TestDirectLayoutMatchesGoflow2 checks 3,000 random templates (duplicates,
// wrong address lengths and all) and random records against goflow2.
func TestDirectLayoutMatchesGoflow2(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	direct := 0
	for range 3000 {
		spec := make([]byte, 2*(1+rng.IntN(20)))
		for i := range spec {
			spec[i] = byte(rng.UintN(256))
		}
		data := make([]byte, rng.IntN(400))
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		checkTemplate(t, spec, data)
		if c := compile(templateRecordOf(templateFromSpec(spec))); c != nil && c.direct != nil {
			direct++
		}
	}
	if direct < 300 {
		t.Fatalf("only %d of 3000 templates had a direct layout", direct)
	}
}

// FuzzDirectLayoutMatchesGoflow2 is TestDirectLayoutMatchesGoflow2 with
// templates and records from the fuzzer (spec indexes layoutIEs, sorted).
func FuzzDirectLayoutMatchesGoflow2(f *testing.F) {
	f.Add([]byte{5, 2, 8, 2, 0, 2, 1, 2}, flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3))
	f.Add([]byte{5, 2, 14, 4, 19, 0, 0, 3, 0, 2}, make([]byte, 64))
	f.Add([]byte{0, 2, 0, 3, 20, 3}, make([]byte, 40))
	f.Add([]byte{14, 4, 15, 4, 22, 3, 23, 3, 19, 0}, bytes.Repeat([]byte{1, 0, 0xfe}, 40)) // IPv6, start/end, direction
	f.Fuzz(func(t *testing.T, spec, data []byte) { checkTemplate(t, spec, data) })
}
