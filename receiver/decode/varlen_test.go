package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// goflow2RecordSet is the expected decoding of a data set (data, without
// its header) of template t, which has variable-length fields: goflow2's
// own record decoder (netflow.DecodeDataSetUsingFields) reads a record
// while at least the template's shortest record (fixed-length fields plus
// one length octet per variable-length field) is left, and the set ends at
// the first record it does not read whole (an overrun: a value cut short or
// a length octet missing), which the byte offsets of its values show. It
// returns a netflow.DataFlowSet or netflow.OptionsDataFlowSet and whether a
// record overran.
//
// right reports whether goflow2's set decoder (netflow.DecodeDataSet,
// DecodeOptionsDataSet) decodes the set the same, which is so when what
// is left after the last record is shorter than the template's fixed
// fields: otherwise goflow2 reads one record more, past the set's end, and
// either fails the set or returns a record of cut-short values. Both ways
// are checked here against goflow2's set decoder.
func goflow2RecordSet(t testing.TB, version uint16, tmpl any, data []byte) (set any, overrun, right bool) {
	t.Helper()
	var lists [][]netflow.Field
	switch tt := tmpl.(type) {
	case netflow.TemplateRecord:
		lists = [][]netflow.Field{tt.Fields}
	case netflow.NFv9OptionsTemplateRecord:
		lists = [][]netflow.Field{tt.Scopes, tt.Options}
	case netflow.IPFIXOptionsTemplateRecord:
		lists = [][]netflow.Field{tt.Scopes, tt.Options}
	default:
		t.Fatalf("template %T", tmpl)
	}
	shortest, fixedSize := 0, 0
	for _, fs := range lists {
		for _, f := range fs {
			if f.Length == 0xffff {
				shortest++
			} else {
				shortest += int(f.Length)
				fixedSize += int(f.Length)
			}
		}
	}
	if shortest == 0 {
		t.Fatal("a template of no bytes was stored")
	}
	data = data[:len(data):len(data)] // a value's offset is len(data)-cap(value)
	buf := bytes.NewBuffer(data)
	var records [][][]netflow.DataField
	for buf.Len() >= shortest {
		p := len(data) - buf.Len()
		var rec [][]netflow.DataField
		whole := true
		for _, fs := range lists {
			vals, err := netflow.DecodeDataSetUsingFields(version, buf, fs)
			if err != nil {
				whole = false
				break
			}
			for i, f := range fs {
				v, ok := vals[i].Value.([]byte)
				if !ok {
					whole = false // goflow2 left the values unset: too short for the fixed fields
					break
				}
				s := len(data) - cap(v)
				switch {
				case f.Length != 0xffff:
					whole = s == p && len(v) == int(f.Length)
				case s-p == 1:
					whole = data[p] < 255 && int(data[p]) == len(v)
				case s-p == 3:
					whole = data[p] == 255 && int(binary.BigEndian.Uint16(data[p+1:])) == len(v)
				default:
					whole = false
				}
				if !whole {
					break
				}
				p = s + len(v)
			}
			if !whole {
				break
			}
			rec = append(rec, vals)
		}
		if !whole {
			overrun = true
			break
		}
		records = append(records, rec)
	}
	left := buf.Len()
	if overrun {
		left = -1
	}
	right = !overrun && left < fixedSize

	// goflow2's set decoder: the same where right, else one record more
	// (cut short) or an error, after the same records.
	var got [][][]netflow.DataField
	var err error
	if len(lists) == 1 {
		var rs []netflow.DataRecord
		rs, err = netflow.DecodeDataSet(version, bytes.NewBuffer(data), lists[0])
		for _, r := range rs {
			got = append(got, [][]netflow.DataField{r.Values})
		}
	} else {
		var rs []netflow.OptionsDataRecord
		rs, err = netflow.DecodeOptionsDataSet(version, bytes.NewBuffer(data), lists[0], lists[1])
		for _, r := range rs {
			got = append(got, [][]netflow.DataField{r.ScopesValues, r.OptionsValues})
		}
	}
	same := func(a, b [][][]netflow.DataField) bool {
		return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
	}
	switch {
	case right && (err != nil || !same(got, records)):
		t.Fatalf("goflow2's set decoder: %d records (error %v), its record decoder %d", len(got), err, len(records))
	case !right && (len(got) < len(records) || !same(got[:len(records)], records) ||
		len(got) > len(records)+1 || (err == nil && len(got) == len(records))):
		t.Fatalf("goflow2's set decoder: %d records (error %v), its record decoder %d and more", len(got), err, len(records))
	}

	if len(lists) == 1 {
		fs := netflow.DataFlowSet{}
		for _, r := range records {
			fs.Records = append(fs.Records, netflow.DataRecord{Values: r[0]})
		}
		return fs, overrun, right
	}
	fs := netflow.OptionsDataFlowSet{}
	for _, r := range records {
		fs.Records = append(fs.Records, netflow.OptionsDataRecord{ScopesValues: r[0], OptionsValues: r[1]})
	}
	return fs, overrun, right
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// varBytes3 encodes a variable-length value with the three-octet length
// (RFC 7011 7 allows it for short values too).
func varBytes3(b []byte) []byte { return cat([]byte{255}, u16(uint16(len(b))), b) }

// rec is what a test expects of a record.
type rec struct {
	src, dst       string
	proto          uint8
	sport, dport   uint16
	bytes, packets uint64
	rate           uint32
}

func recOf(r flow.Record) rec {
	return rec{r.SrcAddr.String(), r.DstAddr.String(), r.Proto, r.SrcPort, r.DstPort, r.Bytes, r.Packets, r.SamplingRate}
}

// TestVariableLengthSets: data sets of templates with variable-length
// fields, those goflow2's set decoder loses or gets wrong among them,
// decode to exactly the records they carry, in v9 and IPFIX, through both
// paths (the template in an earlier datagram: the fast path; in the same
// one: goflow2's), and the same as goflow2's record decoder (newPair).
func TestVariableLengthSets(t *testing.T) {
	v4 := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	src6, dst6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	v6 := ethVLANIPv6UDP(src6, dst6, 472, 5353, 53)
	long := fixed(v4, 300) // a 300-byte section: the three-octet length
	tcp4 := rec{"10.1.1.1", "10.2.2.2", 6, 40000, 443, 1400, 1, 0}
	udp6 := rec{"2001:db8::1", "2001:db8::2", 17, 5353, 53, 512, 1, 0}
	flowRec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	flow4 := rec{"10.0.0.1", "10.0.0.2", 6, 1, 443, 1500, 3, 0}
	const varLen = 0xffff
	psampFields := []field{{ieDataLinkFrameSize, 2}, {ieDataLinkFrameSection, varLen}}

	for _, tc := range []struct {
		name    string
		tpls    []set // template sets, id 256 (data) and 257 (more data or options)
		sets    []set
		want    []rec
		overrun uint64 // truncated errors
		// goflow2Wrong: goflow2's set decoder loses or garbles a set
		// (TemplateMissing ... counted as goflow2 counts them), and then
		// gfRecords is how many records goflow2 as it is returns.
		goflow2Wrong bool
		gfRecords    int
		options      bool // options data: goflow2's path even without templates
	}{
		{
			name: "PSAMP: only dataLinkFrameSection, one- and three-octet lengths",
			tpls: []set{templateSet(10, 256, field{ieDataLinkFrameSection, varLen})},
			sets: []set{dataSet(256, varBytes(v4), varBytes(v6), varBytes(fixed(v6, 200)), varBytes(long), varBytes3(v4))},
			want: []rec{tcp4, udp6, udp6, tcp4, tcp4}, goflow2Wrong: true, gfRecords: 0,
		},
		{
			name: "only variable-length counters, addresses and protocol",
			tpls: []set{templateSet(10, 256, field{ieOctetDelta, varLen}, field{iePacketDelta, varLen},
				field{ieSrcIPv4, varLen}, field{ieDstIPv4, varLen}, field{ieProtocol, varLen})},
			sets: []set{dataSet(256,
				cat(varBytes(u64(123456789012)), varBytes3([]byte{1, 44}), varBytes([]byte{192, 0, 2, 1}), varBytes([]byte{198, 51, 100, 7}), varBytes([]byte{17})),
				// reduced-size (3 octets) and empty counters; a 16-octet
				// IPv4 address is no address
				cat(varBytes([]byte{1, 0, 0}), varBytes(nil), varBytes(make([]byte, 16)), varBytes([]byte{198, 51, 100, 8}), varBytes([]byte{6})),
			)},
			want: []rec{
				{"192.0.2.1", "198.51.100.7", 17, 0, 0, 123456789012, 300, 0},
				{"invalid IP", "198.51.100.8", 6, 0, 0, 65536, 0, 0},
			},
			goflow2Wrong: true, gfRecords: 0,
		},
		{
			name: "padding as long as the fixed fields",
			tpls: []set{templateSet(10, 256, psampFields...)},
			sets: []set{dataSet(256, cat(u16(1418), varBytes(v4)), cat(u16(534), varBytes(v6)), make([]byte, 2))},
			want: []rec{tcp4, udp6}, goflow2Wrong: true, gfRecords: 0,
		},
		{
			name: "padding as long as the fixed fields, then another set",
			tpls: []set{templateSet(10, 256, psampFields...), templateSet(10, 257, flowFields...)},
			sets: []set{dataSet(256, cat(u16(1418), varBytes(v4)), make([]byte, 2)), dataSet(257, flowRec)},
			// goflow2 fails at the first set and never reads the second
			want: []rec{tcp4, flow4}, goflow2Wrong: true, gfRecords: 0,
		},
		{
			name: "padding read as a record of cut-short values",
			tpls: []set{templateSet(10, 256, field{ieDataLinkFrameSection, varLen}, field{iePacketDelta, 4})},
			sets: []set{dataSet(256, cat(varBytes(v4), u32(1)), make([]byte, 4))},
			// goflow2: a second record, of no section and a 3-octet
			// packet count
			want: []rec{tcp4}, goflow2Wrong: true, gfRecords: 2,
		},
		{
			name: "fixed fields first, short padding: goflow2 is right",
			tpls: []set{templateSet(10, 256, field{ieSrcIPv4, 4}, field{ieDstIPv4, 4}, field{ieOctetDelta, 4}, field{iePacketDelta, 4}, field{ieDataLinkFrameSection, varLen})},
			sets: []set{dataSet(256,
				cat([]byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, u32(9000), u32(6), varBytes(v4)),
				cat([]byte{10, 0, 0, 3}, []byte{10, 0, 0, 4}, u32(700), u32(1), varBytes(nil)),
				make([]byte, 15))},
			want: []rec{{"10.0.0.1", "10.0.0.2", 0, 0, 0, 9000, 6, 0}, {"10.0.0.3", "10.0.0.4", 0, 0, 0, 700, 1, 0}},
		},
		{
			name: "a length past the set's end",
			tpls: []set{templateSet(10, 256, field{ieDataLinkFrameSection, varLen})},
			sets: []set{dataSet(256, varBytes(v4), []byte{200, 1, 2, 3})},
			want: []rec{tcp4}, overrun: 1, goflow2Wrong: true, gfRecords: 0,
		},
		{
			name: "lengths one past the set's end, then other sets",
			tpls: []set{templateSet(10, 256, field{ieDataLinkFrameSection, varLen}), templateSet(10, 257, flowFields...),
				templateSet(10, 258, field{ieDataLinkFrameSection, varLen}, field{iePacketDelta, 4}),
				templateSet(10, 259, field{ieDataLinkFrameSection, varLen}, field{iePacketDelta, varLen})},
			sets: []set{dataSet(256, varBytes(v4), []byte{3, 1, 2}), dataSet(256, varBytes3(v4), []byte{255, 0, 3, 1, 2}),
				dataSet(258, cat(varBytes(v4), u32(1)), cat([]byte{2, 1, 2}, u32(1))[:6]),
				dataSet(259, cat(varBytes(v4), varBytes([]byte{1})), []byte{1, 9}), // no second length octet
				dataSet(257, flowRec)},
			want: []rec{tcp4, tcp4, tcp4, tcp4, flow4}, overrun: 4, goflow2Wrong: true, gfRecords: 0,
		},
		{
			name: "a three-octet length cut short",
			tpls: []set{templateSet(10, 256, field{ieDataLinkFrameSection, varLen}), templateSet(10, 257, flowFields...)},
			sets: []set{dataSet(256, varBytes(v4), []byte{255, 0}), dataSet(257, flowRec)},
			want: []rec{tcp4, flow4}, overrun: 1, goflow2Wrong: true, gfRecords: 0,
		},
		{
			name: "options data with variable-length fields and padding: the rate applies",
			tpls: []set{optionsTemplateSet(10, 257, []field{{149, 4}}, []field{{ieSamplingInterval, 4}, {82, varLen}}),
				templateSet(10, 256, flowFields...)},
			sets: []set{dataSet(257, cat(u32(1), u32(1000), varBytes([]byte("ge-0/0/0"))), make([]byte, 8)), dataSet(256, flowRec)},
			want: []rec{{"10.0.0.1", "10.0.0.2", 6, 1, 443, 1500, 3, 1000}}, goflow2Wrong: true, gfRecords: 0, options: true,
		},
	} {
		for _, version := range []uint16{9, 10} {
			for _, together := range []bool{false, true} {
				name := fmt.Sprintf("%s v%d", tc.name, version)
				if together {
					name += ", template in the same datagram"
				}
				t.Run(name, func(t *testing.T) {
					p := newPair()
					var tpls []set
					for _, s := range tc.tpls {
						tpls = append(tpls, asVersion(s, version))
					}
					var recs []flow.Record
					if together {
						recs = p.check(t, datagram(version, 1, 7, append(tpls, tc.sets...)...))
					} else {
						p.check(t, datagram(version, 1, 7, tpls...))
						recs = p.check(t, datagram(version, 2, 7, tc.sets...))
						if want := map[bool]int{false: 1, true: 0}[tc.options]; p.fast.fastHits != want {
							t.Errorf("the fast path took %d datagrams, want %d", p.fast.fastHits, want)
						}
					}
					var got []rec
					for _, r := range recs {
						got = append(got, recOf(r))
					}
					if !reflect.DeepEqual(got, tc.want) {
						t.Errorf("records\n%+v\nwant\n%+v", got, tc.want)
					}
					if n := p.exFast.DecodeErrors[health.ReasonTruncated].Load(); n != tc.overrun {
						t.Errorf("%d truncated errors, want %d", n, tc.overrun)
					}
					if n := p.exFast.TemplateMissingSets.Load(); n != 0 {
						t.Errorf("%d sets without template", n)
					}
					if p.gfOff != tc.goflow2Wrong {
						t.Fatalf("goflow2 wrong: %v, want %v", p.gfOff, tc.goflow2Wrong)
					}
					if tc.goflow2Wrong {
						// what goflow2 as it is made of the data
						if n := len(p.gf.recs); n != tc.gfRecords {
							t.Errorf("goflow2: %d records, want %d", n, tc.gfRecords)
						}
					}
				})
			}
		}
	}
}

// asVersion re-encodes an IPFIX template set built by templateSet or
// optionsTemplateSet for version.
func asVersion(s set, version uint16) set {
	if version == 10 {
		return s
	}
	switch s.id {
	case 2:
		s.id = 0
	case 3: // id, field count, scope count -> id, scope bytes, option bytes
		n, scopes := binary.BigEndian.Uint16(s.body[2:]), binary.BigEndian.Uint16(s.body[4:])
		s.body = cat(s.body[:2], u16(4*scopes), u16(4*(n-scopes)), s.body[6:])
		s.id = 1
	}
	return s
}

// TestVariableLengthDataBeforeTemplate: a data set before its template in
// the same datagram has no template, as for fixed-length templates; one
// after the template's replacement by a fixed-length one is read by the
// new template.
func TestVariableLengthDataBeforeTemplate(t *testing.T) {
	v4 := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	for _, version := range []uint16{9, 10} {
		p := newPair()
		recs := p.check(t, datagram(version, 1, 7, dataSet(256, varBytes(v4)), templateSet(version, 256, field{ieDataLinkFrameSection, 0xffff})))
		if len(recs) != 0 || p.exFast.TemplateMissingSets.Load() != 1 {
			t.Fatalf("v%d: %d records, %d sets without template", version, len(recs), p.exFast.TemplateMissingSets.Load())
		}
		recs = p.check(t, datagram(version, 2, 7, dataSet(256, varBytes(v4)), templateSet(version, 256, field{iePacketDelta, 4}), dataSet(256, u32(5))))
		if len(recs) != 2 || recs[0].Bytes != 1400 || recs[1].Packets != 5 || recs[1].Bytes != 0 {
			t.Fatalf("v%d: records %+v", version, recs)
		}
	}
}

// TestVariableLengthErrors: a set whose record overruns counts one
// truncated error, wrapping errRecordOverrun, through both paths.
func TestVariableLengthErrors(t *testing.T) {
	for _, fast := range []bool{true, false} {
		d, ex := New(Limits{}), &health.Exporter{}
		d.noFastPath = !fast
		decodeAll(t, d, ex, datagram(10, 1, 7, templateSet(10, 256, field{ieDataLinkFrameSection, 0xffff})))
		_, errs := d.Decode(datagram(10, 2, 7, dataSet(256, []byte{0, 3, 1}), dataSet(256, []byte{5})), exporter, ex)
		if len(errs) != 2 || !errors.Is(errs[0], errRecordOverrun) || !errors.Is(errs[1], errRecordOverrun) {
			t.Fatalf("fast %v: errors %v", fast, errs)
		}
		var de *Error
		if !errors.As(errs[0], &de) || de.Reason != health.ReasonTruncated || ex.DecodeErrors[health.ReasonTruncated].Load() != 2 {
			t.Fatalf("fast %v: %v, %d truncated", fast, errs[0], ex.DecodeErrors[health.ReasonTruncated].Load())
		}
	}
}

// TestVariableLengthPairing: in a datagram that goflow2 decodes (it has
// template sets), each RawFlowSet goflow2 returns is paired with the
// template it did not get, in order: sets of missing templates between
// those of variable-length ones, an empty set, options data, and a template
// redefined from variable to fixed length and back within the datagram.
// The differential tests cannot see a wrong pairing here: the fast path
// takes no datagram with template sets, and the reference decoders pair
// the same way.
func TestVariableLengthPairing(t *testing.T) {
	const varLen = 0xffff
	a := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	b := ethIPv4TCP([4]byte{10, 1, 1, 3}, [4]byte{10, 2, 2, 4}, 60, 40001, 80)
	flowRec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	for _, version := range []uint16{9, 10} {
		for _, fast := range []bool{true, false} {
			d, ex := New(Limits{}), &health.Exporter{}
			d.noFastPath = !fast
			res, errs := d.Decode(datagram(version, 0, 7,
				templateSet(version, 256, field{ieDataLinkFrameSection, varLen}),
				templateSet(version, 257, flowFields...),
				asVersion(optionsTemplateSet(10, 258, []field{{149, 4}}, []field{{ieSamplingInterval, 4}, {82, varLen}}), version),
				dataSet(300, flowRec), // no template
				dataSet(256, varBytes(a), varBytes3(b)),
				dataSet(301, varBytes(a)), // no template
				dataSet(256),              // no record
				dataSet(258, cat(u32(7), u32(100), varBytes([]byte("ge-0/0/0")))),
				dataSet(257, flowRec),
				templateSet(version, 256, field{iePacketDelta, 4}), // now fixed
				dataSet(256, u32(5)),
				dataSet(302, u32(5)), // no template
				templateSet(version, 256, field{ieOctetDelta, varLen}, field{iePacketDelta, varLen}), // variable again
				dataSet(256, cat(varBytes([]byte{7}), varBytes3([]byte{1, 0}))),
			), exporter, ex)
			var got []rec
			for _, r := range res.Records {
				got = append(got, recOf(r))
			}
			want := []rec{
				{"10.1.1.1", "10.2.2.2", 6, 40000, 443, 1400, 1, 100},
				{"10.1.1.3", "10.2.2.4", 6, 40001, 80, 60, 1, 100},
				{"10.0.0.1", "10.0.0.2", 6, 1, 443, 1500, 3, 100},
				{"invalid IP", "invalid IP", 0, 0, 0, 0, 5, 100},
				{"invalid IP", "invalid IP", 0, 0, 0, 7, 256, 100},
			}
			if !reflect.DeepEqual(got, want) || len(errs) != 0 || ex.TemplateMissingSets.Load() != 3 {
				t.Fatalf("v%d fast %v: records\n%+v\nwant\n%+v\nerrors %v, %d sets without template, want 3",
					version, fast, got, want, errs, ex.TemplateMissingSets.Load())
			}
		}
	}
}

// TestGoflow2AsksOncePerDataSet checks what pairMisses rests on, so that a
// goflow2 upgrade that asks for templates differently shows here: on
// random datagrams of template, options template, data, empty, withdrawn
// and reserved sets, truncated now and then, goflow2 returns exactly one
// RawFlowSet of id 256 or more per template it did not get, in the same
// order.
func TestGoflow2AsksOncePerDataSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const varLen = 0xffff
	raws := 0
	for range 2000 {
		version := []uint16{9, 10}[rng.IntN(2)]
		d, ex := New(Limits{MaxTemplates: 4}), &health.Exporter{}
		d.noFastPath = true
		for seq := range uint32(3) {
			var sets []set
			for range rng.IntN(8) {
				id := uint16(256 + rng.IntN(6))
				switch rng.IntN(8) {
				case 0:
					sets = append(sets, templateSet(version, id, field{ieOctetDelta, 4}))
				case 1:
					sets = append(sets, templateSet(version, id, field{ieDataLinkFrameSection, varLen}))
				case 2:
					sets = append(sets, asVersion(optionsTemplateSet(10, id, []field{{149, 4}}, []field{{ieSamplingInterval, 4}, {82, varLen}}), version))
				case 3:
					sets = append(sets, templateSet(version, id)) // a withdrawal: refused
				case 4:
					sets = append(sets, set{uint16(rng.IntN(256)), make([]byte, rng.IntN(5))})
				default:
					data := make([]byte, rng.IntN(12))
					for i := range data {
						data[i] = byte(rng.IntN(4))
					}
					sets = append(sets, dataSet(id, data))
				}
			}
			b := datagram(version, seq, 1, sets...)
			if rng.IntN(10) == 0 {
				b = b[:len(b)-rng.IntN(5)]
			}
			d.ipfix.FlowSets, d.v9.FlowSets, d.gt.misses = nil, nil, nil
			d.Decode(b, exporter, ex)
			fs := d.ipfix.FlowSets
			if version == 9 {
				fs = d.v9.FlowSets
			}
			k := 0
			for _, s := range fs {
				raw, ok := s.(netflow.RawFlowSet)
				if !ok || raw.Id < 256 {
					continue
				}
				if k >= len(d.gt.misses) || d.gt.misses[k].id != raw.Id {
					t.Fatalf("v%d: set %d of %x: misses %+v", version, raw.Id, b, d.gt.misses)
				}
				k++
			}
			if k != len(d.gt.misses) {
				t.Fatalf("v%d: %d raw sets, %d templates missed (%x)", version, k, len(d.gt.misses), b)
			}
			raws += k
		}
	}
	if raws < 1000 {
		t.Fatalf("only %d raw sets", raws)
	}
}
