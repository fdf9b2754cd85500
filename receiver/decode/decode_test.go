package decode

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

var exporter = netip.MustParseAddr("192.0.2.1")

var flowFields = []field{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {1, 4}, {2, 4}, {10, 2}, {14, 2}}

func flowRecord(src, dst [4]byte, sport, dport uint16, proto uint8, bytes, pkts uint32) []byte {
	return cat(src[:], dst[:], u16(sport), u16(dport), []byte{proto}, u32(bytes), u32(pkts), u16(3), u16(4))
}

func decodeAll(t *testing.T, d *Decoder, ex *health.Exporter, dgs ...[]byte) []flow.Record {
	t.Helper()
	var out []flow.Record
	for _, b := range dgs {
		res, _ := d.Decode(b, exporter, ex)
		out = append(out, res.Records...)
	}
	return out
}

func TestNetFlowTemplateAndData(t *testing.T) {
	for _, version := range []uint16{9, 10} {
		d, ex := New(Limits{}), &health.Exporter{}
		b := datagram(version, 1, 7,
			templateSet(version, 256, flowFields...),
			dataSet(256,
				flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 40000, 443, 6, 1500, 3),
				flowRecord([4]byte{10, 0, 0, 3}, [4]byte{10, 0, 0, 4}, 53, 53, 17, 80, 1)))
		recs := decodeAll(t, d, ex, b)
		if len(recs) != 2 {
			t.Fatalf("v%d: %d records, want 2", version, len(recs))
		}
		r := recs[0]
		if r.SrcAddr != netip.MustParseAddr("10.0.0.1") || r.DstPort != 443 || r.Proto != 6 || r.Bytes != 1500 || r.Packets != 3 ||
			r.InIf != 3 || r.OutIf != 4 || r.Domain != 7 || r.IPVersion != 4 {
			t.Fatalf("v%d: record = %+v", version, r)
		}
		if r.RateSource != flow.RateUnknown {
			t.Fatalf("v%d: no options sent but rate source %v", version, r.RateSource)
		}
		if ex.Templates.Load() != 1 {
			t.Fatalf("v%d: templates = %d, want 1", version, ex.Templates.Load())
		}
	}
}

func TestDataBeforeTemplateIsCountedThenDecoded(t *testing.T) {
	d, ex := New(Limits{}), &health.Exporter{}
	data := dataSet(300, flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 2, 6, 100, 1))
	recs := decodeAll(t, d, ex, datagram(10, 0, 1, data))
	if len(recs) != 0 || ex.TemplateMissingSets.Load() != 1 || ex.DecodeErrors[health.ReasonTemplateMissing].Load() != 1 {
		t.Fatalf("before template: %d records, %d missing sets", len(recs), ex.TemplateMissingSets.Load())
	}
	recs = decodeAll(t, d, ex, datagram(10, 1, 1, templateSet(10, 300, flowFields...), data))
	if len(recs) != 1 || recs[0].Bytes != 100 {
		t.Fatalf("after template: %+v", recs)
	}
}

func TestTemplateReplaced(t *testing.T) {
	d, ex := New(Limits{}), &health.Exporter{}
	decodeAll(t, d, ex, datagram(10, 0, 1, templateSet(10, 256, flowFields...)))
	// Same id, new layout: bytes first.
	newFields := []field{{1, 8}, {2, 8}, {8, 4}, {12, 4}}
	rec := cat(u32(0), u32(9000), u32(0), u32(6), []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2})
	recs := decodeAll(t, d, ex, datagram(10, 1, 1, templateSet(10, 256, newFields...), dataSet(256, rec)))
	if len(recs) != 1 || recs[0].Bytes != 9000 || recs[0].Packets != 6 {
		t.Fatalf("records after template change = %+v", recs)
	}
}

func TestSamplingRateFromOptions(t *testing.T) {
	ipfixScope := []field{{149, 4}} // observationDomainId
	tests := []struct {
		name     string
		version  uint16
		opts     set
		optData  []byte
		data     []field
		record   []byte
		before   bool // options data set sent after the data in the datagram
		wantRate uint32
		wantSrc  flow.RateSource
	}{
		{
			name: "softflowd v9 34/35", version: 9,
			opts:    optionsTemplateSet(9, 257, []field{{1, 4}}, []field{{34, 4}, {35, 1}}),
			optData: cat(u32(0), u32(10), []byte{1}),
			data:    flowFields, record: flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1),
			wantRate: 10, wantSrc: flow.RateDomain,
		},
		{
			name: "options after data in the same datagram", version: 9, before: true,
			opts:    optionsTemplateSet(9, 257, []field{{1, 4}}, []field{{34, 4}}),
			optData: cat(u32(0), u32(64)),
			data:    flowFields, record: flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1),
			wantRate: 64, wantSrc: flow.RateDomain,
		},
		{
			name: "pmacct v9 sampler id 48/49/50", version: 9,
			opts:     optionsTemplateSet(9, 257, []field{{1, 4}}, []field{{48, 1}, {49, 1}, {50, 4}}),
			optData:  cat(u32(0), []byte{5, 2}, u32(20)),
			data:     append(append([]field(nil), flowFields...), field{48, 1}),
			record:   cat(flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1), []byte{5}),
			wantRate: 20, wantSrc: flow.RateSampler,
		},
		{
			name: "IPFIX systematic count-based 305/306", version: 10,
			opts:    optionsTemplateSet(10, 257, ipfixScope, []field{{304, 2}, {305, 4}, {306, 4}}),
			optData: cat(u32(1), u16(1), u32(1), u32(99)),
			data:    flowFields, record: flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1),
			wantRate: 100, wantSrc: flow.RateDomain,
		},
		{
			name: "IOS XR random n-out-of-N with 305=1", version: 10,
			opts:     optionsTemplateSet(10, 257, ipfixScope, []field{{302, 4}, {304, 2}, {305, 4}, {309, 4}, {310, 4}}),
			optData:  cat(u32(1), u32(9), u16(3), u32(1), u32(1), u32(256)),
			data:     append(append([]field(nil), flowFields...), field{302, 4}),
			record:   cat(flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1), u32(9)),
			wantRate: 256, wantSrc: flow.RateSampler,
		},
		{
			name: "IPFIX uniform probabilistic 311", version: 10,
			opts:    optionsTemplateSet(10, 257, ipfixScope, []field{{304, 2}, {311, 8}}),
			optData: cat(u32(1), u16(4), []byte{0x3f, 0x84, 0x7a, 0xe1, 0x47, 0xae, 0x14, 0x7b}), // 0.01
			data:    flowFields, record: flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1),
			wantRate: 100, wantSrc: flow.RateDomain,
		},
		{
			name: "rate in the data record itself", version: 10,
			opts:     optionsTemplateSet(10, 257, ipfixScope, []field{{34, 4}}),
			optData:  cat(u32(1), u32(1000)),
			data:     append(append([]field(nil), flowFields...), field{34, 4}),
			record:   cat(flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1), u32(50)),
			wantRate: 50, wantSrc: flow.RateRecord,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ex := New(Limits{}), &health.Exporter{}
			sets := []set{tt.opts, templateSet(tt.version, 256, tt.data...)}
			od, dd := dataSet(257, tt.optData), dataSet(256, tt.record)
			if tt.before {
				sets = append(sets, dd, od)
			} else {
				sets = append(sets, od, dd)
			}
			recs := decodeAll(t, d, ex, datagram(tt.version, 0, 1, sets...))
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1 (errors %v)", len(recs), ex.DecodeErrors[health.ReasonMalformed].Load())
			}
			if recs[0].SamplingRate != tt.wantRate || recs[0].RateSource != tt.wantSrc {
				t.Fatalf("rate %d from %v, want %d from %v", recs[0].SamplingRate, recs[0].RateSource, tt.wantRate, tt.wantSrc)
			}
		})
	}
}

