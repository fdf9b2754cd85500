package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
	"github.com/flowmetrics/flowmetrics/processor/enrich/enrichtest"
	"github.com/flowmetrics/flowmetrics/receiver/snmp/snmptest"
)

// enrichNetworks is the networks file of the end-to-end test: the pcap's
// IPv4 sources split in two tenants' networks, its IPv6 sources in a third
// network, its IPv4 servers named but external.
const enrichNetworks = `# the test pcap's hosts
prefix,name,tenant,role
10.1.0.0/24,office,acme,internal
10.1.0.4/30,lab,globex,internal
2001:db8:1::/48,office-v6,acme,internal
198.51.100.0/24,servers,,external
`

// enrichExpect maps a pcap frame to the label values the test expects,
// computed independently of the product: prefix containment, the databases'
// contents and the service table as the test wrote them.
func enrichExpect(k testkit.FlowKey, direction string) (network, geo, service string) {
	srcNet, tenant := "unknown", "unknown"
	switch {
	case netip.MustParsePrefix("10.1.0.4/30").Contains(k.Src):
		srcNet, tenant = "lab", "globex"
	case netip.MustParsePrefix("10.1.0.0/24").Contains(k.Src):
		srcNet, tenant = "office", "acme"
	case netip.MustParsePrefix("2001:db8:1::/48").Contains(k.Src):
		srcNet, tenant = "office-v6", "acme"
	}
	dstNet, dstAS, dstCountry := "unknown", "0", "unknown"
	switch {
	case netip.MustParsePrefix("198.51.100.0/29").Contains(k.Dst):
		dstNet, dstAS, dstCountry = "servers", "64500", "FR"
	case netip.MustParsePrefix("198.51.100.8/29").Contains(k.Dst):
		dstNet, dstAS, dstCountry = "servers", "64501", "JP"
	case netip.MustParsePrefix("2001:db8:ffff::/48").Contains(k.Dst):
		dstAS, dstCountry = "64502", "DE"
	}
	srcAS := "0"
	if k.Src.Is4() {
		srcAS = "65001"
	}
	network = strings.Join([]string{srcNet, dstNet, tenant, direction}, "|")
	geo = strings.Join([]string{srcAS, dstAS, dstCountry}, "|")
	names := map[string]string{"6/443": "https", "6/80": "http", "17/53": "dns", "6/22": "ssh", "17/443": "quic", "17/123": "ntp"}
	service = "none"
	if k.Proto == 6 || k.Proto == 17 {
		service = names[fmt.Sprintf("%d/%d", k.Proto, k.DstPort)]
	}
	return network, geo, service
}

