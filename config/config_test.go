package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/enrich/enrichtest"
	"github.com/flowmetrics/flowmetrics/processor/sampling"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() is invalid: %v", err)
	}
	if len(c.Core().Families) != len(DefaultFamilies) {
		t.Fatalf("default families = %d", len(c.Core().Families))
	}
}

func TestLoadGood(t *testing.T) {
	c, err := Load("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	cc, ic := c.Core(), c.Intake()
	if len(cc.Families) != 1 || cc.Families[0].IPv4Mask != 24 || cc.Families[0].IPv6Mask != 64 || cc.Families[0].Limit != 500 {
		t.Errorf("families = %+v", cc.Families)
	}
	if cc.Options.TTL != 5*time.Minute || cc.Options.Hold != time.Minute || cc.Options.Tombstones != 100 {
		t.Errorf("options = %+v", cc.Options)
	}
	if len(cc.Sampling.Overrides) != 1 || cc.Sampling.Overrides[0].Prefix.String() != "192.0.2.7/32" || cc.Sampling.Overrides[0].Rate != 1000 {
		t.Errorf("overrides = %+v", cc.Sampling.Overrides)
	}
	if len(ic.AllowedExporters) != 2 || ic.AllowedExporters[1].String() != "2001:db8::1/128" || ic.Sockets != 2 || ic.Limits.MaxTemplates != 32 {
		t.Errorf("intake = %+v", ic)
	}
}

func TestEmptyFileKeepsDefaults(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 3 || len(c.Families) != len(DefaultFamilies) {
		t.Fatalf("empty config lost defaults: %+v", c)
	}
}

// TestInvalid maps every testdata/invalid-*.yml to the exact error it must
// produce; a new fixture without an entry fails the test.
func TestInvalid(t *testing.T) {
	want := map[string]string{
		"invalid-label.yml":                          `families[0] (x).labels: unknown label "colour" (known: exporter, in_if, out_if, direction, proto, src_port, dst_port, port, src_addr, dst_addr, src_as, dst_as, ip_version, src_net, dst_net, tenant, src_country, dst_country, service)`,
		"invalid-limit.yml":                          "families[0] (x): limit: must be at least 1, got 0",
		"invalid-duplicate-family.yml":               `families[1].name: "x" is used twice or reserved`,
		"invalid-reserved-family.yml":                `families[0].name: "exporter" is used twice or reserved`,
		"invalid-family-name.yml":                    `families[0] (Bad-Name): name "Bad-Name": only lower-case letters, digits and _ are allowed`,
		"invalid-prefix.yml":                         "families[0] (x): ipv4_prefix_length: must be 0..32, got 33",
		"invalid-listen.yml":                         `listen[0]: "2055" is not host:port`,
		"invalid-listen-empty.yml":                   "listen: at least one address is required",
		"invalid-listen-port.yml":                    `listen[0]: "127.0.0.1:99999": the port must be a number from 0 to 65535`,
		"invalid-listen-named-port.yml":              `listen[0]: "localhost:netflow": the port must be a number from 0 to 65535`,
		"invalid-listen-duplicate.yml":               `listen[3]: ":2055" is listen[0] again`,
		"invalid-unknown-key.yml":                    "yaml: unmarshal errors:\n  line 1: listne: unknown key (known: listen, sockets, receive_buffer_bytes, allowed_exporters, max_exporters, max_templates_per_exporter, series, sampling, families, address_hash_key, enrich)",
		"invalid-override-exporter.yml":              `sampling.overrides[0].exporter: "not-an-ip" is neither an address nor a CIDR`,
		"invalid-override-rate.yml":                  "sampling.overrides[0].rate: must be at least 1",
		"invalid-allowed.yml":                        `allowed_exporters[0]: "10.0.0.0/33" is neither an address nor a CIDR`,
		"invalid-ttl.yml":                            "series.idle_timeout: must be positive, got -1s",
		"invalid-sketch-size.yml":                    "series.sketch_size: must be 1..1048576, got 100000000",
		"invalid-service-reserved.yml":               `enrich.services[0].name: "other" is reserved (overflow series and flows without ports use it)`,
		"invalid-max-exporters.yml":                  "max_exporters: must be at least 1, got 0",
		"invalid-receive-buffer.yml":                 "receive_buffer_bytes: must be 0..1073741823, got 3000000000",
		"invalid-sockets.yml":                        "sockets: must be 0..256, got 1000",
		"invalid-hash-key.yml":                       "families[0] (x).hash_addresses: needs address_hash_key of at least 16 characters",
		"invalid-enrich-network-prefix.yml":          `enrich.networks[0].prefix: "10.0.0.0/33" is not a CIDR`,
		"invalid-enrich-network-role.yml":            `enrich.networks[0].role: must be "internal" or "external", got "dmz"`,
		"invalid-enrich-network-role-after-file.yml": `enrich.networks[1].role: must be "internal" or "external", got "bogus"`,
		"invalid-enrich-networks-file.yml":           `enrich.networks_file: testdata/networks-bad.csv: line 3: prefix "10.2.0.0/40" is not a CIDR`,
		"invalid-enrich-networks-file-latin1.yml":    `enrich.networks_file: testdata/networks-latin1.csv: line 2: "B\xfcro" is not valid UTF-8 (save the file as UTF-8)`,
		"invalid-enrich-networks-file-missing.yml":   "enrich.networks_file: open testdata/nope.csv: no such file or directory",
		"invalid-enrich-interface-exporter.yml":      `enrich.interfaces[0].exporter: "router1" is not an address`,
		"invalid-enrich-interface-empty.yml":         "enrich.interfaces[0].name: one of name, alias or speed_bps must be set",
		"invalid-enrich-service-port.yml":            "enrich.services[0].port: must be 1..65535, got 70000",
		"invalid-enrich-service-proto.yml":           `enrich.services[0].proto: must be tcp, udp or empty (both), got "icmp"`,
		"invalid-enrich-geoip-missing.yml":           "enrich.geoip.asn_database: open testdata/missing.mmdb: no such file or directory",
		"invalid-enrich-geoip-format.yml":            "enrich.geoip.country_database: error opening database: invalid MaxMind DB file",
		"invalid-enrich-snmp-version.yml":            `enrich.snmp.version: must be "1" or "2c", got "3"`,
		"invalid-enrich-snmp-exporter.yml":           `enrich.snmp.exporters[0]: "router" is neither an address nor a CIDR`,
		"invalid-enrich-snmp-concurrency.yml":        "enrich.snmp.concurrency: must be 1..256, got 0",
		"invalid-enrich-ephemeral.yml":               "enrich.ephemeral_port_min: must be 0..65535, got 70000",
		"invalid-override-duplicate.yml":             "sampling.overrides[2].exporter: 192.0.2.0/24 is sampling.overrides[0] again",
		"invalid-enrich-interface-duplicate.yml":     "enrich.interfaces[1]: exporter 192.0.2.7 if_index 3 is enrich.interfaces[0] again",
	}
	files, _ := filepath.Glob("testdata/invalid-*.yml")
	if len(files) != len(want) {
		t.Errorf("%d fixtures, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expected error for %s", name)
			}
			_, err := Load(f)
			if err == nil || err.Error() != w {
				t.Fatalf("Load(%s) error = %v\nwant %s", name, err, w)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/good.yml", "testdata/invalid-label.yml", "testdata/invalid-ttl.yml"} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		// A config that parses must validate and build.
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		_ = c.Core()
		_ = c.Intake()
	})
}