func TestFieldlessTemplateDoesNotHang(t *testing.T) {
	for _, version := range []uint16{9, 10} {
		d, ex := New(Limits{}), &health.Exporter{}
		b := datagram(version, 0, 1, templateSet(version, 256), dataSet(256, make([]byte, 16)))
		recs := decodeAll(t, d, ex, b)
		if len(recs) != 0 || ex.DecodeErrors[health.ReasonTemplateInvalid].Load() != 1 {
			t.Fatalf("v%d: %d records, template_invalid = %d", version, len(recs), ex.DecodeErrors[health.ReasonTemplateInvalid].Load())
		}
		// Zero-length fields only: just as bad.
		b = datagram(version, 1, 1, templateSet(version, 257, field{1, 0}, field{2, 0}), dataSet(257, make([]byte, 8)))
		decodeAll(t, d, ex, b)
		if ex.DecodeErrors[health.ReasonTemplateInvalid].Load() != 2 {
			t.Fatalf("v%d: zero-length template accepted", version)
		}
	}
}

// TestTemplateLimit: a full template store makes room for a new template
// by forgetting the oldest template no data set has used, and refuses it
// (template_limit) when every stored template is in use. Sources are easy
// to spoof: a flood of made-up templates in a real exporter's name (here
// 300, against a limit of 4) must not forget the templates its data sets
// use, nor stop it adding one once the flood has passed... as long as it
// has a template to spare no data uses.
func TestTemplateLimit(t *testing.T) {
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	for _, version := range []uint16{9, 10} {
		t.Run(fmt.Sprintf("unused v%d", version), func(t *testing.T) {
			d, ex := New(Limits{MaxTemplates: 2}), &health.Exporter{}
			for id := uint16(256); id < 260; id++ {
				decodeAll(t, d, ex, datagram(version, uint32(id), 1, templateSet(version, id, flowFields...)))
			}
			if ex.Templates.Load() != 2 || ex.DecodeErrors[health.ReasonTemplateLimit].Load() != 0 {
				t.Fatalf("templates = %d, template_limit errors = %d; want 2, 0", ex.Templates.Load(), ex.DecodeErrors[health.ReasonTemplateLimit].Load())
			}
			// The two newest stay: 256 and 257 were forgotten, oldest first.
			recs := decodeAll(t, d, ex, datagram(version, 9, 1, dataSet(256, rec), dataSet(257, rec), dataSet(258, rec), dataSet(259, rec)))
			if len(recs) != 2 || ex.TemplateMissingSets.Load() != 2 {
				t.Fatalf("%d records, %d sets without template; want 2, 2", len(recs), ex.TemplateMissingSets.Load())
			}
		})
		t.Run(fmt.Sprintf("in use v%d", version), func(t *testing.T) {
			d, ex := New(Limits{MaxTemplates: 4}), &health.Exporter{}
			real := func(seq uint32) []byte {
				return datagram(version, seq, 1, templateSet(version, 256, flowFields...), templateSet(version, 257, flowFields...),
					dataSet(256, rec), dataSet(257, rec))
			}
			decodeAll(t, d, ex, real(0))
			// The flood: 300 made-up templates, ten to a datagram.
			for i := range 30 {
				var sets []set
				for j := range 10 {
					sets = append(sets, templateSet(version, uint16(1000+10*i+j), flowFields...))
				}
				decodeAll(t, d, ex, datagram(version, uint32(1+i), 1, sets...))
			}
			if got := ex.DecodeErrors[health.ReasonTemplateLimit].Load(); got != 0 {
				t.Fatalf("flood: template_limit %d, want 0 (made-up templates forget one another)", got)
			}
			// The exporter's templates still decode, and a new one of its
			// own takes the place of a made-up one.
			recs := decodeAll(t, d, ex, datagram(version, 40, 1, templateSet(version, 258, flowFields...),
				dataSet(256, rec), dataSet(257, rec), dataSet(258, rec)))
			if len(recs) != 3 || ex.TemplateMissingSets.Load() != 0 || ex.Templates.Load() != 4 {
				t.Fatalf("after the flood: %d records, %d sets without template, %d templates; want 3, 0, 4",
					len(recs), ex.TemplateMissingSets.Load(), ex.Templates.Load())
			}
			// Once all four are in use, a fifth is refused and forgets none.
			decodeAll(t, d, ex, datagram(version, 41, 1, templateSet(version, 259, flowFields...), dataSet(259, rec)))
			recs = decodeAll(t, d, ex, datagram(version, 42, 1, templateSet(version, 260, flowFields...),
				dataSet(256, rec), dataSet(257, rec), dataSet(258, rec), dataSet(259, rec), dataSet(260, rec)))
			if got := ex.DecodeErrors[health.ReasonTemplateLimit].Load(); got != 1 || len(recs) != 4 {
				t.Fatalf("all in use: template_limit %d, %d records; want 1, 4", got, len(recs))
			}
		})
	}
}

