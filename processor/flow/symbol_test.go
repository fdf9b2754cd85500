package flow

import "testing"

func TestInternAndService(t *testing.T) {
	a, b := Intern("office"), Intern("office")
	if a != b || a == 0 || a.String() != "office" {
		t.Errorf("Intern: %d %d %q", a, b, a.String())
	}
	if Intern("") != 0 || Symbol(0).String() != "" || Symbol(MaxSymbols+1).String() != "" {
		t.Error("zero or unknown symbol")
	}
	tests := []struct {
		s    Service
		want string
	}{
		{0, ""},
		{ServiceFromPort(8081), "8081"},
		{ServiceFromPort(0), "0"},
		{ServiceFromSymbol(Intern("https")), "https"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Service(%#x) = %q, want %q", uint32(tt.s), got, tt.want)
		}
	}
	if p, ok := ServiceFromPort(443).Port(); !ok || p != 443 {
		t.Errorf("Port() = %d, %v", p, ok)
	}
	if _, ok := ServiceFromSymbol(a).Port(); ok {
		t.Error("a named service has a port")
	}
}

func TestInternRoom(t *testing.T) {
	Intern("known-a")
	Intern("known-b")
	n := Symbols()
	tests := []struct {
		name      string
		names     []string
		limit     int
		wantOK    bool
		wantAdded int
	}{
		{"all known", []string{"known-a", "known-b", ""}, n, true, 0},
		{"new names counted once", []string{"new-x", "new-x", "new-y", "known-a"}, n + 2, true, 2},
		{"one past the limit", []string{"new-x", "new-y"}, n + 1, false, 2},
	}
	for _, tt := range tests {
		ok, added := internRoom(tt.names, tt.limit)
		if ok != tt.wantOK || added != tt.wantAdded {
			t.Errorf("%s: internRoom = %v, %d; want %v, %d", tt.name, ok, added, tt.wantOK, tt.wantAdded)
		}
	}
	if Symbols() != n {
		t.Errorf("internRoom interned: %d symbols, was %d", Symbols(), n)
	}
}
