package enrich

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestInterfacesMerge(t *testing.T) {
	r1, r2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	s := NewInterfaces()
	s.SetStatic([]Interface{
		{Exporter: r1, Index: 1, Alias: "uplink to ISP"},          // completes a polled entry
		{Exporter: r1, Index: 9, Name: "static-only", Speed: 1e9}, // not polled
	})
	now := time.Unix(1700000000, 0)
	s.SetPolled(netip.MustParseAddr("::ffff:192.0.2.1"), []Interface{
		{Index: 1, Name: "ge-0/0/1", Alias: "polled alias", Speed: 10e9},
		{Index: 2, Name: "ge-0/0/2"},
	}, now)
	s.PollFailed(r2)
	got := s.Snapshot()
	want := []Interface{
		{Exporter: r1, Index: 1, Name: "ge-0/0/1", Alias: "uplink to ISP", Speed: 10e9},
		{Exporter: r1, Index: 2, Name: "ge-0/0/2"},
		{Exporter: r1, Index: 9, Name: "static-only", Speed: 1e9},
	}
	if len(got) != len(want) {
		t.Fatalf("Snapshot = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Snapshot[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if i, ok := s.Lookup(r1, 1); !ok || i.Alias != "uplink to ISP" || i.Name != "ge-0/0/1" {
		t.Errorf("Lookup = %+v, %v", i, ok)
	}
	if _, ok := s.Lookup(r2, 1); ok {
		t.Error("unknown interface found")
	}
	st := s.PollStatuses()
	if len(st) != 2 || st[0].Successes != 1 || st[0].Interfaces != 2 || !st[0].LastSuccess.Equal(now) || st[1].Failures != 1 {
		t.Errorf("PollStatuses = %+v", st)
	}
	s.Forget(r1)
	if got := s.Snapshot(); len(got) != 2 {
		t.Errorf("after Forget: %+v", got)
	}
}

// TestCleanText: names and aliases come out valid UTF-8 and bounded, cut
// on a rune boundary; valid short text is returned as is.
func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"ge-0/0/1", "ge-0/0/1"},
		{"Büro uplink", "Büro uplink"},
		{"B\xfcro uplink", "B\uFFFDro uplink"},
		{"\xff\xfe", "\uFFFD"},
		{"ok\xc3", "ok\uFFFD"}, // truncated sequence
		{strings.Repeat("x", MaxTextBytes), strings.Repeat("x", MaxTextBytes)},
		{strings.Repeat("x", MaxTextBytes+1), strings.Repeat("x", MaxTextBytes)},
		{strings.Repeat("x", MaxTextBytes-2) + "€", strings.Repeat("x", MaxTextBytes-2)}, // € is 3 bytes
		{strings.Repeat("\xfc", 200), strings.Repeat("\uFFFD", 1)},                       // one run, one U+FFFD
		{strings.Repeat("a\xfc", 100), strings.Repeat("a\uFFFD", 64)},                    // 100 x 4 bytes, cut to 64 x 4
	}
	for _, tt := range tests {
		got := CleanText(tt.in)
		if got != tt.want {
			t.Errorf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !utf8.ValidString(got) || len(got) > MaxTextBytes {
			t.Errorf("CleanText(%q) = %q: invalid or %d bytes", tt.in, got, len(got))
		}
	}
}

// TestInterfacesRetain forgets polled interfaces and statuses of the
// exporters not kept, and nothing static.
func TestInterfacesRetain(t *testing.T) {
	r1, r2, r3 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	s := NewInterfaces()
	s.SetStatic([]Interface{{Exporter: r2, Index: 7, Name: "static"}})
	now := time.Unix(1700000000, 0)
	s.SetPolled(r1, []Interface{{Index: 1, Name: "a"}}, now)
	s.SetPolled(r2, []Interface{{Index: 1, Name: "b"}}, now)
	s.PollFailed(r3)
	if n := s.Retain(func(a netip.Addr) bool { return a == r1 }); n != 2 {
		t.Errorf("Retain forgot %d exporters, want 2", n)
	}
	st := s.PollStatuses()
	if len(st) != 1 || st[0].Exporter != r1 {
		t.Errorf("PollStatuses = %+v, want only %s", st, r1)
	}
	want := []Interface{{Exporter: r1, Index: 1, Name: "a"}, {Exporter: r2, Index: 7, Name: "static"}}
	if got := s.Snapshot(); !slices.Equal(got, want) {
		t.Errorf("Snapshot = %+v, want %+v", got, want)
	}
}