// TestSamplerLimit: past MaxSamplers, a new sampler id's rate takes the
// place of the oldest rate no record has used; when every rate is in use
// it is refused and counted (once per datagram); known ones still update;
// records of a forgotten or refused sampler have no rate.
func TestSamplerLimit(t *testing.T) {
	d, ex := New(Limits{MaxSamplers: 2}), &health.Exporter{}
	opts := optionsTemplateSet(9, 257, []field{{1, 4}}, []field{{48, 1}, {49, 1}, {50, 4}})
	data := append(append([]field(nil), flowFields...), field{48, 1})
	rate := func(id byte, r uint32) []byte { return cat(u32(0), []byte{id, 2}, u32(r)) }
	rec := func(id byte) []byte {
		return cat(flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1), []byte{id})
	}
	rates := func(recs []flow.Record) []uint32 {
		var out []uint32
		for _, r := range recs {
			out = append(out, r.SamplingRate)
		}
		return out
	}
	// Samplers 1 and 2 wait unused; 3 takes 1's place.
	decodeAll(t, d, ex, datagram(9, 0, 1, opts, templateSet(9, 256, data...), dataSet(257, rate(1, 10), rate(2, 20), rate(3, 30))))
	if got := ex.DecodeErrors[health.ReasonSamplerLimit].Load(); got != 0 {
		t.Fatalf("sampler_limit = %d with unused rates to forget, want 0", got)
	}
	recs := decodeAll(t, d, ex, datagram(9, 1, 1, dataSet(256, rec(1), rec(2), rec(3))))
	if got := rates(recs); !slices.Equal(got, []uint32{0, 20, 30}) {
		t.Fatalf("rates of samplers 1, 2, 3: %v, want [0 20 30] (1 forgotten)", got)
	}
	// 2 and 3 are in use: 4 is refused, 1 too; 2 still updates.
	decodeAll(t, d, ex, datagram(9, 2, 1, dataSet(257, rate(4, 40), rate(1, 10), rate(2, 25))))
	if got := ex.DecodeErrors[health.ReasonSamplerLimit].Load(); got != 1 {
		t.Fatalf("sampler_limit = %d after one datagram refusing two rates, want 1", got)
	}
	decodeAll(t, d, ex, datagram(9, 3, 1, dataSet(257, rate(2, 26))))
	if got := ex.DecodeErrors[health.ReasonSamplerLimit].Load(); got != 1 {
		t.Fatalf("sampler_limit = %d after updating a known sampler, want 1", got)
	}
	recs = decodeAll(t, d, ex, datagram(9, 4, 1, dataSet(256, rec(2), rec(3), rec(4))))
	if got := rates(recs); !slices.Equal(got, []uint32{26, 30, 0}) {
		t.Fatalf("rates of samplers 2, 3, 4: %v, want [26 30 0]", got)
	}
}

// TestForgedSamplersGiveWay: a flood of rates for made-up sampler ids from
// a real exporter's address (no record ever uses them) refuses nothing,
// keeps the exporter's own sampler, lets a sampler it adds later in, and
// holds at most MaxSamplers rates. Before, the flood filled the table for
// good and the new sampler's records had no rate.
func TestForgedSamplersGiveWay(t *testing.T) {
	d, ex := New(Limits{}), &health.Exporter{}
	opts := optionsTemplateSet(9, 257, []field{{1, 4}}, []field{{48, 2}, {49, 1}, {50, 4}})
	data := append(append([]field(nil), flowFields...), field{48, 2})
	rate := func(id uint16, r uint32) []byte { return cat(u32(0), u16(id), []byte{2}, u32(r)) }
	rec := func(id uint16) []byte {
		return cat(flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1), u16(id))
	}
	decodeAll(t, d, ex, datagram(9, 0, 1, opts, templateSet(9, 256, data...), dataSet(257, rate(7, 70))))
	if recs := decodeAll(t, d, ex, datagram(9, 1, 1, dataSet(256, rec(7)))); len(recs) != 1 || recs[0].SamplingRate != 70 {
		t.Fatalf("the exporter's own sampler: %+v, want one record at 70", recs)
	}
	seq := uint32(2)
	for id := uint16(1000); id < 3000; id += 10 {
		var forged [][]byte
		for j := range uint16(10) {
			forged = append(forged, rate(id+j, 1000))
		}
		decodeAll(t, d, ex, datagram(9, seq, 1, dataSet(257, forged...)))
		seq++
	}
	decodeAll(t, d, ex, datagram(9, seq, 1, dataSet(257, rate(9, 90))))
	recs := decodeAll(t, d, ex, datagram(9, seq+1, 1, dataSet(256, rec(7), rec(9), rec(1000))))
	if len(recs) != 3 || recs[0].SamplingRate != 70 || recs[1].SamplingRate != 90 || recs[2].SamplingRate != 0 {
		t.Fatalf("samplers 7, 9 and a forged one after the flood: %+v, want rates 70, 90, 0", recs)
	}
	if got := ex.DecodeErrors[health.ReasonSamplerLimit].Load(); got != 0 {
		t.Fatalf("sampler_limit = %d, want 0: forged rates were never used", got)
	}
	st := ex.Attached().(*exporterState)
	if n, w := st.samplers.len(), len(st.samplers.waiting); n != DefaultLimits.MaxSamplers || w > n {
		t.Fatalf("%d rates, %d waiting; want %d, at most as many", n, w, DefaultLimits.MaxSamplers)
	}
}

