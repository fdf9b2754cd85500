package decode

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/health"
)

// TestUnknownVersionNamesIt: the log line of a datagram of no known
// protocol must say what the datagram claims to be, so that an operator can
// tell a router exporting NetFlow v7 or v8, or an sFlow v4 agent, from
// noise on the port; it said "unknown protocol version" only.
func TestUnknownVersionNamesIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"netflow v7", []byte{0, 7, 0, 1, 0, 0, 0, 0}, "unknown_version: unknown protocol version 7 (read: NetFlow 5 and 9, IPFIX 10, sFlow 5)"},
		{"netflow v8", []byte{0, 8, 0, 1}, "unknown_version: unknown protocol version 8 (read: NetFlow 5 and 9, IPFIX 10, sFlow 5)"},
		{"sflow v4", []byte{0, 0, 0, 4, 0, 0, 0, 1}, "unknown_version: unknown protocol version 4 (read: NetFlow 5 and 9, IPFIX 10, sFlow 5)"},
		{"random", []byte{0xde, 0xad, 0xbe, 0xef}, "unknown_version: unknown protocol version 57005 (read: NetFlow 5 and 9, IPFIX 10, sFlow 5)"},
		{"one byte", []byte{5}, "unknown_version: unknown protocol version: a datagram of 1 byte"},
		{"empty", nil, "unknown_version: unknown protocol version: a datagram of 0 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ex := New(Limits{}), &health.Exporter{}
			_, errs := d.Decode(tc.payload, netip.MustParseAddr("192.0.2.1"), ex)
			if len(errs) != 1 {
				t.Fatalf("errors %v, want one", errs)
			}
			if got := errs[0].Error(); got != tc.want {
				t.Errorf("error %q\nwant  %q", got, tc.want)
			}
			if !errors.Is(errs[0], ErrUnknownVersion) {
				t.Errorf("error %v does not wrap ErrUnknownVersion", errs[0])
			}
			if n := ex.DecodeErrors[health.ReasonUnknownVersion].Load(); n != 1 {
				t.Errorf("unknown_version counted %d times, want 1", n)
			}
		})
	}
}