// TestExampleConfigIsValid loads examples/flowmetrics.yml from the
// repository's root (its networks_file is relative to the file, as for
// `flowmetrics --config.check --config.file=examples/flowmetrics.yml`) and
// checks what it configures, then uncomments its geoip block, points it at
// generated databases and checks that it parses too.
func TestExampleConfigIsValid(t *testing.T) {
	t.Chdir("..")
	const example = "examples/flowmetrics.yml"
	c, err := Load(example)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Families) != 11 || c.Core().Families[8].HashKey == nil {
		t.Fatalf("example families = %+v", c.Families)
	}
	for i, f := range DefaultFamilies {
		if c.Families[i].Name != f.Name || strings.Join(c.Families[i].Labels, ",") != strings.Join(f.Labels, ",") || c.Families[i].Limit != f.Limit {
			t.Errorf("example family %d = %+v, want the default %+v", i, c.Families[i], f)
		}
	}
	e := c.Core().Enrich
	var nets []string
	for _, n := range e.Networks {
		nets = append(nets, n.Prefix.String()+"="+n.Name+"/"+n.Tenant+"/"+n.Role)
	}
	wantNets := []string{ // networks_file first, inline after (they win)
		"10.0.0.0/8=corp//internal", "10.3.0.0/16=lab/initech/internal", "192.168.0.0/16=branches//internal", "198.51.100.0/24=cdn//external",
		"10.1.0.0/24=office/acme/", "10.2.0.0/16=datacenter/globex/", "2001:db8:1::/48=office-v6/acme/", "203.0.113.0/24=partner//external",
	}
	if strings.Join(nets, " ") != strings.Join(wantNets, " ") {
		t.Errorf("networks = %v, want %v", nets, wantNets)
	}
	if !e.ClassifyDirection || e.EphemeralPortMin != 32768 || len(e.Services) != 3 || e.Services[2].Name != "flowmetrics" || e.Services[2].Proto != "" {
		t.Errorf("enrich = %+v", e)
	}
	if e.ASNDatabase != "" || e.CountryDatabase != "" {
		t.Errorf("databases configured: %q %q; the example keeps geoip commented out", e.ASNDatabase, e.CountryDatabase)
	}
	if len(e.Interfaces) != 2 || e.Interfaces[0].Name != "xe-0/0/0" || e.Interfaces[0].Speed != 10_000_000_000 || e.Interfaces[1].Alias != "core uplink" {
		t.Errorf("interfaces = %+v", e.Interfaces)
	}
	s := c.SNMP()
	if !s.Enabled() || s.Exporters[0].String() != "192.0.2.0/24" || s.Community != "public" || s.Version != "2c" ||
		s.Interval != 5*time.Minute || s.Timeout != 2*time.Second || s.Retries != 1 || s.Concurrency != 8 {
		t.Errorf("snmp = %+v", s)
	}

	// The commented-out geoip block is correct once uncommented.
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	asn, country := filepath.Join(dir, "asn.mmdb"), filepath.Join(dir, "country.mmdb")
	build := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if err := enrichtest.WriteASN(asn, build, enrichtest.ASN{Prefix: "198.51.100.0/24", Number: 64500, Org: "CDN"}); err != nil {
		t.Fatal(err)
	}
	if err := enrichtest.WriteCountry(country, build, enrichtest.Country{Prefix: "198.51.100.0/24", ISO: "FR"}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	uncommented := 0
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "  # "); ok && (strings.HasPrefix(rest, "geoip:") || strings.HasPrefix(rest, "  ")) {
			l = "  " + rest
			uncommented++
		}
		lines = append(lines, l)
	}
	text := strings.Join(lines, "\n")
	text = strings.Replace(text, "/var/lib/GeoIP/GeoLite2-ASN.mmdb", asn, 1)
	text = strings.Replace(text, "/var/lib/GeoIP/GeoLite2-Country.mmdb", country, 1)
	if uncommented != 4 {
		t.Fatalf("uncommented %d lines of the geoip block, want 4", uncommented)
	}
	c, err = parse([]byte(text), "examples") // as Load would for examples/flowmetrics.yml
	if err != nil {
		t.Fatalf("the example with geoip uncommented: %v", err)
	}
	if e := c.Core().Enrich; e.ASNDatabase != asn || e.CountryDatabase != country || c.Enrich.GeoIP.ReloadInterval != time.Minute {
		t.Errorf("geoip = %+v", c.Enrich.GeoIP)
	}
}