// TestForgedDomainsGiveWay: observation-domain rates (options scoped to
// the domain) are kept the same way: forged domains' rates, which no
// record takes, make room for a new real domain, and the domain whose
// rate records took is kept.
func TestForgedDomainsGiveWay(t *testing.T) {
	d, ex := New(Limits{MaxSamplers: 4}), &health.Exporter{}
	opts := optionsTemplateSet(9, 257, []field{{1, 4}}, []field{{34, 4}})
	tpl := templateSet(9, 256, flowFields...)
	rate := func(r uint32) []byte { return cat(u32(0), u32(r)) }
	rec := flowRecord([4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 2, 6, 100, 1)
	decodeAll(t, d, ex, datagram(9, 0, 1, opts, tpl, dataSet(257, rate(10))))
	if recs := decodeAll(t, d, ex, datagram(9, 1, 1, dataSet(256, rec))); len(recs) != 1 || recs[0].SamplingRate != 10 {
		t.Fatalf("domain 1's record: %+v, want rate 10", recs)
	}
	for domain := uint32(100); domain < 120; domain++ {
		decodeAll(t, d, ex, datagram(9, 0, domain, opts, dataSet(257, rate(1000))))
	}
	recs := decodeAll(t, d, ex, datagram(9, 0, 2, opts, tpl, dataSet(257, rate(20)), dataSet(256, rec)),
		datagram(9, 2, 1, dataSet(256, rec)))
	if len(recs) != 2 || recs[0].SamplingRate != 20 || recs[1].SamplingRate != 10 {
		t.Fatalf("records of domains 2 and 1 after the flood: %+v, want rates 20, 10", recs)
	}
	if got := ex.DecodeErrors[health.ReasonSamplerLimit].Load(); got != 0 {
		t.Fatalf("sampler_limit = %d, want 0: forged domains' rates were never taken", got)
	}
}

// TestSequenceSourcesGiveWay: after a flood of one-off observation domains
// from an exporter's address (more than it tracks), a domain that starts
// later is tracked and its gap counted, and the domain tracked before the
// flood still is.
func TestSequenceSourcesGiveWay(t *testing.T) {
	d, ex := New(Limits{}), &health.Exporter{}
	decodeAll(t, d, ex, datagram(9, 0, 1), datagram(9, 1, 1))
	for domain := uint32(100); domain < 100+3*maxSequenceSources; domain++ {
		decodeAll(t, d, ex, datagram(9, 5, domain))
	}
	decodeAll(t, d, ex, datagram(9, 10, 7), datagram(9, 11, 7), datagram(9, 13, 7)) // domain 7 loses one
	if got := ex.SequenceGaps.Load(); got != 1 {
		t.Fatalf("%d gaps after the flood, want 1 (the new domain's)", got)
	}
	decodeAll(t, d, ex, datagram(9, 2, 1), datagram(9, 4, 1)) // domain 1 loses one
	if got := ex.SequenceGaps.Load(); got != 2 {
		t.Fatalf("%d gaps, want 2: the domain tracked before the flood is still tracked", got)
	}
	if n := ex.Attached().(*exporterState).seq.len(); n != maxSequenceSources {
		t.Fatalf("%d sequence trackers, want %d", n, maxSequenceSources)
	}
}

// TestSequenceSourcesInRotation: an exporter with more observation domains
// than it has trackers for, each sending one datagram in turn (quiet line
// cards, say), has the loss of maxSequenceSources of them counted, as first
// come, first kept did. A domain past the limit must not take the place of
// a tracker whose second datagram has not come yet: in a rotation each
// would be forgotten before it, and no domain's loss would be counted. And
// after one-off domains fill the trackers, a quiet domain tracked before
// them is still tracked, and a new domain is from its second datagram.
func TestSequenceSourcesInRotation(t *testing.T) {
	for _, n := range []uint32{maxSequenceSources + 1, 2 * maxSequenceSources, 5 * maxSequenceSources} {
		d, ex := New(Limits{}), &health.Exporter{}
		for round := range uint32(4) {
			seq := round
			if round == 3 {
				seq = 4 // every domain's datagram 3 is lost
			}
			for domain := uint32(1); domain <= n; domain++ {
				decodeAll(t, d, ex, datagram(9, seq, domain))
			}
		}
		if got := ex.SequenceGaps.Load(); got != maxSequenceSources {
			t.Errorf("%d domains in rotation: %d gaps, want %d (one per tracked domain)", n, got, maxSequenceSources)
		}
	}

	d, ex := New(Limits{}), &health.Exporter{}
	decodeAll(t, d, ex, datagram(9, 0, 1)) // a quiet domain: one datagram so far
	for domain := uint32(100); domain < 100+3*maxSequenceSources; domain++ {
		decodeAll(t, d, ex, datagram(9, 5, domain))
	}
	decodeAll(t, d, ex, datagram(9, 2, 1)) // domain 1 lost one
	if got := ex.SequenceGaps.Load(); got != 1 {
		t.Fatalf("%d gaps, want 1: the quiet domain tracked before the one-off ones", got)
	}
	decodeAll(t, d, ex, datagram(9, 10, 7), datagram(9, 11, 7), datagram(9, 13, 7)) // domain 7 lost one
	if got := ex.SequenceGaps.Load(); got != 2 {
		t.Fatalf("%d gaps, want 2: a new domain from its second datagram", got)
	}
}

// TestSequencePerProtocol: one address exporting NetFlow v9 and IPFIX
// with the same domain number (and v5 and sFlow with the same engine and
// sub-agent 0) keeps one sequence per protocol: interleaved, each counts
// the one datagram it lost and no gap in the others' numbers.
func TestSequencePerProtocol(t *testing.T) {
	d, ex := New(Limits{}), &health.Exporter{}
	src, dst := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	hdr := ethIPv4TCP(src, dst, 1400, 40000, 443)
	for i := range uint32(4) {
		if i == 2 {
			continue // every protocol loses its third datagram
		}
		decodeAll(t, d, ex, datagram(9, i, 1), datagram(10, 1000, 1), v5Datagram(3*i, 0, 3, src, dst, 100, 1))
		sflow := sflowDatagram(i, 512, hdr, 1418)
		binary.BigEndian.PutUint32(sflow[12:], 0) // sub-agent 0, as v5's engine
		decodeAll(t, d, ex, sflow)
	}
	// IPFIX counts records and its messages carry none: no loss there. A
	// lost v9 or sFlow datagram is taken to have carried as many records as
	// the one after it: none for these v9 ones, one sample for sFlow.
	if g, l := ex.SequenceGaps.Load(), ex.LostRecords.Load(); g != 3 || l != 0+3+1 {
		t.Fatalf("gaps %d lost %d, want 3 (v9, v5, sFlow) and 4 records (v5's 3, sFlow's 1)", g, l)
	}
	if n := ex.Attached().(*exporterState).seq.len(); n != 4 {
		t.Fatalf("%d sequence trackers, want 4 (one per protocol)", n)
	}
}

func TestV5(t *testing.T) {
	d, ex := New(Limits{}), &health.Exporter{}
	recs := decodeAll(t, d, ex, v5Datagram(0, 0x4000|100, 2, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 4))
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Bytes != 1000 || r.Packets != 4 || r.SamplingRate != 100 || r.RateSource != flow.RateHeader ||
		r.SrcAS != 64500 || r.DstAS != 64501 || r.DstPort != 443 || r.InIf != 1 || r.OutIf != 2 {
		t.Fatalf("record = %+v", r)
	}
}

func TestSequenceLoss(t *testing.T) {
	src, dst := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	tests := []struct {
		name               string
		seqs               []uint32
		wantGaps, wantLost uint64
		wantResets         uint64
	}{
		{"in order", []uint32{0, 3, 6, 9}, 0, 0, 0},
		{"one datagram lost", []uint32{0, 3, 9}, 1, 3, 0},
		{"wrap at 2^32", []uint32{0xfffffffd, 0, 3}, 0, 0, 0},
		{"restart is not loss", []uint32{5000000, 0, 3}, 0, 0, 1},
		{"late datagram is not loss", []uint32{0, 6, 3, 9}, 1, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ex := New(Limits{}), &health.Exporter{}
			for _, s := range tt.seqs {
				decodeAll(t, d, ex, v5Datagram(s, 0, 3, src, dst, 100, 1))
			}
			if g, l, r := ex.SequenceGaps.Load(), ex.LostRecords.Load(), ex.SequenceResets.Load(); g != tt.wantGaps || l != tt.wantLost || r != tt.wantResets {
				t.Fatalf("gaps %d lost %d resets %d; want %d %d %d", g, l, r, tt.wantGaps, tt.wantLost, tt.wantResets)
			}
		})
	}
}

