package enrich

import "testing"

func TestServiceClassify(t *testing.T) {
	table := newServiceTable([]ServiceName{{Port: 8443, Proto: "tcp", Name: "admin"}, {Port: 53, Name: "resolver"}}, 32768)
	tests := []struct {
		name     string
		proto    uint8
		src, dst uint16
		want     string
	}{
		{"https", 6, 40000, 443, "https"},
		{"https reply", 6, 443, 40000, "https"},
		{"quic", 17, 50000, 443, "quic"},
		{"configured overrides built-in", 17, 40001, 53, "resolver"},
		{"configured new", 6, 33000, 8443, "admin"},
		{"configured is tcp only", 17, 33000, 8443, "8443"},
		{"higher port named", 6, 1023, 3306, "mysql"},
		{"lower named wins", 6, 22, 80, "ssh"},
		{"unnamed low port", 6, 40000, 8081, "8081"},
		{"both ephemeral", 6, 40000, 50000, "ephemeral"},
		{"ephemeral boundary", 17, 32768, 60000, "ephemeral"},
		{"below boundary", 17, 32767, 60000, "32767"},
		{"one port zero", 6, 0, 40000, "ephemeral"},
		{"sctp uses tcp names", 132, 40000, 443, "https"},
		{"icmp", 1, 0, 2048, ""},
		{"gre", 47, 0, 0, ""},
		{"no ports", 6, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := table.classify(tt.proto, tt.src, tt.dst).String(); got != tt.want {
				t.Errorf("classify(%d, %d, %d) = %q, want %q", tt.proto, tt.src, tt.dst, got, tt.want)
			}
		})
	}
	noGroup := newServiceTable(nil, 0)
	if got := noGroup.classify(6, 40000, 50000).String(); got != "40000" {
		t.Errorf("without grouping = %q", got)
	}
}

func TestServiceNameValidate(t *testing.T) {
	tests := []struct {
		s    ServiceName
		want string
	}{
		{ServiceName{Port: 1, Name: "x"}, ""},
		{ServiceName{Port: 0, Name: "x"}, "port: must be 1..65535"},
		{ServiceName{Port: 1, Proto: "icmp", Name: "x"}, `proto: must be tcp, udp or empty (both), got "icmp"`},
		{ServiceName{Port: 1}, "name: must not be empty"},
		{ServiceName{Port: 1, Name: "other"}, `name: "other" is reserved (overflow series and flows without ports use it)`},
		{ServiceName{Port: 1, Name: "none"}, `name: "none" is reserved (overflow series and flows without ports use it)`},
		{ServiceName{Port: 1, Name: "unknown"}, `name: "unknown" is reserved (overflow series and flows without ports use it)`},
		{ServiceName{Port: 8443, Name: "443"}, `name: "443" is a number, as unnamed ports are shown`},
		{ServiceName{Port: 1, Name: "other2"}, ""},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if got := ""; err != nil {
			got = err.Error()
			if got != tt.want {
				t.Errorf("%+v: %q, want %q", tt.s, got, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("%+v: no error, want %q", tt.s, tt.want)
		}
	}
}
