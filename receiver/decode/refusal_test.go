package decode

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/health"
)

// refusalCase is one datagram and what decoding it must give: whether the
// fast path takes it (fast) or leaves it to goflow2, the records' byte
// counts, and the decode errors counted, in reason order.
type refusalCase struct {
	name   string
	b      []byte
	fast   bool
	bytes  []uint64
	errors []health.Reason
}

// checkRefusal decodes c.b through a pair (after the datagrams in setup)
// and checks the fast path took or left it as c says, and that the records
// and errors all decoders agree on (pair.check) are c's.
func checkRefusal(t *testing.T, setup [][]byte, c refusalCase) {
	t.Helper()
	p := newPair()
	for _, b := range setup {
		p.check(t, b)
	}
	hits := p.fast.fastHits
	var before [len(p.exFast.DecodeErrors)]uint64
	for r := range before {
		before[r] = p.exFast.DecodeErrors[r].Load()
	}
	recs := p.check(t, c.b)
	if took := p.fast.fastHits > hits; took != c.fast {
		t.Errorf("%s: fast path took it %v, want %v", c.name, took, c.fast)
	}
	var got []uint64
	for _, r := range recs {
		got = append(got, r.Bytes)
	}
	if !reflect.DeepEqual(got, c.bytes) {
		t.Errorf("%s: record bytes %v, want %v", c.name, got, c.bytes)
	}
	var reasons []health.Reason
	for _, r := range health.Reasons() {
		for range p.exFast.DecodeErrors[r].Load() - before[r] {
			reasons = append(reasons, r)
		}
	}
	if !reflect.DeepEqual(reasons, c.errors) {
		t.Errorf("%s: decode errors %v, want %v", c.name, reasons, c.errors)
	}
}

// TestFastPathRefusals checks each condition under which the v9/IPFIX fast
// path takes a message, or leaves it to goflow2, with the records and
// errors both paths must then agree on: a message the fast path takes but
// reads differently would be the bug.
func TestFastPathRefusals(t *testing.T) {
	rec := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 1500, 3)
	rec2 := flowRecord([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1, 443, 6, 700, 1)
	v4 := ethIPv4TCP([4]byte{10, 1, 1, 1}, [4]byte{10, 2, 2, 2}, 1400, 40000, 443)
	for _, v := range []uint16{9, 10} {
		setup := [][]byte{datagram(v, 0, 1, templateSet(v, 256, flowFields...),
			templateSet(v, 259, field{ieDataLinkFrameSection, 0xffff}),
			optionsTemplateSet(v, 258, []field{{1, 4}}, []field{{ieSamplingInterval, 4}}),
			optionsTemplateSet(v, 262, []field{{1, 4}}, []field{{ieSamplingInterval, 4}, {82, 0xffff}}))}
		tmplSet, optSet, reserved := uint16(0), uint16(1), uint16(5)
		if v == 10 {
			tmplSet, optSet, reserved = 2, 3, 4
		}
		// v9 declaring one set of two; IPFIX whose length leaves out the
		// datagram's last set
		oneOfTwo := datagram(v, 1, 1, dataSet(256, rec), dataSet(256, rec2))
		if v == 9 {
			binary.BigEndian.PutUint16(oneOfTwo[2:], 1)
		} else {
			binary.BigEndian.PutUint16(oneOfTwo[2:], uint16(len(oneOfTwo)-4-len(rec2)))
		}
		// the last set's header cut to two bytes (counted in the IPFIX length)
		headerCut := cat(datagram(v, 1, 1, dataSet(256, rec)), []byte{1, 0})
		if v == 10 {
			binary.BigEndian.PutUint16(headerCut[2:], uint16(len(headerCut)))
		} else {
			binary.BigEndian.PutUint16(headerCut[2:], 2)
		}
		// a set shorter than its header
		shortSet := cat(datagram(v, 1, 1, dataSet(256, rec)), u16(256), u16(3))
		if v == 10 {
			binary.BigEndian.PutUint16(shortSet[2:], uint16(len(shortSet)))
		} else {
			binary.BigEndian.PutUint16(shortSet[2:], 2)
		}
		// a set running past the end
		pastEnd := cut(datagram(v, 1, 1, dataSet(256, rec), dataSet(256, rec, rec)), 10)
		if v == 10 {
			binary.BigEndian.PutUint16(pastEnd[2:], uint16(len(pastEnd)))
		}
		for _, c := range []refusalCase{
			{"data sets", datagram(v, 1, 1, dataSet(256, rec, rec2), dataSet(256, rec)), true, []uint64{1500, 700, 1500}, nil},
			{"variable-length data set", datagram(v, 1, 1, dataSet(259, varBytes(v4)), dataSet(256, rec)), true, []uint64{1400, 1500}, nil},
			{"empty set", datagram(v, 1, 1, set{256, nil}, dataSet(256, rec)), true, []uint64{1500}, nil},
			{"padding", datagram(v, 1, 1, dataSet(256, rec, make([]byte, len(rec)-1))), true, []uint64{1500}, nil},
			{"only the declared sets", oneOfTwo, true, []uint64{1500}, nil},
			{"template set", datagram(v, 1, 1, templateSet(v, 300, field{1, 4}), dataSet(256, rec)), false, []uint64{1500}, nil},
			{"options template set", datagram(v, 1, 1, dataSet(256, rec), optionsTemplateSet(v, 301, []field{{1, 4}}, []field{{34, 4}})), false, []uint64{1500}, nil},
			{"options data", datagram(v, 1, 1, dataSet(256, rec), dataSet(258, cat(u32(0), u32(10)))), false, []uint64{1500}, nil},
			{"variable-length options data", datagram(v, 1, 1, dataSet(262, cat(u32(0), u32(10), varBytes([]byte("eth0")))), dataSet(256, rec)), false, []uint64{1500}, nil},
			{"unknown template", datagram(v, 1, 1, dataSet(256, rec), dataSet(300, rec)), false, []uint64{1500}, []health.Reason{health.ReasonTemplateMissing}},
			{"reserved set id", datagram(v, 1, 1, dataSet(256, rec), set{reserved, u32(0)}), false, []uint64{1500}, []health.Reason{health.ReasonMalformed}},
			{"template set id 0/2 of the other version", datagram(v, 1, 1, dataSet(256, rec), set{tmplSet ^ 2, u32(0)}), false, []uint64{1500}, []health.Reason{health.ReasonMalformed}},
			{"options set id of the other version", datagram(v, 1, 1, dataSet(256, rec), set{optSet ^ 2, u32(0)}), false, []uint64{1500}, []health.Reason{health.ReasonMalformed}},
			{"set header cut", headerCut, false, []uint64{1500}, []health.Reason{health.ReasonTruncated}},
			{"set shorter than its header", shortSet, false, []uint64{1500}, []health.Reason{health.ReasonMalformed}},
			{"set past the end", pastEnd, false, []uint64{1500, 1500}, []health.Reason{health.ReasonTruncated}},
			{"no set", datagram(v, 1, 1), false, nil, nil},
		} {
			c.name = fmt.Sprintf("v%d %s", v, c.name)
			checkRefusal(t, setup, c)
		}
	}
}