func TestSFlowRawHeader(t *testing.T) {
	d, ex := New(Limits{}), &health.Exporter{}
	hdr := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	recs := decodeAll(t, d, ex, sflowDatagram(1, 512, hdr, 1418))
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Bytes != 1400 || r.Packets != 1 || r.SamplingRate != 512 || r.RateSource != flow.RateHeader ||
		r.SrcAddr != netip.MustParseAddr("10.1.1.1") || r.DstPort != 443 || r.Proto != 6 || r.InIf != 3 || r.OutIf != 7 {
		t.Fatalf("record = %+v", r)
	}
	// Sequence gap of 2 datagrams, one sample each.
	decodeAll(t, d, ex, sflowDatagram(4, 512, hdr, 1418))
	if ex.SequenceGaps.Load() != 1 || ex.LostRecords.Load() != 2 {
		t.Fatalf("gaps %d lost %d, want 1 2", ex.SequenceGaps.Load(), ex.LostRecords.Load())
	}
}

func TestHostileInput(t *testing.T) {
	expanded := cat(u32(5), u32(1), []byte{192, 0, 2, 50}, u32(0), u32(1), u32(1000), u32(1),
		u32(3), u32(48), u32(1), u32(0), u32(1), u32(1), u32(0), u32(0), u32(0), u32(0), u32(0), u32(0), u32(0xffffffff), u32(0))
	tests := []struct {
		name   string
		b      []byte
		reason health.Reason
	}{
		{"empty", nil, health.ReasonUnknownVersion},
		{"one byte", []byte{0}, health.ReasonUnknownVersion},
		{"unknown version", cat(u16(7), make([]byte, 30)), health.ReasonUnknownVersion},
		{"v5 truncated header", cat(u16(5), u16(1)), health.ReasonTruncated},
		{"v5 truncated records", v5Datagram(0, 0, 2, [4]byte{}, [4]byte{}, 1, 1)[:100], health.ReasonTruncated},
		{"v5 absurd count", cat(u16(5), u16(5000), make([]byte, 20)), health.ReasonMalformed},
		{"v9 truncated header", cat(u16(9), u16(1), u32(0)), health.ReasonTruncated},
		{"ipfix length beyond datagram", cat(u16(10), u16(1000), make([]byte, 12)), health.ReasonTruncated},
		{"ipfix negative set length", cat(u16(10), u16(20), u32(0), u32(0), u32(0), u16(256), u16(2)), health.ReasonMalformed},
		{"sflow expanded sample with 4 billion records", expanded, health.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ex := New(Limits{}), &health.Exporter{}
			res, errs := d.Decode(tt.b, exporter, ex)
			if len(res.Records) != 0 || len(errs) == 0 {
				t.Fatalf("records %d errs %v", len(res.Records), errs)
			}
			if got := ex.DecodeErrors[tt.reason].Load(); got != 1 {
				var all []uint64
				for i := range ex.DecodeErrors {
					all = append(all, ex.DecodeErrors[i].Load())
				}
				t.Fatalf("%s errors = %d, want 1 (all: %v, errs %v)", tt.reason, got, all, errs)
			}
		})
	}
}

// TestIPFIXSequenceConventions checks RFC 7011 numbering (records sent
// before this message) and softflowd's (records including this message):
// neither shows loss when nothing was lost, both show the records of a
// dropped message.
func TestIPFIXSequenceConventions(t *testing.T) {
	msg := func(seq uint32, n int) []byte {
		var recs [][]byte
		for i := 0; i < n; i++ {
			recs = append(recs, flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 2, 6, 100, 1))
		}
		return datagram(10, seq, 1, templateSet(10, 256, flowFields...), dataSet(256, recs...))
	}
	sizes := []int{23, 28, 27, 5, 9}
	tests := []struct {
		name      string
		inclusive bool
		drop      int // index of a message not delivered, -1 for none
		wantLost  uint64
	}{
		{"rfc, no loss", false, -1, 0},
		{"rfc, one message lost", false, 2, 27},
		{"inclusive, no loss", true, -1, 0},
		{"inclusive, one message lost", true, 2, 27},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ex := New(Limits{}), &health.Exporter{}
			var sent uint32
			for i, n := range sizes {
				seq := sent
				if tt.inclusive {
					seq = sent + uint32(n)
				}
				sent += uint32(n)
				if i == tt.drop {
					continue
				}
				decodeAll(t, d, ex, msg(seq, n))
			}
			if got := ex.LostRecords.Load(); got != tt.wantLost {
				t.Fatalf("lost %d, want %d (gaps %d, resets %d)", got, tt.wantLost, ex.SequenceGaps.Load(), ex.SequenceResets.Load())
			}
		})
	}
}