func TestLoadGoodEnrich(t *testing.T) {
	c, err := Load("testdata/good-enrich.yml")
	if err != nil {
		t.Fatal(err)
	}
	e := c.Core().Enrich
	var nets []string
	for _, n := range e.Networks {
		nets = append(nets, n.Prefix.String()+"="+n.Name+"/"+n.Tenant+"/"+n.Role)
	}
	want := []string{
		"10.0.0.0/8=corp//internal", "10.1.0.0/24=office/acme/internal", "198.51.100.0/24=partner, CDN//external",
		"10.1.0.0/24=office-lan/acme/", "2001:db8:1::/48=office-v6/acme/", "192.0.2.0/24=mapped//",
	}
	if strings.Join(nets, " ") != strings.Join(want, " ") {
		t.Errorf("networks (file first, inline after) = %v, want %v", nets, want)
	}
	if e.ClassifyDirection || e.EphemeralPortMin != 49152 || len(e.Services) != 1 || e.Services[0].Name != "admin" {
		t.Errorf("enrich = %+v", e)
	}
	if len(e.Interfaces) != 1 || e.Interfaces[0].Speed != 10_000_000_000 || e.Interfaces[0].Alias != "uplink" {
		t.Errorf("interfaces = %+v", e.Interfaces)
	}
	s := c.SNMP()
	if !s.Enabled() || s.Community != "s3cret" || s.Interval != time.Minute || s.Port != 161 || s.Version != "2c" || s.Concurrency != 8 {
		t.Errorf("snmp = %+v", s)
	}
	if d := Default(); !d.Enrich.ClassifyDirection || d.SNMP().Enabled() || d.Enrich.GeoIP.ReloadInterval != time.Minute {
		t.Errorf("default enrich = %+v", d.Enrich)
	}
}

