package enrich

import (
	"net/netip"
	"testing"
	"time"
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
