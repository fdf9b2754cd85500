package enrich

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

func nets(specs ...string) []Network {
	var out []Network
	for _, s := range specs {
		f := strings.Split(s, " ")
		n := Network{Prefix: netip.MustParsePrefix(f[0])}
		if len(f) > 1 {
			n.Name = f[1]
		}
		if len(f) > 2 && f[2] != "-" {
			n.Tenant = f[2]
		}
		if len(f) > 3 {
			n.Role = f[3]
		}
		out = append(out, n)
	}
	return out
}

func TestNetworkLookup(t *testing.T) {
	table := newNetworkTable(nets(
		"10.0.0.0/8 corp",
		"10.1.0.0/16 site1 acme",
		"10.1.2.0/24 lab acme",
		"10.1.2.128/25 lab-dmz",
		"10.200.0.0/16 site2",
		"192.0.2.0/24",
		"0.0.0.0/0 internet - external",
		"2001:db8:1::/48 v6office acme",
		"2001:db8:1:5::/64 v6lab",
		"255.255.255.255/32 broadcast",
	))
	tests := []struct {
		addr, want string
	}{
		{"10.0.0.1", "corp"},
		{"10.1.0.1", "site1"},
		{"10.1.1.255", "site1"},
		{"10.1.2.0", "lab"},
		{"10.1.2.127", "lab"},
		{"10.1.2.128", "lab-dmz"},
		{"10.1.2.255", "lab-dmz"},
		{"10.1.3.0", "site1"},
		{"10.1.255.255", "site1"},
		{"10.2.0.0", "corp"},
		{"10.200.5.5", "site2"},
		{"10.255.255.255", "corp"},
		{"11.0.0.0", "internet"},
		{"9.255.255.255", "internet"},
		{"192.0.2.9", "192.0.2.0/24"}, // no name: the prefix
		{"255.255.255.255", "broadcast"},
		{"255.255.255.254", "internet"},
		{"::ffff:10.1.2.200", "lab-dmz"}, // IPv4-mapped
		{"2001:db8:1::1", "v6office"},
		{"2001:db8:1:5::9", "v6lab"},
		{"2001:db8:1:6::9", "v6office"},
		{"2001:db8:2::1", ""}, // 0.0.0.0/0 does not cover IPv6
		{"::1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := ""
			if n := table.lookup(netip.MustParseAddr(tt.addr)); n != nil {
				got = n.name.String()
			}
			if got != tt.want {
				t.Errorf("lookup(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
	if n := table.lookup(netip.MustParseAddr("10.1.2.3")); n.tenant.String() != "acme" || !n.internal {
		t.Errorf("lab = %+v", n)
	}
	if n := table.lookup(netip.MustParseAddr("8.8.8.8")); n.internal {
		t.Errorf("internet is internal")
	}
	if (*networkTable)(nil).lookup(netip.MustParseAddr("10.0.0.1")) != nil || table.lookup(netip.Addr{}) != nil {
		t.Error("nil table or invalid address matched")
	}
}

func TestNetworkDuplicateLastWins(t *testing.T) {
	table := newNetworkTable(nets("10.0.0.0/8 first", "10.0.0.0/8 second"))
	if got := table.lookup(netip.MustParseAddr("10.9.9.9")).name.String(); got != "second" {
		t.Errorf("got %q, want second", got)
	}
}

// TestNetworkLookupRandom checks the flattened table against a brute-force
// longest-prefix match over random nested prefixes.
func TestNetworkLookupRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 50 {
		var ns []Network
		seen := map[netip.Prefix]bool{}
		for i := range 40 {
			var a netip.Addr
			var bits int
			if rng.IntN(3) == 0 {
				var b [16]byte
				b[0], b[1], b[2] = 0x20, 0x01, byte(rng.IntN(4))
				b[3] = byte(rng.IntN(256))
				a, bits = netip.AddrFrom16(b), 16+rng.IntN(25)
			} else {
				a, bits = netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))}), 8+rng.IntN(25)
			}
			p := netip.PrefixFrom(a, bits).Masked()
			if seen[p] {
				continue
			}
			seen[p] = true
			ns = append(ns, Network{Prefix: p, Name: p.String() + "#" + string(rune('a'+i%26))})
		}
		table := newNetworkTable(ns)
		for range 2000 {
			var a netip.Addr
			if rng.IntN(3) == 0 {
				var b [16]byte
				b[0], b[1], b[2], b[3] = 0x20, 0x01, byte(rng.IntN(4)), byte(rng.IntN(256))
				b[4], b[15] = byte(rng.IntN(256)), byte(rng.IntN(256))
				a = netip.AddrFrom16(b)
			} else {
				a = netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			}
			want, best := "", -1
			for _, n := range ns {
				if n.Prefix.Contains(a) && n.Prefix.Bits() > best {
					want, best = n.Name, n.Prefix.Bits()
				}
			}
			got := ""
			if n := table.lookup(a); n != nil {
				got = n.name.String()
			}
			if got != want {
				t.Fatalf("round %d: lookup(%s) = %q, want %q", round, a, got, want)
			}
		}
	}
}