// TestRelativePathsFollowTheConfigFile: files a configuration names are
// found next to it whatever the working directory, as with Prometheus;
// absolute paths stay as they are.
func TestRelativePathsFollowTheConfigFile(t *testing.T) {
	abs, err := filepath.Abs("testdata/good-enrich.yml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	c, err := Load(abs)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(abs), "networks.csv"); c.Enrich.NetworksFile != want {
		t.Errorf("networks_file = %q, want %q", c.Enrich.NetworksFile, want)
	}
	if _, err := Parse([]byte("enrich:\n  networks_file: " + filepath.Join(filepath.Dir(abs), "networks.csv") + "\n")); err != nil {
		t.Errorf("an absolute networks_file: %v", err)
	}
	if _, err := Parse([]byte("enrich:\n  networks_file: networks.csv\n")); err == nil {
		t.Error("Parse found networks.csv outside the working directory")
	}
}

// TestDecodeErrorsNameTheKey checks that yaml's type and unknown-field
// errors name the configuration key (as Validate's errors do), not only a
// line and a Go type, also for several keys on one line.
func TestDecodeErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"max_exporters: many\n", "line 1: max_exporters: cannot unmarshal !!str `many` into int"},
		{"series: {idle_timeout: 5m, frozen_hold: 10x}\n", "line 1: series.frozen_hold: cannot unmarshal !!str `10x` into time.Duration"},
		{"sampling:\n  default_rate: -5\n", "line 2: sampling.default_rate: cannot unmarshal !!int `-5` into uint32"},
		{"series:\n  idle: 1m\n", "line 2: series.idle: unknown key (known: idle_timeout, frozen_hold, admission_window, sketch_size, tombstones)"},
		{"families:\n  - {name: x, labels: [exporter], limit: 1}\n  - {name: y, labels: [exporter], limit: ten, hash: true}\n",
			"line 3: families[1].limit: cannot unmarshal !!str `ten` into int\n  line 3: families[1].hash: unknown key (known: name, labels, limit, ipv4_prefix_length, ipv6_prefix_length, hash_addresses)"},
		{"enrich:\n  interfaces:\n    - {exporter: 10.0.0.1, if_index: 1, nam: x}\n", "line 3: enrich.interfaces[0].nam: unknown key (known: exporter, if_index, name, alias, speed_bps)"},
		{"listen: :2055\n", "line 1: listen: cannot unmarshal !!str `:2055` into []string"},
		{"- a\n", "line 1: cannot unmarshal !!seq into config.Config"},
		// A mapping or sequence on the line a block opens with its first
		// key, or on the document's first line: the key's own value, not
		// the block (or the document) it opens.
		{"enrich:\n  snmp:\n    community: {a: 1}\n", "line 3: enrich.snmp.community: cannot unmarshal !!map into string"},
		{"series:\n  idle_timeout: [1]\n", "line 2: series.idle_timeout: cannot unmarshal !!seq into time.Duration"},
		{"families:\n  - name: [x]\n", "line 2: families[0].name: cannot unmarshal !!seq into string"},
		{"max_exporters: [1]\n", "line 1: max_exporters: cannot unmarshal !!seq into int"},
		{"listen: {a: [1]}\n", "line 1: listen: cannot unmarshal !!map into []string"},
		// The secrets are opaque strings, still strings to the user.
		{"max_exporters: 5\naddress_hash_key: [a]\n", "line 2: address_hash_key: cannot unmarshal !!seq into string"},
		{"enrich:\n  snmp:\n    port: 161\n    community: {a: 1}\n", "line 4: enrich.snmp.community: cannot unmarshal !!map into string"},
	} {
		_, err := Parse([]byte(tc.in))
		if want := "yaml: unmarshal errors:\n  " + tc.want; err == nil || err.Error() != want {
			t.Errorf("Parse(%q) error = %v\nwant %s", tc.in, err, want)
		}
	}
}