// writeEnrichFiles writes the networks file and the two databases and
// returns the configuration file using them.
func writeEnrichFiles(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	nets, asn, country := filepath.Join(dir, "networks.csv"), filepath.Join(dir, "asn.mmdb"), filepath.Join(dir, "country.mmdb")
	if err := os.WriteFile(nets, []byte(enrichNetworks), 0o644); err != nil {
		t.Fatal(err)
	}
	build := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if err := enrichtest.WriteASN(asn, build,
		enrichtest.ASN{Prefix: "198.51.100.0/29", Number: 64500, Org: "Transit A"},
		enrichtest.ASN{Prefix: "198.51.100.8/29", Number: 64501, Org: "Transit B"},
		enrichtest.ASN{Prefix: "2001:db8:ffff::/48", Number: 64502, Org: "V6 Net"},
		enrichtest.ASN{Prefix: "10.1.0.0/24", Number: 65001, Org: "Us"},
	); err != nil {
		t.Fatal(err)
	}
	if err := enrichtest.WriteCountry(country, build,
		enrichtest.Country{Prefix: "198.51.100.0/29", ISO: "FR"},
		enrichtest.Country{Prefix: "198.51.100.8/29", ISO: "JP"},
		enrichtest.Country{Prefix: "2001:db8:ffff::/48", ISO: "DE"},
	); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`enrich:
  networks_file: %q
  geoip:
    asn_database: %q
    country_database: %q
%s
families:
  - {name: network, labels: [exporter, src_net, dst_net, tenant, direction], limit: 100}
  - {name: geo, labels: [exporter, src_as, dst_as, dst_country], limit: 100}
  - {name: service, labels: [exporter, proto, service], limit: 100}
`, nets, asn, country, extra)
	path := filepath.Join(dir, "flowmetrics.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEnrichmentEndToEnd replays a pcap through softflowd into flowmetrics
// configured with a networks file and generated ASN and country databases,
// and checks every series of the network, geo and service families to the
// byte against the pcap's truth; static interface names appear as info and
// speed metrics. NetFlow v5 states no direction, so the networks classify
// it (every source is internal, no destination is: egress); softflowd's v9
// states ingress, which is kept. v9 adds the IPv6 flows.
func TestEnrichmentEndToEnd(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	for _, tc := range []struct {
		version   int
		direction string
	}{{5, "egress"}, {9, "ingress"}} {
		t.Run(fmt.Sprintf("v%d", tc.version), func(t *testing.T) {
			testEnrichment(t, tc.version, tc.direction)
		})
	}
}

func testEnrichment(t *testing.T, version int, direction string) {
	cfg := writeEnrichFiles(t, `  interfaces:
    - {exporter: 127.0.0.1, if_index: 0, name: pcap0, alias: "replayed pcap", speed_bps: 1000000000}`)
	pcap, truth := writePcap(t, testkit.Spec{Seed: 3, IPv6: version != 5})
	in := start(t, "--config.file="+cfg)
	if err := testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, version, 0); err != nil {
		t.Fatal(err)
	}
	mfs := in.settle(t, 1)
	assertHealthy(t, mfs)

	want := map[string]map[string]float64{"network": {}, "geo": {}, "service": {}}
	for _, f := range truth.Frames {
		n, g, s := enrichExpect(f.FlowKey, direction)
		want["network"][n] += float64(f.IPBytes)
		want["geo"][g] += float64(f.IPBytes)
		protoName := map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp"}[f.Proto]
		want["service"][protoName+"|"+s] += float64(f.IPBytes)
	}
	labels := map[string][]string{
		"network": {"src_net", "dst_net", "tenant", "direction"},
		"geo":     {"src_as", "dst_as", "dst_country"},
		"service": {"proto", "service"},
	}
	for fam, ls := range labels {
		got := map[string]float64{}
		for _, m := range mfs["flow_"+fam+"_bytes_total"].GetMetric() {
			l := testkit.Labels(m)
			var vals []string
			for _, n := range ls {
				vals = append(vals, l[n])
			}
			got[strings.Join(vals, "|")] += testkit.Value(m)
		}
		for k, w := range want[fam] {
			if got[k] != w {
				t.Errorf("flow_%s_bytes_total{%s=%s} = %v, want %v", fam, strings.Join(ls, ","), k, got[k], w)
			}
		}
		if len(got) != len(want[fam]) {
			t.Errorf("flow_%s_bytes_total has %d series, want %d:\ngot  %v\nwant %v", fam, len(got), len(want[fam]), got, want[fam])
		}
		if s := sum(mfs, "flow_"+fam+"_bytes_total", nil); s != float64(truth.Total.Bytes) {
			t.Errorf("flow_%s_bytes_total sums to %v, want %v", fam, s, truth.Total.Bytes)
		}
	}
	info := mfs["flowmetrics_interface_info"].GetMetric()
	if len(info) != 1 || testkit.Labels(info[0])["if_name"] != "pcap0" || testkit.Labels(info[0])["if_alias"] != "replayed pcap" ||
		testkit.Labels(info[0])["exporter"] != "127.0.0.1" || testkit.Labels(info[0])["if_index"] != "0" {
		t.Errorf("flowmetrics_interface_info = %v", info)
	}
	if got := sum(mfs, "flowmetrics_interface_speed_bits_per_second", map[string]string{"exporter": "127.0.0.1", "if_index": "0"}); got != 1e9 {
		t.Errorf("interface speed = %v", got)
	}
	for _, db := range []string{"asn", "country"} {
		if got := sum(mfs, "flowmetrics_geoip_database_loads_total", map[string]string{"database": db, "result": "success"}); got != 1 {
			t.Errorf("%s database loads = %v, want 1", db, got)
		}
	}
}

