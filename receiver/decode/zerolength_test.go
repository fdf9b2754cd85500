package decode

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowmetrics/flowmetrics/processor/health"
)

// TestZeroLengthFieldsDoNotAmplify: a template of many zero-length fields
// over a one-byte record must not make one data set cost memory in
// proportion to fields × records (goflow2 makes a DataField per field and
// record): 2000 fields and 2000 one-byte records were 190 MB.
func TestZeroLengthFieldsDoNotAmplify(t *testing.T) {
	const fields, records = 2000, 2000
	for _, tc := range []struct {
		name string
		last field // the one field that takes a byte
		rec  []byte
	}{
		{"variable-length", field{ieDataLinkFrameSection, 0xffff}, []byte{0}},
		{"fixed-length", field{ieProtocol, 1}, []byte{6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, version := range []uint16{9, 10} {
				fs := make([]field, 0, fields+1)
				for range fields {
					fs = append(fs, field{ieOctetDelta, 0})
				}
				fs = append(fs, tc.last)
				d, ex := New(Limits{}), &health.Exporter{}
				decodeAll(t, d, ex, datagram(version, 0, 1, templateSet(version, 256, fs...)))
				var data []byte
				for range records {
					data = append(data, tc.rec...)
				}
				// A template set in the same datagram sends it through goflow2.
				b := datagram(version, 1, 1, templateSet(version, 300, flowFields...), dataSet(256, data))
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				d.Decode(b, exporter, ex)
				runtime.ReadMemStats(&after)
				if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
					t.Fatalf("v%d: one %d-byte datagram allocated %d MB", version, len(b), got>>20)
				}
			}
		})
	}
}

// TestZeroLengthFieldsIgnored: zero-length fields take no bytes and set
// nothing; the template's other fields decode as without them.
func TestZeroLengthFieldsIgnored(t *testing.T) {
	for _, version := range []uint16{9, 10} {
		d, ex := New(Limits{}), &health.Exporter{}
		fs := append([]field{{ieOctetDelta, 0}, {999, 0}}, flowFields...)
		recs := decodeAll(t, d, ex,
			datagram(version, 0, 1, templateSet(version, 256, fs...)),
			datagram(version, 1, 1, dataSet(256, flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 2, 6, 1500, 3))))
		if len(recs) != 1 || recs[0].Bytes != 1500 || recs[0].Packets != 3 || recs[0].Proto != 6 {
			t.Fatalf("v%d: %+v", version, recs)
		}
	}
}

// TestTemplateFieldBudget: an exporter's templates are bounded in fields as
// well as in number (max templates of 16,000 fields were 250 MB an
// exporter): a template of more than 1024 fields is refused, and so is one
// past the exporter's budget when only templates in use could make room;
// templates no data set has used are forgotten to make it, oldest first;
// replacing a template frees its old fields.
func TestTemplateFieldBudget(t *testing.T) {
	many := func(n int) []field {
		fs := make([]field, n)
		for i := range fs {
			fs[i] = field{999, 1}
		}
		return fs
	}
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	for _, version := range []uint16{9, 10} {
		d, ex := New(Limits{MaxTemplates: 4}), &health.Exporter{} // budget: 1024 fields
		limit := func() uint64 { return ex.DecodeErrors[health.ReasonTemplateLimit].Load() }
		check := func(step string, templates int64, limits uint64) {
			t.Helper()
			if ex.Templates.Load() != templates || limit() != limits {
				t.Fatalf("v%d, %s: templates %d, template_limit %d; want %d, %d", version, step, ex.Templates.Load(), limit(), templates, limits)
			}
		}
		decodeAll(t, d, ex, datagram(version, 0, 1, templateSet(version, 256, many(1025)...)))
		check("a 1025-field template", 0, 1)
		// 256 in use (a data set of its 1000 one-byte fields).
		decodeAll(t, d, ex, datagram(version, 1, 1, templateSet(version, 256, many(1000)...), dataSet(256, make([]byte, 1000))))
		decodeAll(t, d, ex, datagram(version, 2, 1, templateSet(version, 257, many(100)...)))
		check("past the budget, all in use", 1, 2)
		decodeAll(t, d, ex, datagram(version, 3, 1, templateSet(version, 256, many(924)...)))
		decodeAll(t, d, ex, datagram(version, 4, 1, templateSet(version, 257, many(100)...)))
		check("after a replacement", 2, 2)
		// 257 (100 fields) is not in use: forgotten for 258.
		decodeAll(t, d, ex, datagram(version, 5, 1, templateSet(version, 258, flowFields...), dataSet(258, rec)))
		check("past the budget, one not in use", 2, 2)
		if recs := decodeAll(t, d, ex, datagram(version, 6, 1, dataSet(257, make([]byte, 100)))); len(recs) != 0 {
			t.Fatalf("v%d: template 257 still decodes after it was forgotten", version)
		}
		decodeAll(t, d, ex, datagram(version, 7, 1, templateSet(version, 259, many(100)...)))
		check("a template past the budget, all in use", 2, 3)
	}
}