func TestParseNetworks(t *testing.T) {
	good := "# comment\n\nprefix, name ,tenant,role\n10.0.0.0/8,corp,,\n 10.1.0.0/16 , site1, acme, internal\n198.51.100.7/24,partner,,external\n"
	ns, err := ParseNetworks(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 3 || ns[1].Name != "site1" || ns[1].Tenant != "acme" || ns[2].Prefix.String() != "198.51.100.0/24" || ns[2].Role != RoleExternal {
		t.Errorf("ParseNetworks = %+v", ns)
	}
	bad := []struct{ name, in, want string }{
		{"empty", "# nothing\n", "line 1: missing header (e.g. prefix,name,tenant,role)"},
		{"unknown column", "prefix,colour\n", `line 1: unknown column "colour" (known: prefix, name, tenant, role)`},
		{"twice", "prefix,name,name\n", `line 1: column "name" listed twice`},
		{"twice in two cases", "prefix,name,Name\n", `line 1: column "name" listed twice`},
		{"mixed separators", "prefix;name,tenant\n", `line 1: unknown column "prefix;name" (known: prefix, name, tenant, role)`},
		{"no prefix", "name,tenant\n", "line 1: the header must name a prefix column"},
		{"fields", "prefix,name\n10.0.0.0/8\n", "line 2: 1 fields, the header has 2"},
		{"cidr", "prefix\n10.0.0.0\n", `line 2: prefix "10.0.0.0" is not a CIDR`},
		{"role", "prefix,role\n10.0.0.0/8,dmz\n", `line 2: role: must be "internal" or "external", got "dmz"`},
		{"duplicate", "prefix\n10.0.0.0/8\n#\n10.0.0.1/8\n", "line 4: prefix 10.0.0.0/8 already listed on line 2"},
		{"duplicate mapped", "prefix\n198.51.100.0/24\n::ffff:198.51.100.0/120\n", "line 3: prefix 198.51.100.0/24 already listed on line 2"},
		{"fields with a quoted comma", "prefix,name\n10.0.0.0/8,\"a, b\",c\n", "line 2: 3 fields, the header has 2"},
		{"fields after a multi-line field", "prefix,name\n10.0.0.0/8,\"a\nb\"\n10.1.0.0/16\n", "line 4: 1 fields, the header has 2"},
		{"bare quote", "prefix,name\n10.0.0.0/8,Office \"B\"\n", `line 2: bare " in non-quoted-field`},
		{"unterminated quote", "prefix,name\n10.0.0.0/8,\"Office\n", `line 2: extraneous or missing " in quoted-field`},
		{"latin-1", "prefix,name\n10.0.0.0/8,B\xfcro\n", `line 2: "B\xfcro" is not valid UTF-8 (save the file as UTF-8)`},
		{"BOM only", "\ufeff", "line 1: missing header (e.g. prefix,name,tenant,role)"},
		{"reserved name", "prefix,name\n10.0.0.0/8,other\n", `line 2: name: "other" is reserved (overflow and unmatched series use it)`},
		{"reserved tenant", "prefix,tenant\n10.0.0.0/8,unknown\n", `line 2: tenant: "unknown" is reserved (overflow and unmatched series use it)`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNetworks(strings.NewReader(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %s", err, tt.want)
			}
		})
	}
}

// TestParseNetworksCSV reads what spreadsheets write: quoted fields with
// commas and quotes, a UTF-8 byte order mark, CRLF line ends; and comments
// and blank lines anywhere.
func TestParseNetworksCSV(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Network
	}{
		{"quoted comma", "prefix,name,tenant\n10.0.0.0/8,\"Office, Berlin\",acme\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "Office, Berlin", Tenant: "acme"}}},
		{"quoted quote", "prefix,name\n10.0.0.0/8,\"the \"\"lab\"\"\"\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: `the "lab"`}}},
		{"spaces around quoted field", "prefix, name ,tenant\n 10.0.0.0/8 , \"Office, Berlin\",acme\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "Office, Berlin", Tenant: "acme"}}},
		{"BOM", "\ufeffprefix,name\n10.0.0.0/8,corp\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "corp"}}},
		{"BOM, CRLF and UTF-8", "\ufeffprefix,name,tenant\r\n10.0.0.0/8,B\u00fcro,\"M\u00fcller, K\u00f6ln\"\r\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "Büro", Tenant: "Müller, Köln"}}},
		{"comments and blanks", "# head\n\n  # indented, with a comma\nprefix,name\n   \n# between\n10.0.0.0/8,corp\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "corp"}}},
		{"spreadsheet's empty rows", "\ufeffprefix,name,tenant,role\r\n,,,\r\n10.0.0.0/8,corp,,\r\n , ,,\r\n,,,\r\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "corp"}}},
		{"IPv4-mapped prefix", "prefix,name\n::ffff:198.51.100.0/120,partner\n",
			[]Network{{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Name: "partner"}}},
		{"capitalised header", "Prefix,Name,TENANT,Role\n10.0.0.0/8,corp,acme,internal\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "corp", Tenant: "acme", Role: RoleInternal}}},
		{"semicolons, as a German spreadsheet writes", "\ufeff# sites\r\nPrefix;Name;Tenant\r\n10.0.0.0/8;\"B\u00fcro; K\u00f6ln\";acme\r\n;;\r\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "Büro; Köln", Tenant: "acme"}}},
		{"semicolons in a comma header's fields", "prefix,name\n10.0.0.0/8,a;b\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "a;b"}}},
		// The header is looked for within the first 64 KiB, not only
		// within bufio's default 4 KiB buffer.
		{"semicolons after 8 KiB of comments", strings.Repeat("# site list, kept by the network team\n", 220) + "Prefix;Name\n10.0.0.0/8;corp\n",
			[]Network{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Name: "corp"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetworks(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseNetworks = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestReadNetworksFileNamesFile: errors in the content name the file and
// the line.
func TestReadNetworksFileNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nets.csv")
	if err := os.WriteFile(path, []byte("\ufeffprefix,name\n10.0.0.0/8,\"a, b\"\n10.0.0.0/33,x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadNetworksFile(path)
	if want := path + `: line 3: prefix "10.0.0.0/33" is not a CIDR`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestUnmapPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"::ffff:198.51.100.0/120", "198.51.100.0/24"},
		{"::ffff:198.51.100.7/120", "198.51.100.0/24"},
		{"::ffff:198.51.100.7/128", "198.51.100.7/32"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"::ffff:0:0/95", "::fffe:0:0/95"}, // wider than the mapped range: IPv6
		{"198.51.100.0/24", "198.51.100.0/24"},
		{"2001:db8::1/32", "2001:db8::/32"},
	}
	for _, tt := range tests {
		if got := UnmapPrefix(netip.MustParsePrefix(tt.in)); got != netip.MustParsePrefix(tt.want) {
			t.Errorf("UnmapPrefix(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestNetworkMappedPrefix: an IPv4-mapped IPv6 prefix matches the IPv4
// addresses it covers (plain and mapped), makes them internal for direction
// classification, and is the same prefix as its IPv4 form (the later entry
// wins).
func TestNetworkMappedPrefix(t *testing.T) {
	table := newNetworkTable(nets("::ffff:198.51.100.0/120 partner", "10.0.0.0/8 corp"))
	for _, a := range []string{"198.51.100.7", "::ffff:198.51.100.7"} {
		n := table.lookup(netip.MustParseAddr(a))
		if n == nil || n.name.String() != "partner" || !n.internal {
			t.Errorf("lookup(%s) = %+v, want partner, internal", a, n)
		}
	}
	if n := table.lookup(netip.MustParseAddr("198.51.101.1")); n != nil {
		t.Errorf("lookup(198.51.101.1) = %+v, want none", n)
	}
	if got := newNetworkTable(nets("198.51.100.0/24 first", "::ffff:198.51.100.0/120 second")).lookup(netip.MustParseAddr("198.51.100.7")); got.name.String() != "second" {
		t.Errorf("same prefix twice: got %q, want second", got.name)
	}
	if got := newNetworkTable(nets("::ffff:198.51.100.0/120")).lookup(netip.MustParseAddr("198.51.100.7")); got.name.String() != "198.51.100.0/24" {
		t.Errorf("unnamed: got %q, want 198.51.100.0/24", got.name)
	}

	e, err := New(Config{Networks: nets("::ffff:198.51.100.0/120 office", "10.0.0.0/8 corp"), ClassifyDirection: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src, dst string
		want     flow.Direction
	}{
		{"198.51.100.7", "10.0.0.1", flow.DirectionInternal},
		{"203.0.113.1", "198.51.100.7", flow.DirectionIngress},
		{"198.51.100.7", "203.0.113.1", flow.DirectionEgress},
	}
	for _, tt := range tests {
		r := []flow.Record{{SrcAddr: netip.MustParseAddr(tt.src), DstAddr: netip.MustParseAddr(tt.dst)}}
		e.Apply(r)
		if r[0].Direction != tt.want {
			t.Errorf("%s -> %s: direction %s, want %s", tt.src, tt.dst, r[0].Direction, tt.want)
		}
	}
}