// TestSNMPInterfaceNames polls a real snmpd on 127.0.0.1 (the exporter
// softflowd sends from) and checks that the agent's interface names and
// speeds appear on /metrics, merged with a static alias.
func TestSNMPInterfaceNames(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	agent := snmptest.Start(t)
	cfg := filepath.Join(t.TempDir(), "flowmetrics.yml")
	body := fmt.Sprintf(`enrich:
  interfaces:
    - {exporter: 127.0.0.1, if_index: 1, alias: "loopback (static)"}
  snmp:
    exporters: [127.0.0.0/8]
    port: %d
    community: %s
    timeout: 1s
`, agent.Port, snmptest.Community)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	pcap, _ := writePcap(t, testkit.Spec{Seed: 4, Flows: 10, Packets: 100})
	in := start(t, "--config.file="+cfg)
	if err := testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, 9, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mfs := in.scrape(t)
		var lo map[string]string
		for _, m := range mfs["flowmetrics_interface_info"].GetMetric() {
			if l := testkit.Labels(m); l["exporter"] == "127.0.0.1" && l["if_index"] == "1" && l["if_name"] == "lo" {
				lo = l
			}
		}
		if lo != nil {
			if lo["if_alias"] != "loopback (static)" {
				t.Errorf("if_alias = %q", lo["if_alias"])
			}
			if got := sum(mfs, "flowmetrics_interface_speed_bits_per_second", map[string]string{"exporter": "127.0.0.1", "if_index": "1"}); got <= 0 {
				t.Errorf("lo speed = %v", got)
			}
			if got := sum(mfs, "flowmetrics_snmp_polls_total", map[string]string{"exporter": "127.0.0.1", "result": "success"}); got < 1 {
				t.Errorf("successful polls = %v", got)
			}
			if got := sum(mfs, "flowmetrics_snmp_interfaces", map[string]string{"exporter": "127.0.0.1"}); got < 1 {
				t.Errorf("polled interfaces = %v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no interface names from SNMP; info = %v", mfs["flowmetrics_interface_info"].GetMetric())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// seriesBy sums a metric's samples by the values of labels (joined by "|").
func seriesBy(mfs metricFamilies, name string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mfs[name].GetMetric() {
		l := testkit.Labels(m)
		vals := make([]string, len(labels))
		for i, n := range labels {
			vals[i] = l[n]
		}
		out[strings.Join(vals, "|")] += testkit.Value(m)
	}
	return out
}

// assertSeries compares got with want exactly, series by series.
func assertSeries(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s{%s} = %v, want %v", what, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s{%s} = %v, want no such series", what, k, g)
		}
	}
}

// geoVersion is one version of the test's ASN and country databases: the
// pcap's two server /29s and its client /24, mapped to AS numbers and
// countries. Other addresses are in neither database.
type geoVersion struct {
	build                          time.Time
	serversA, serversB, lan        enrichtest.ASN
	countryA, countryB, lanCountry string
}

