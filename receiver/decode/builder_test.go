package decode

import (
	"encoding/binary"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// The helpers below build NetFlow v9, IPFIX and sFlow datagrams byte by byte
// for unit tests of the decoder. End-to-end tests use real exporters.

type field struct{ typ, length uint16 }

type set struct {
	id   uint16
	body []byte
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// templateSet encodes one template record. In IPFIX a type with the
// enterprise bit (0x8000) is followed by an enterprise number (9).
func templateSet(version, id uint16, fields ...field) set {
	body := cat(u16(id), u16(uint16(len(fields))))
	for _, f := range fields {
		body = cat(body, u16(f.typ), u16(f.length))
		if version == 10 && f.typ&0x8000 != 0 {
			body = cat(body, u32(9))
		}
	}
	sid := uint16(0)
	if version == 10 {
		sid = 2
	}
	return set{sid, body}
}

// optionsTemplateSet encodes one options template (scope fields first).
func optionsTemplateSet(version, id uint16, scopes, options []field) set {
	var body []byte
	if version == 9 {
		body = cat(u16(id), u16(uint16(4*len(scopes))), u16(uint16(4*len(options))))
	} else {
		body = cat(u16(id), u16(uint16(len(scopes)+len(options))), u16(uint16(len(scopes))))
	}
	for _, f := range append(append([]field(nil), scopes...), options...) {
		body = cat(body, u16(f.typ), u16(f.length))
	}
	sid := uint16(1)
	if version == 10 {
		sid = 3
	}
	return set{sid, body}
}

func dataSet(id uint16, records ...[]byte) set { return set{id, cat(records...)} }

// datagram encodes a v9 or IPFIX message.
func datagram(version uint16, seq, domain uint32, sets ...set) []byte {
	var body []byte
	for _, s := range sets {
		body = cat(body, u16(s.id), u16(uint16(4+len(s.body))), s.body)
	}
	if version == 9 {
		return cat(u16(9), u16(uint16(len(sets))), u32(1000), u32(1700000000), u32(seq), u32(domain), body)
	}
	return cat(u16(10), u16(uint16(16+len(body))), u32(1700000000), u32(seq), u32(domain), body)
}

// v5Datagram encodes a NetFlow v5 datagram with n copies of one record.
func v5Datagram(seq uint32, rate uint16, n int, src, dst [4]byte, bytes, pkts uint32) []byte {
	out := cat(u16(5), u16(uint16(n)), u32(1000), u32(1700000000), u32(0), u32(seq), []byte{0, 0}, u16(rate))
	for i := 0; i < n; i++ {
		rec := cat(src[:], dst[:], []byte{0, 0, 0, 0}, u16(1), u16(2), u32(pkts), u32(bytes), u32(0), u32(10),
			u16(1234), u16(443), []byte{0, 0x18, 6, 0}, u16(64500), u16(64501), []byte{24, 24}, u16(0))
		out = append(out, rec...)
	}
	return out
}

// ethIPv4TCP returns an Ethernet/IPv4/TCP header for a packet of ipLen bytes.
func ethIPv4TCP(src, dst [4]byte, ipLen uint16, sport, dport uint16) []byte {
	eth := cat(make([]byte, 12), u16(0x0800))
	ip := cat([]byte{0x45, 0}, u16(ipLen), u16(0), u16(0), []byte{64, 6}, u16(0), src[:], dst[:])
	tcp := cat(u16(sport), u16(dport), u32(0), u32(0), []byte{0x50, 0x12}, u16(0), u16(0), u16(0))
	return cat(eth, ip, tcp)
}

// sflowDatagram encodes an sFlow v5 datagram with one flow sample holding a
// raw packet header record.
func sflowDatagram(seq, rate uint32, header []byte, frameLen uint32) []byte {
	pad := (4 - len(header)%4) % 4
	rec := cat(u32(1), u32(frameLen), u32(4), u32(uint32(len(header))), header, make([]byte, pad))
	sample := cat(u32(seq), u32(3), u32(rate), u32(rate*seq), u32(0), u32(3), u32(7), u32(1),
		u32(1), u32(uint32(len(rec))), rec)
	return cat(u32(5), u32(1), []byte{192, 0, 2, 50}, u32(0), u32(seq), u32(1000), u32(1),
		u32(1), u32(uint32(len(sample))), sample)
}

// templateRecordOf makes a goflow2 template record from fields.
func templateRecordOf(fields []field) netflow.TemplateRecord {
	tr := netflow.TemplateRecord{TemplateId: 256, FieldCount: uint16(len(fields))}
	for _, f := range fields {
		tr.Fields = append(tr.Fields, netflow.Field{Type: f.typ, Length: f.length})
	}
	return tr
}