// TestSFlowFastPathRefusals checks each condition under which the sFlow
// fast path takes a datagram, or leaves it to goflow2, with the records and
// errors both paths must then agree on.
func TestSFlowFastPathRefusals(t *testing.T) {
	a, b := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	hdr := rawHeader(a, b, 1400)
	ifCounters := sfRecord(1, make([]byte, 88))
	acl := sfRecord(1037, cat(u32(1), u32(3), []byte("abc"), u32(1)))
	function := sfRecord(1038, cat(u32(3), []byte("abc")))
	manyRecords := sfFlowSample(2, 10, 1, 2, hdr)
	binary.BigEndian.PutUint32(manyRecords[8+28:], 1001)
	for _, c := range []refusalCase{
		{"flow samples", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr), sfExpandedSample(2, 10, 1, 2, sampledIPv4(a, b))), true, []uint64{1400, 1400}, nil},
		{"counter samples", sfDatagram(1, 0, -1, sfCounterSample(2, ifCounters), sfCounterSample(4, ifCounters)), true, nil, nil},
		{"records of no interest", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, sfRecord(2, make([]byte, 20)), sfRecord(1001, make([]byte, 16)), sfRecord(1036, u32(1)), sfRecord(4242, nil), hdr)), true, []uint64{1400}, nil},
		{"sample past the end", cut(sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr), sfFlowSample(2, 10, 1, 2, hdr)), 4), true, []uint64{1400}, []health.Reason{health.ReasonTruncated}},
		{"record past the sample", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr, cat(u32(1), u32(400)))), true, []uint64{1400}, nil},
		{"drop sample", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr), cat(u32(5), u32(8), make([]byte, 8))), false, []uint64{1400}, []health.Reason{health.ReasonTruncated}},
		{"unknown sample format", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr), cat(u32(77), u32(8), make([]byte, 8))), false, []uint64{1400}, []health.Reason{health.ReasonMalformed}},
		{"ACL record", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr, acl)), false, []uint64{1400}, nil},
		{"function record", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr, function)), false, []uint64{1400}, nil},
		{"short sampled IPv4", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr), sfFlowSample(2, 10, 1, 2, sfRecord(3, make([]byte, 31)))), false, []uint64{1400}, []health.Reason{health.ReasonTruncated}},
		{"short interface counters", sfDatagram(1, 0, -1, sfCounterSample(2, sfRecord(1, make([]byte, 87)))), false, nil, []health.Reason{health.ReasonTruncated}},
		{"too many records", sfDatagram(1, 0, -1, manyRecords), false, nil, []health.Reason{health.ReasonMalformed}},
		{"AS path too long", sfDatagram(1, 0, -1, sfFlowSample(1, 10, 1, 2, hdr, gatewayRecord(1, 2, make([]uint32, 1001), 0))), false, nil, []health.Reason{health.ReasonMalformed}},
		{"bad agent address", cat(u32(5), u32(3), make([]byte, 20)), false, nil, []health.Reason{health.ReasonMalformed}},
	} {
		checkRefusal(t, nil, c)
	}
}