var (
	geoV1 = geoVersion{
		build:    time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		serversA: enrichtest.ASN{Prefix: "198.51.100.0/29", Number: 64500, Org: "Transit A"},
		serversB: enrichtest.ASN{Prefix: "198.51.100.8/29", Number: 64501, Org: "Transit B"},
		lan:      enrichtest.ASN{Prefix: "10.1.0.0/24", Number: 65001, Org: "Us"},
		countryA: "FR", countryB: "JP", lanCountry: "US",
	}
	// geoV2 maps the same prefixes to other AS numbers and countries.
	geoV2 = geoVersion{
		build:    time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC),
		serversA: enrichtest.ASN{Prefix: "198.51.100.0/29", Number: 64510, Org: "Transit C, renumbered"},
		serversB: enrichtest.ASN{Prefix: "198.51.100.8/29", Number: 64511, Org: "Transit D, renumbered"},
		lan:      enrichtest.ASN{Prefix: "10.1.0.0/24", Number: 65002, Org: "Us, renumbered"},
		countryA: "NL", countryB: "BR", lanCountry: "CA",
	}
)

func (v geoVersion) write(t *testing.T, asnPath, countryPath string) {
	t.Helper()
	if err := enrichtest.WriteASN(asnPath, v.build, v.serversA, v.serversB, v.lan); err != nil {
		t.Fatal(err)
	}
	if err := enrichtest.WriteCountry(countryPath, v.build,
		enrichtest.Country{Prefix: v.serversA.Prefix, ISO: v.countryA},
		enrichtest.Country{Prefix: v.serversB.Prefix, ISO: v.countryB},
		enrichtest.Country{Prefix: v.lan.Prefix, ISO: v.lanCountry},
	); err != nil {
		t.Fatal(err)
	}
}

// labels returns "src_as|dst_as|src_country|dst_country" for a flow, from
// prefix containment in the version's own tables.
func (v geoVersion) labels(k testkit.FlowKey) string {
	look := func(a netip.Addr) (string, string) {
		for _, e := range []struct {
			asn     enrichtest.ASN
			country string
		}{{v.serversA, v.countryA}, {v.serversB, v.countryB}, {v.lan, v.lanCountry}} {
			if netip.MustParsePrefix(e.asn.Prefix).Contains(a) {
				return fmt.Sprint(e.asn.Number), e.country
			}
		}
		return "0", "unknown"
	}
	sa, sc := look(k.Src)
	da, dc := look(k.Dst)
	return strings.Join([]string{sa, da, sc, dc}, "|")
}