// TestRefusedTemplateDoesNotStopTheDatagram: a template the store refuses
// (fieldless, as some MikroTik devices send, or one past the exporter's
// limit) is counted and skipped; the templates and data sets after it in the
// same datagram, even in the same template set, are still read. goflow2
// stops decoding a datagram at the first error AddTemplate returns, which
// lost them without a count, every time the exporter sent them in that order.
func TestRefusedTemplateDoesNotStopTheDatagram(t *testing.T) {
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	for _, version := range []uint16{9, 10} {
		t.Run("invalid", func(t *testing.T) {
			d, ex := New(Limits{}), &health.Exporter{}
			invalid := func() uint64 { return ex.DecodeErrors[health.ReasonTemplateInvalid].Load() }
			// In two sets, then in one set of two records.
			bad, good := templateSet(version, 256), templateSet(version, 257, flowFields...)
			for i, b := range [][]byte{
				datagram(version, 0, 1, bad, good, dataSet(257, rec)),
				datagram(version, 1, 1, set{bad.id, cat(bad.body, good.body)}, dataSet(257, rec)),
			} {
				recs := decodeAll(t, d, ex, b)
				if len(recs) != 1 || recs[0].Bytes != 1500 || ex.Templates.Load() != 1 || invalid() != uint64(i+1) {
					t.Fatalf("v%d, datagram %d: %d records, %d templates, template_invalid %d; want 1, 1, %d",
						version, i, len(recs), ex.Templates.Load(), invalid(), i+1)
				}
			}
			// Each refused template is counted; the datagram returns one
			// error for them.
			before := invalid()
			_, errs := d.Decode(datagram(version, 2, 1, set{bad.id, cat(bad.body, bad.body, bad.body)}, good), exporter, ex)
			if invalid()-before != 3 || len(errs) != 1 {
				t.Fatalf("v%d: three refused templates: template_invalid +%d, errors %v; want +3 and one error", version, invalid()-before, errs)
			}
		})
		t.Run("limit", func(t *testing.T) {
			d, ex := New(Limits{MaxTemplates: 1}), &health.Exporter{}
			// 256 is in use, so it is not forgotten to make room for 300.
			decodeAll(t, d, ex, datagram(version, 0, 1, templateSet(version, 256, flowFields...), dataSet(256, rec)))
			b := datagram(version, 1, 1, templateSet(version, 300, flowFields...), templateSet(version, 256, flowFields...), dataSet(256, rec))
			recs := decodeAll(t, d, ex, b)
			if got := ex.DecodeErrors[health.ReasonTemplateLimit].Load(); len(recs) != 1 || got != 1 {
				t.Fatalf("v%d: %d records, template_limit %d; want 1, 1", version, len(recs), got)
			}
		})
	}
}

// TestTruncatedIsCounted: a datagram cut short (a v9/IPFIX set, or an
// sFlow sample, whose length runs past its end; an sFlow datagram with
// fewer samples than it declares) is counted as truncated on both decode
// paths, and the records before the cut still stand. goflow2 reads what
// is there without an error, so these losses were counted nowhere.
func TestTruncatedIsCounted(t *testing.T) {
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	hdr := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	one := sflowDatagram(1, 512, hdr, 1418)
	// The same datagram declaring two samples: the second is missing.
	two := append([]byte(nil), one...)
	two[27] = 2
	tests := []struct {
		name     string
		template []byte // sent first, if any
		b        []byte
		records  int
	}{
		{"v9 set past the datagram", datagram(9, 0, 1, templateSet(9, 256, flowFields...)), cut(datagram(9, 1, 1, dataSet(256, rec, rec, rec)), 30), 1},
		{"ipfix set past the message", datagram(10, 0, 1, templateSet(10, 256, flowFields...)), ipfixLength(cut(datagram(10, 1, 1, dataSet(256, rec, rec, rec)), 30)), 1},
		{"sflow sample past the datagram", nil, cut(one, 10), 0},
		{"sflow datagram with fewer samples than declared", nil, two, 1},
	}
	for _, tt := range tests {
		truncatedOnce(t, tt.name, tt.template, tt.b, tt.records)
	}
}

// truncatedOnce decodes b (after template, if any) on both decode paths and
// checks it is counted truncated exactly once, as its only error, with the
// records before the cut kept.
func truncatedOnce(t *testing.T, name string, template, b []byte, records int) {
	t.Helper()
	for _, fast := range []bool{true, false} {
		d, ex := New(Limits{}), &health.Exporter{}
		d.noFastPath = !fast
		if template != nil {
			decodeAll(t, d, ex, template)
		}
		res, errs := d.Decode(b, exporter, ex)
		if got := ex.DecodeErrors[health.ReasonTruncated].Load(); got != 1 || len(res.Records) != records || len(errs) != 1 {
			t.Errorf("%s (fast path %v): truncated %d, %d records, errors %v; want 1, %d, one error", name, fast, got, len(res.Records), errs, records)
		}
	}
}

// cut returns b without its last n bytes.
func cut(b []byte, n int) []byte { return append([]byte(nil), b[:len(b)-n]...) }