// TestTemplateMemoryPerField: the field budget bounds an exporter's
// templates in fields; what a field costs decides what that is in bytes.
// The worst template is one of 1024 fields recordBuilder reads (here
// octetDeltaCount, or a variable-length one), which keeps goflow2's Field
// (12 bytes) and a compiled op per field. One 64 KB datagram fills an
// exporter's budget, so spoofed sources fill max_exporters of them: at
// 44 bytes a field that was 0.7 MB an exporter, 0.7 GB at the default
// max_exporters, from 1024 datagrams.
func TestTemplateMemoryPerField(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 32 exporters' template budgets")
	}
	for _, f := range []field{{ieOctetDelta, 1}, {ieOctetDelta, 0xffff}, {ieSamplingInterval, 1}} {
		fs := make([]field, 1019) // 16 of them fill a 64 KB IPFIX message
		for i := range fs {
			fs[i] = f
		}
		var sets []set
		for k := range 16 {
			sets = append(sets, templateSet(10, uint16(256+k), fs...))
		}
		b := datagram(10, 0, 1, sets...)
		d := New(Limits{})
		exs := make([]*health.Exporter, 32)
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		before := m.HeapAlloc
		fields := 0
		for i := range exs {
			exs[i] = &health.Exporter{}
			decodeAll(t, d, exs[i], b)
			fields += exs[i].Attached().(*exporterState).templates.entries.weight
		}
		runtime.GC()
		runtime.ReadMemStats(&m)
		perField := float64(int64(m.HeapAlloc)-int64(before)) / float64(fields)
		runtime.KeepAlive(exs)
		if want := 16 * 1019 * len(exs); fields != want {
			t.Fatalf("%+v: %d fields kept, want %d", f, fields, want)
		}
		t.Logf("%+v: %.1f bytes a field", f, perField)
		if perField > 24 {
			t.Errorf("%+v: templates keep %.1f bytes a field, want at most 24", f, perField)
		}
	}
}

// TestLargeBatchNotRetained: a datagram of one-byte records (65,515 of
// them in one IPFIX message, 12 MB of flow.Record) must not leave its
// records' memory pinned in the decoder after Reset: each socket has a
// decoder, so a few such datagrams, one per socket, held that much each
// for the life of the process.
func TestLargeBatchNotRetained(t *testing.T) {
	d, ex := New(Limits{}), &health.Exporter{}
	decodeAll(t, d, ex, datagram(10, 0, 1, templateSet(10, 256, field{ieProtocol, 1})))
	res, _ := d.Append(datagram(10, 1, 1, dataSet(256, make([]byte, 65535-16-4))), exporter, ex)
	if len(res.Records) != 65535-16-4 {
		t.Fatalf("%d records", len(res.Records))
	}
	d.Reset()
	if c := cap(d.Pending()); c > maxRetainedRecords {
		t.Fatalf("after Reset the decoder keeps room for %d records, at most %d", c, maxRetainedRecords)
	}
	// A usual batch keeps its room: no allocation per batch.
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	decodeAll(t, d, ex, datagram(10, 2, 1, templateSet(10, 257, flowFields...)))
	small := datagram(10, 3, 1, dataSet(257, rec, rec, rec))
	for range 400 {
		d.Append(small, exporter, ex)
	}
	d.Reset()
	if allocs := testing.AllocsPerRun(10, func() {
		for range 400 {
			d.Append(small, exporter, ex)
		}
		d.Reset()
	}); allocs != 0 {
		t.Fatalf("%v allocations per batch of 1,200 records", allocs)
	}
}

// TestTemplateStoreBookkeeping: over random adds, replacements, data-set
// uses and withdrawals, each stored template weighs its fields, the
// store's sums of fields and of unused templates' fields match what it
// holds, every stored template no data set has used waits to be
// forgotten, and neither the templates, their fields nor the waiting list
// outgrow their bounds.
func TestTemplateStoreBookkeeping(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := newTemplateStore(8) // budget: 1024 fields
	for i := range 20000 {
		id := uint16(256 + rng.IntN(24))
		k := templateKey(10, 1, id)
		switch op := rng.IntN(10); {
		case op < 5:
			fs := make([]netflow.Field, 1+rng.IntN(300))
			for j := range fs {
				fs[j] = netflow.Field{Type: 999, Length: 1}
			}
			_ = s.AddTemplate(10, 1, id, netflow.TemplateRecord{TemplateId: id, Fields: fs})
		case op < 9:
			if _, err := s.GetTemplate(10, 1, id); err == nil {
				s.use(k)
			}
		default:
			_, _ = s.RemoveTemplate(10, 1, id)
		}
		u := &s.entries
		n, unusedF, fields := 0, 0, 0
		waiting := map[uint64]bool{}
		for _, w := range u.waiting {
			if _, ok := u.m[w]; !ok || waiting[w] {
				t.Fatalf("op %d: %x waits twice or is not stored", i, w)
			}
			waiting[w] = true
		}
		for key, e := range u.m {
			if e.w != fieldCount(e.v.t) || e.v.c == nil {
				t.Fatalf("op %d: %x weighs %d, has %d fields, compiled %v", i, key, e.w, fieldCount(e.v.t), e.v.c != nil)
			}
			fields += e.w
			if !e.used {
				n++
				unusedF += e.w
				if !waiting[key] {
					t.Fatalf("op %d: unused template %x is not waiting to be forgotten", i, key)
				}
			}
		}
		all := s.GetTemplates()
		for key, e := range u.m {
			if got, ok := all[key]; !ok || fieldCount(got) != e.w {
				t.Fatalf("op %d: GetTemplates lacks %x or differs", i, key)
			}
		}
		switch {
		case len(all) != s.len():
			t.Fatalf("op %d: GetTemplates gives %d templates, the store holds %d", i, len(all), s.len())
		case n != u.unused || unusedF != u.unusedWeight || fields != u.weight:
			t.Fatalf("op %d: unused %d (%d fields), fields %d; the store counts %d (%d), %d", i, n, unusedF, fields, u.unused, u.unusedWeight, u.weight)
		case s.len() > s.max || u.weight > s.fieldBudget || len(u.waiting) > s.max:
			t.Fatalf("op %d: %d templates, %d fields, %d waiting: past the bounds", i, s.len(), u.weight, len(u.waiting))
		}
	}
}