// TestGeoIPDatabaseReload runs the binary with generated ASN and country
// databases checked every second, replays a pcap through softflowd, then
// replaces both files (atomically, as geoipupdate does) with versions that
// map the same prefixes to other AS numbers and countries. Once the new
// build times are served, a second replay must land, byte for byte, under
// the new label values while the first replay's series keep exactly their
// totals. Then the ASN file is overwritten with garbage: the load failure
// is counted, the previous version stays in use, and a third replay lands
// under the same labels as the second.
func TestGeoIPDatabaseReload(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	dir := t.TempDir()
	asn, country := filepath.Join(dir, "asn.mmdb"), filepath.Join(dir, "country.mmdb")
	geoV1.write(t, asn, country)
	cfg := filepath.Join(dir, "flowmetrics.yml")
	writeFile(t, cfg, fmt.Sprintf(`enrich:
  geoip:
    asn_database: %q
    country_database: %q
    reload_interval: 1s
families:
  - {name: geo, labels: [exporter, src_as, dst_as, src_country, dst_country], limit: 100}
`, asn, country))
	pcap, truth := writePcap(t, testkit.Spec{Seed: 6})
	expect := func(v geoVersion, times float64) map[string]float64 {
		out := map[string]float64{}
		for _, f := range truth.Frames {
			out[v.labels(f.FlowKey)] += times * float64(f.IPBytes)
		}
		return out
	}
	merge := func(ms ...map[string]float64) map[string]float64 {
		out := map[string]float64{}
		for _, m := range ms {
			for k, v := range m {
				out[k] += v
			}
		}
		return out
	}
	in := start(t, "--config.file="+cfg)
	replay := func(n int) testkit.Metrics {
		t.Helper()
		mfs := replayPcap(t, in, pcap, n*len(truth.ByFlow))
		if got := sum(mfs, "flow_geo_bytes_total", nil); got != float64(n)*float64(truth.Total.Bytes) {
			t.Errorf("after replay %d: flow_geo_bytes_total sums to %v, want %v", n, got, float64(n)*float64(truth.Total.Bytes))
		}
		return mfs
	}
	geoLabels := []string{"src_as", "dst_as", "src_country", "dst_country"}

	mfs := replay(1)
	assertSeries(t, "v1: flow_geo_bytes_total", seriesBy(mfs, "flow_geo_bytes_total", geoLabels...), expect(geoV1, 1))
	if len(expect(geoV1, 1)) < 2 {
		t.Fatalf("the pcap covers too few database entries: %v", expect(geoV1, 1))
	}

	geoV2.write(t, asn, country)
	waitMetric(t, in, "the second database versions", func(mfs metricFamilies) bool {
		return sum(mfs, "flowmetrics_geoip_database_build_timestamp_seconds", map[string]string{"database": "asn"}) == float64(geoV2.build.Unix()) &&
			sum(mfs, "flowmetrics_geoip_database_build_timestamp_seconds", map[string]string{"database": "country"}) == float64(geoV2.build.Unix())
	})
	mfs = replay(2)
	for _, db := range []string{"asn", "country"} {
		if got := sum(mfs, "flowmetrics_geoip_database_loads_total", map[string]string{"database": db, "result": "success"}); got != 2 {
			t.Errorf("%s database loads = %v, want 2", db, got)
		}
	}
	assertSeries(t, "v1 then v2: flow_geo_bytes_total", seriesBy(mfs, "flow_geo_bytes_total", geoLabels...), merge(expect(geoV1, 1), expect(geoV2, 1)))

	for _, db := range []string{"asn", "country"} {
		if got := sum(mfs, "flowmetrics_geoip_database_last_load_successful", map[string]string{"database": db}); got != 1 {
			t.Errorf("%s database last load successful = %v, want 1", db, got)
		}
	}

	// A broken file is refused; the version in use stays.
	writeFile(t, asn, "this is not an mmdb file")
	waitMetric(t, in, "a failed load of the broken ASN database", func(mfs metricFamilies) bool {
		return sum(mfs, "flowmetrics_geoip_database_loads_total", map[string]string{"database": "asn", "result": "failure"}) >= 1
	})
	mfs = in.scrape(t)
	if asnOK, countryOK := sum(mfs, "flowmetrics_geoip_database_last_load_successful", map[string]string{"database": "asn"}),
		sum(mfs, "flowmetrics_geoip_database_last_load_successful", map[string]string{"database": "country"}); asnOK != 0 || countryOK != 1 {
		t.Errorf("last load successful: asn %v, country %v; want 0 and 1", asnOK, countryOK)
	}
	mfs = replay(3)
	if got := sum(mfs, "flowmetrics_geoip_database_build_timestamp_seconds", map[string]string{"database": "asn"}); got != float64(geoV2.build.Unix()) {
		t.Errorf("ASN database build time after a broken file = %v, want %v (kept)", got, geoV2.build.Unix())
	}
	assertSeries(t, "v1, v2, v2 (broken file): flow_geo_bytes_total", seriesBy(mfs, "flow_geo_bytes_total", geoLabels...), merge(expect(geoV1, 1), expect(geoV2, 2)))
}