// ipfixLength sets an IPFIX message's length to its datagram's.
func ipfixLength(b []byte) []byte {
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// TestCutSetCountedOnce: a datagram cut inside a template set, or inside a
// record of a data set with variable-length fields, is one problem: goflow2
// (or the variable-length decoder) already reports it as truncated, so the
// check for a set running past the message must not count it a second
// time. A cut that nothing else reports is still counted once.
func TestCutSetCountedOnce(t *testing.T) {
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	varRec := cat([]byte{10, 0, 0, 1}, []byte{5}, []byte("eth0x"))
	varTemplate := []field{{8, 4}, {82, 65535}}
	for _, version := range []uint16{9, 10} {
		whole := func(b []byte) []byte {
			if version == 10 {
				return ipfixLength(b)
			}
			return b
		}
		tests := []struct {
			name     string
			template []byte // sent first, if any
			b        []byte
			records  int
		}{
			{"template set cut in a field", nil, whole(cut(datagram(version, 0, 1, templateSet(version, 256, flowFields...)), 6)), 0},
			{"variable-length record cut", datagram(version, 0, 1, templateSet(version, 256, varTemplate...)),
				whole(cut(datagram(version, 1, 1, dataSet(256, varRec, varRec)), 3)), 1},
			{"data set cut between records", datagram(version, 0, 1, templateSet(version, 256, flowFields...)),
				whole(cut(datagram(version, 1, 1, dataSet(256, rec, rec)), len(rec))), 1},
		}
		for _, tt := range tests {
			truncatedOnce(t, fmt.Sprintf("v%d %s", version, tt.name), tt.template, tt.b, tt.records)
		}
	}
}

// TestSFlowRefusedNotTruncated: an sFlow datagram declaring more samples
// than goflow2 reads (1,000) is refused whole as malformed, so it is not
// also counted as truncated when one of its samples runs past its end, as
// it is not when it has fewer samples than it declares.
func TestSFlowRefusedNotTruncated(t *testing.T) {
	hdr := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	one := sflowDatagram(1, 512, hdr, 1418)
	for name, b := range map[string][]byte{
		"sample past the datagram": cut(one, 10),
		"fewer samples":            append([]byte(nil), one...),
	} {
		binary.BigEndian.PutUint32(b[24:], 4097) // samples declared
		for _, fast := range []bool{true, false} {
			d, ex := New(Limits{}), &health.Exporter{}
			d.noFastPath = !fast
			_, errs := d.Decode(b, exporter, ex)
			tr, mf := ex.DecodeErrors[health.ReasonTruncated].Load(), ex.DecodeErrors[health.ReasonMalformed].Load()
			if tr != 0 || mf != 1 || len(errs) != 1 {
				t.Errorf("%s (fast path %v): truncated %d, malformed %d, errors %v; want 0, 1, one error", name, fast, tr, mf, errs)
			}
		}
	}
}

// TestStateLivesOnHealthEntry: an exporter's templates are kept on its
// health entry, so another decoder (another socket's, or a new one after a
// reload rebound the sockets, with the same limits or others) given the
// same entry decodes its data sets; a new entry (the exporter was
// forgotten, max_exporters) starts without them.
func TestStateLivesOnHealthEntry(t *testing.T) {
	tpl := datagram(9, 1, 7, templateSet(9, 256, field{1, 4}, field{2, 4}))
	data := datagram(9, 2, 7, dataSet(256, cat(u32(1500), u32(3))))
	for _, tc := range []struct {
		name      string
		second    Limits
		sameEntry bool
		records   int
		missing   uint64
	}{
		{"same entry, another decoder", Limits{}, true, 1, 0},
		{"new entry", Limits{}, false, 0, 1},
		{"same entry, other limits", Limits{MaxTemplates: 7}, true, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, ex := New(Limits{}), &health.Exporter{}
			if _, errs := first.Decode(tpl, exporter, ex); len(errs) != 0 {
				t.Fatal(errs)
			}
			second, ex2 := New(tc.second), ex
			if !tc.sameEntry {
				ex2 = &health.Exporter{}
			}
			res, _ := second.Decode(data, exporter, ex2)
			if len(res.Records) != tc.records || ex2.TemplateMissingSets.Load() != tc.missing {
				t.Fatalf("%d records, %d sets without template; want %d, %d", len(res.Records), ex2.TemplateMissingSets.Load(), tc.records, tc.missing)
			}
			if want := int64(tc.records); ex2.Templates.Load() != want {
				t.Errorf("templates gauge %d, want %d", ex2.Templates.Load(), want)
			}
			if tc.records == 1 && res.Records[0].Bytes != 1500 {
				t.Errorf("bytes %d, want 1500", res.Records[0].Bytes)
			}
			if kept := keptState(ex2); kept == nil {
				t.Error("no state attached to the entry")
			}
		})
	}
}

// TestOldDecoderKeepsNewerLimits: a reload that changes
// max_templates_per_exporter binds new sockets (decoders of the new limits)
// before it stops the old ones, so for a while both decode an exporter's
// datagrams (several source ports or observation domains spread over the
// sockets). The exporter keeps its templates throughout, and a datagram
// the old, retired decoder still reads after the new one took over must
// not set the old limits back.
func TestOldDecoderKeepsNewerLimits(t *testing.T) {
	tpl := datagram(9, 1, 7, templateSet(9, 256, field{1, 4}, field{2, 4}))
	data := func(seq uint32) []byte { return datagram(9, seq, 7, dataSet(256, cat(u32(1500), u32(3)))) }
	for _, tc := range []struct {
		name   string
		window []byte // what the old decoder reads after the new one took over
	}{
		{"data", data(3)},
		{"template", tpl},
		{"v5", v5Datagram(0, 100, 1, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &health.Exporter{}
			old := New(Limits{MaxTemplates: 16})
			if _, errs := old.Decode(tpl, exporter, ex); len(errs) != 0 {
				t.Fatal(errs)
			}
			// The reload: new decoders of other limits, the old still running.
			cur := New(Limits{MaxTemplates: 8})
			old.Retire() // as the intake does once cur's sockets are bound
			if res, _ := cur.Decode(data(2), exporter, ex); len(res.Records) != 1 {
				t.Fatalf("new limits lost the template: %d records", len(res.Records))
			}
			old.Decode(tc.window, exporter, ex)
			if st, _ := ex.Attached().(*exporterState); st == nil || st.limits.MaxTemplates != 8 || st.templates.max != 8 {
				t.Fatalf("attached state of limits %+v, store of %d; want 8 after the old decoder's datagram", st.limits, st.templates.max)
			}
			res, _ := cur.Decode(data(4), exporter, ex)
			if len(res.Records) != 1 || ex.TemplateMissingSets.Load() != 0 {
				t.Fatalf("%d records, %d sets without template; want 1, 0", len(res.Records), ex.TemplateMissingSets.Load())
			}
			if got := ex.Templates.Load(); got != 1 {
				t.Errorf("templates gauge %d, want 1", got)
			}
		})
	}
}