// TestSecondDocumentRefused: keys after a --- separator would otherwise be
// ignored without a word, an invalid value among them passing
// --config.check.
func TestSecondDocumentRefused(t *testing.T) {
	for _, in := range []string{
		"max_exporters: 5\n---\nmax_exporters: oops\n",
		"---\nmax_exporters: 5\n---\nseries: {idle_timeout: 1m}\n",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), "second YAML document") {
			t.Errorf("Parse(%q) error = %v, want a second document refused", in, err)
		}
	}
	for _, in := range []string{"---\nmax_exporters: 5\n", "max_exporters: 5\n...\n", "", "max_exporters: 5\n---\n", "max_exporters: 5\n---\n# nothing\n"} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%q) = %v, want one document accepted", in, err)
		}
	}
}

// TestMappedPrefixesMatchIPv4Exporters: exporters are tracked under their
// plain IPv4 address (a datagram reaching a dual-stack socket as
// ::ffff:192.0.2.7 counts as 192.0.2.7), so an IPv4-mapped CIDR in
// allowed_exporters, sampling.overrides or enrich.snmp.exporters must be read
// as the IPv4 prefix it covers, as enrich.networks reads one. Kept mapped,
// it never matched: every datagram of the exporters it was meant to allow
// was dropped as not_allowed, and the override or SNMP target was ignored.
func TestMappedPrefixesMatchIPv4Exporters(t *testing.T) {
	exporter := netip.MustParseAddr("192.0.2.7")
	for _, tc := range []struct {
		name, yaml string
		prefix     func(Config) netip.Prefix
	}{
		{"allowed_exporters", `allowed_exporters: ["::ffff:192.0.2.0/120"]`,
			func(c Config) netip.Prefix { return c.Intake().AllowedExporters[0] }},
		{"allowed_exporters address", `allowed_exporters: ["::ffff:192.0.2.7"]`,
			func(c Config) netip.Prefix { return c.Intake().AllowedExporters[0] }},
		{"sampling.overrides", "sampling:\n  overrides: [{exporter: \"::ffff:192.0.2.0/120\", rate: 100}]",
			func(c Config) netip.Prefix { return c.Core().Sampling.Overrides[0].Prefix }},
		{"enrich.snmp.exporters", "enrich:\n  snmp:\n    exporters: [\"::ffff:192.0.2.0/120\"]",
			func(c Config) netip.Prefix { return c.SNMP().Exporters[0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if p := tc.prefix(c); !p.Contains(exporter) {
				t.Errorf("prefix %s does not contain exporter %s", p, exporter)
			}
		})
	}
	c, err := Parse([]byte("sampling:\n  overrides: [{exporter: \"::ffff:192.0.2.0/120\", rate: 100}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sampling.New(c.Core().Sampling).Override(exporter); got != 100 {
		t.Errorf("override for %s = %d, want 100", exporter, got)
	}
}

// TestFractionalNumbersRefused: yaml.v3 truncates a float decoded into an
// integer without a word, so "sockets: 2.5" ran two sockets and
// "default_rate: 2.5" multiplied by 2. A fraction for an integer key is an
// error naming its line and key; a whole number in float notation is read.
func TestFractionalNumbersRefused(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sockets: 2.5\n", "line 1: sockets: 2.5 is not a whole number"},
		{"sampling:\n  default_rate: 2.5\n", "line 2: sampling.default_rate: 2.5 is not a whole number"},
		{"sampling:\n  overrides:\n    - {exporter: 192.0.2.7, rate: 99.9}\n", "line 3: sampling.overrides[0].rate: 99.9 is not a whole number"},
		{"families:\n  - {name: x, labels: [exporter], limit: 1e3}\n  - {name: y, labels: [exporter], limit: .5}\n", "line 3: families[1].limit: .5 is not a whole number"},
		{"series: &s {sketch_size: 10.1}\n", "line 1: series.sketch_size: 10.1 is not a whole number"},
		{"enrich:\n  interfaces:\n    - {exporter: 10.0.0.1, if_index: 1.5, name: x}\n", "line 3: enrich.interfaces[0].if_index: 1.5 is not a whole number"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) error = %v\nwant %s", tc.in, err, tc.want)
		}
	}
	c, err := Parse([]byte("receive_buffer_bytes: 3.2e7\nsockets: 2.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReceiveBufferBytes != 32000000 || c.Sockets != 2 {
		t.Errorf("receive_buffer_bytes = %d, sockets = %d; want 32000000, 2", c.ReceiveBufferBytes, c.Sockets)
	}
}

// TestInterfacesOfZonedExportersNotDuplicates: fe80::1 on two links is two
// exporters (the intake keeps the zone, and the static interface table is
// keyed by the zoned address), so the same if_index listed for
// fe80::1%eth0 and fe80::1%eth1 names two interfaces, not one twice.
func TestInterfacesOfZonedExportersNotDuplicates(t *testing.T) {
	c, err := Parse([]byte("enrich:\n  interfaces:\n" +
		"    - {exporter: \"fe80::1%eth0\", if_index: 3, name: a}\n" +
		"    - {exporter: \"fe80::1%eth1\", if_index: 3, name: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	itfs := c.Core().Enrich.Interfaces
	if len(itfs) != 2 || itfs[0].Exporter == itfs[1].Exporter {
		t.Errorf("interfaces %+v: want two, of two exporters", itfs)
	}
	// The same zone twice stays a duplicate.
	_, err = Parse([]byte("enrich:\n  interfaces:\n" +
		"    - {exporter: \"fe80::1%eth0\", if_index: 3, name: a}\n" +
		"    - {exporter: \"fe80::1%eth0\", if_index: 3, name: b}\n"))
	if want := "enrich.interfaces[1]: exporter fe80::1%eth0 if_index 3 is enrich.interfaces[0] again"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