// TestNetworksFileReload changes the networks file under a running binary:
// the office /24 is renamed and moves to another tenant, and the servers'
// first /29 becomes an internal network of its own. After SIGHUP a second
// replay lands, byte for byte, under the new names, tenant and the
// direction the new roles classify (NetFlow v5 states none), while the
// first replay's series keep their totals. A broken file is then refused
// by POST /-/reload and the names stay.
func TestNetworksFileReload(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	dir := t.TempDir()
	nets, cfg := filepath.Join(dir, "networks.csv"), filepath.Join(dir, "flowmetrics.yml")
	writeFile(t, nets, "prefix,name,tenant,role\n10.1.0.0/24,office,acme,internal\n198.51.100.0/24,servers,,external\n")
	writeFile(t, cfg, fmt.Sprintf(`enrich:
  networks_file: %q
families:
  - {name: network, labels: [exporter, src_net, dst_net, tenant, direction], limit: 100}
`, nets))
	pcap, truth := writePcap(t, testkit.Spec{Seed: 7})
	web := netip.MustParsePrefix("198.51.100.0/29")
	v1 := func(k testkit.FlowKey) string { return "office|servers|acme|egress" }
	v2 := func(k testkit.FlowKey) string {
		if web.Contains(k.Dst) {
			return "hq|web|initech|internal"
		}
		return "hq|servers|initech|egress"
	}
	expect := func(parts ...func(testkit.FlowKey) string) map[string]float64 {
		out := map[string]float64{}
		for _, label := range parts {
			for _, f := range truth.Frames {
				out[label(f.FlowKey)] += float64(f.IPBytes)
			}
		}
		return out
	}
	in := start(t, "--config.file="+cfg, "--web.enable-lifecycle")
	replay := func(n int) testkit.Metrics {
		t.Helper()
		return replayPcap(t, in, pcap, n*len(truth.ByFlow))
	}
	netLabels := []string{"src_net", "dst_net", "tenant", "direction"}

	mfs := replay(1)
	assertSeries(t, "v1: flow_network_bytes_total", seriesBy(mfs, "flow_network_bytes_total", netLabels...), expect(v1))
	loaded := sum(mfs, "flowmetrics_config_last_reload_success_timestamp_seconds", nil)

	writeFile(t, nets, "# renamed\nprefix,name,tenant,role\n10.1.0.0/24,hq,initech,internal\n198.51.100.0/24,servers,,external\n198.51.100.0/29,web,,internal\n")
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, in, "the reload", func(mfs metricFamilies) bool {
		return sum(mfs, "flowmetrics_config_last_reload_success_timestamp_seconds", nil) > loaded
	})
	mfs = replay(2)
	want := expect(v1, v2)
	if len(want) != 3 {
		t.Fatalf("the pcap does not reach both server halves: %v", want)
	}
	assertSeries(t, "v1 then v2: flow_network_bytes_total", seriesBy(mfs, "flow_network_bytes_total", netLabels...), want)

	// A broken networks file is refused: the reload fails, names stay.
	writeFile(t, nets, "prefix,name\n10.1.0.0/33,broken\n")
	resp, err := http.Post(in.web+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("reload with a broken networks file: status %d, want 500", resp.StatusCode)
	}
	mfs = replay(3)
	if got := sum(mfs, "flowmetrics_config_last_reload_successful", nil); got != 0 {
		t.Errorf("last_reload_successful = %v after a refused networks file", got)
	}
	assertSeries(t, "v1, v2, v2 (broken file): flow_network_bytes_total", seriesBy(mfs, "flow_network_bytes_total", netLabels...), expect(v1, v2, v2))
	if !strings.Contains(in.log.String(), "enrich.networks_file") {
		t.Errorf("the log does not name enrich.networks_file:\n%s", in.log)
	}
}

// replayPcap has softflowd (NetFlow v5) replay pcap into in once more, waits
// until in has counted records flows in all, checks its health and returns
// the scrape.
func replayPcap(t *testing.T, in *instance, pcap string, records int) testkit.Metrics {
	t.Helper()
	if err := testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, 5, 0); err != nil {
		t.Fatal(err)
	}
	mfs := in.settle(t, float64(records))
	assertHealthy(t, mfs)
	return mfs
}