// TestRetiredDecoderSetsNoLimits: two reloads in a row, the second
// undoing the first (max_templates_per_exporter 4, then 1, then 4 again),
// with an exporter silent until the second has started. Its datagrams may
// reach a socket of the middle reload, still drained, before or after the
// newest decoders' first: either way that decoder is retired (the intake
// retires a reload's decoders when the next one's sockets are bound) and
// must not set its limit of 1, which would forget templates the limit in
// force keeps.
func TestRetiredDecoderSetsNoLimits(t *testing.T) {
	var tpls []set
	for id := uint16(256); id < 260; id++ {
		tpls = append(tpls, templateSet(9, id, field{1, 4}, field{2, 4}))
	}
	data := func(seq uint32, id uint16) []byte {
		return datagram(9, seq, 7, dataSet(id, cat(u32(1500), u32(3))))
	}
	for _, middleFirst := range []bool{true, false} {
		ex := &health.Exporter{}
		first := New(Limits{MaxTemplates: 4})
		if _, errs := first.Decode(datagram(9, 1, 7, tpls...), exporter, ex); len(errs) != 0 {
			t.Fatal(errs)
		}
		middle := New(Limits{MaxTemplates: 1})
		first.Retire()
		cur := New(Limits{MaxTemplates: 4})
		middle.Retire()
		seq := uint32(2)
		if !middleFirst {
			cur.Decode(data(seq, 256), exporter, ex)
			seq++
		}
		if res, _ := middle.Decode(data(seq, 256), exporter, ex); len(res.Records) != 1 {
			t.Fatalf("middle first %v: %d records from the retired decoder, want 1", middleFirst, len(res.Records))
		}
		for id := uint16(256); id < 260; id++ {
			seq++
			if res, _ := cur.Decode(data(seq, id), exporter, ex); len(res.Records) != 1 {
				t.Errorf("middle first %v: template %d: %d records, want 1", middleFirst, id, len(res.Records))
			}
		}
		if st := ex.Attached().(*exporterState); st.limits.MaxTemplates != 4 || st.templates.max != 4 || ex.Templates.Load() != 4 {
			t.Errorf("middle first %v: state of limits %+v, store of %d, gauge %d; want 4, 4, 4", middleFirst, st.limits, st.templates.max, ex.Templates.Load())
		}
	}
}

// TestLowerTemplateLimit: a reload to a lower max_templates_per_exporter
// keeps an exporter's templates up to the new limit, forgetting first
// those no data set has used (oldest first); when the templates in use
// alone exceed it, all are forgotten and the next ones stored or refused
// under the new limit.
func TestLowerTemplateLimit(t *testing.T) {
	tpl := func(seq uint32, ids ...uint16) []byte {
		var sets []set
		for _, id := range ids {
			sets = append(sets, templateSet(9, id, field{1, 4}, field{2, 4}))
		}
		return datagram(9, seq, 7, sets...)
	}
	data := func(seq uint32, ids ...uint16) []byte {
		var sets []set
		for _, id := range ids {
			sets = append(sets, dataSet(id, cat(u32(1500), u32(3))))
		}
		return datagram(9, seq, 7, sets...)
	}
	for _, tc := range []struct {
		name    string
		limit   int
		kept    []uint16 // templates left, in use or not
		records int      // of a data set of each of 256..259 after the reload
	}{
		{"unused go first", 3, []uint16{256, 257, 259}, 2},
		{"in use only", 2, []uint16{256, 257}, 2},
		{"in use past the limit", 1, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &health.Exporter{}
			old := New(Limits{MaxTemplates: 4})
			old.Decode(tpl(1, 256, 257, 258, 259), exporter, ex)
			if res, _ := old.Decode(data(2, 256, 257), exporter, ex); len(res.Records) != 2 {
				t.Fatalf("%d records before the reload, want 2", len(res.Records))
			}
			cur := New(Limits{MaxTemplates: tc.limit})
			res, _ := cur.Decode(data(3, 256, 257), exporter, ex)
			st := ex.Attached().(*exporterState)
			var kept []uint16
			for id := uint16(256); id < 260; id++ {
				if _, err := st.templates.GetTemplate(9, 7, id); err == nil {
					kept = append(kept, id)
				}
			}
			if !slices.Equal(kept, tc.kept) || len(res.Records) != tc.records || ex.Templates.Load() != int64(len(tc.kept)) {
				t.Fatalf("kept %v (gauge %d), %d records; want %v, %d", kept, ex.Templates.Load(), len(res.Records), tc.kept, tc.records)
			}
			// Sent again, they are stored up to the new limit.
			cur.Decode(tpl(4, 256, 257, 258, 259), exporter, ex)
			if n := st.templates.len(); n != tc.limit {
				t.Errorf("%d templates after they were sent again, want %d", n, tc.limit)
			}
		})
	}
}

// TestTemplateEvictionSameOnEveryPath: the fast path and goflow2's mark the
// same templates used, so a full store forgets the same ones. Data sets
// decoded by the fast path (datagrams of known data sets only) and by
// goflow2's (the rest) through every decoder of a pair: records, errors,
// counters and state (the used marks and waiting list included) compared
// after each datagram.
func TestTemplateEvictionSameOnEveryPath(t *testing.T) {
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	for _, version := range []uint16{9, 10} {
		p := newPairWith(Limits{MaxTemplates: 3})
		seq := uint32(0)
		send := func(sets ...set) int {
			seq++
			return len(p.check(t, datagram(version, seq, 1, sets...)))
		}
		tpl := func(id uint16) set { return templateSet(version, id, flowFields...) }
		data := func(id uint16) set { return dataSet(id, rec) }
		send(tpl(256), tpl(257))
		if n := send(data(256)); n != 1 || p.fast.fastHits != 1 {
			t.Fatalf("v%d: %d records, %d fast datagrams; want 1, 1", version, n, p.fast.fastHits)
		}
		for id := uint16(1000); id < 1010; id++ {
			send(tpl(id)) // forgets 257, then each older one of the flood's
		}
		if n := send(data(256), data(1009)); n != 2 || p.fast.fastHits != 2 {
			t.Fatalf("v%d: after the flood %d records, %d fast datagrams; want 2, 2", version, n, p.fast.fastHits)
		}
		if n := send(data(257)); n != 0 || p.exFast.TemplateMissingSets.Load() != 1 {
			t.Fatalf("v%d: 257 decoded %d records after it was forgotten", version, n)
		}
		send(tpl(2000), tpl(2001)) // 1008, then 2000 forgotten: 256 and 1009 are in use
		if n := send(data(256), data(1009), data(2001)); n != 3 || p.fast.fastHits != 3 {
			t.Fatalf("v%d: %d records, %d fast datagrams; want 3, 3", version, n, p.fast.fastHits)
		}
	}
}
