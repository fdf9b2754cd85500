package enrich_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/enrich/enrichtest"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

var build1 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// writeDBs writes an ASN and a country database into dir.
func writeDBs(t *testing.T, dir string) (asn, country string) {
	t.Helper()
	asn, country = filepath.Join(dir, "asn.mmdb"), filepath.Join(dir, "country.mmdb")
	if err := enrichtest.WriteASN(asn, build1,
		enrichtest.ASN{Prefix: "198.51.100.0/24", Number: 64500, Org: "Example Transit"},
		enrichtest.ASN{Prefix: "198.51.100.128/25", Number: 64501, Org: "Example Customer"},
		enrichtest.ASN{Prefix: "2001:db8:ffff::/48", Number: 64502, Org: "Example v6"},
		enrichtest.ASN{Prefix: "10.1.0.0/24", Number: 65001, Org: "Private"},
	); err != nil {
		t.Fatal(err)
	}
	if err := enrichtest.WriteCountry(country, build1,
		enrichtest.Country{Prefix: "198.51.100.0/24", ISO: "FR"},
		enrichtest.Country{Prefix: "2001:db8:ffff::/48", ISO: "JP"},
		enrichtest.Country{Prefix: "10.1.0.0/24", ISO: "DE"},
	); err != nil {
		t.Fatal(err)
	}
	return asn, country
}

func TestGeoIPLookups(t *testing.T) {
	asn, country := writeDBs(t, t.TempDir())
	e, err := enrich.New(enrich.Config{ASNDatabase: asn, CountryDatabase: country}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		src, dst         string
		srcAS, dstAS     uint32 // as carried by the record
		wantSrc, wantDst uint32
		wantSC, wantDC   string
	}{
		{"both from db", "10.1.0.1", "198.51.100.7", 0, 0, 65001, 64500, "DE", "FR"},
		{"more specific", "10.1.0.1", "198.51.100.200", 0, 0, 65001, 64501, "DE", "FR"},
		{"record's AS kept", "10.1.0.1", "198.51.100.7", 1, 2, 1, 2, "DE", "FR"},
		{"one side kept", "10.1.0.1", "198.51.100.7", 0, 2, 65001, 2, "DE", "FR"},
		{"ipv6", "2001:db8:1::1", "2001:db8:ffff::9", 0, 0, 0, 64502, "", "JP"},
		{"not found", "192.0.2.1", "203.0.113.1", 0, 0, 0, 0, "", ""},
		{"mapped", "::ffff:10.1.0.1", "::ffff:198.51.100.7", 0, 0, 65001, 64500, "DE", "FR"},
		{"AS_TRANS is no AS", "10.1.0.1", "198.51.100.7", 23456, 23456, 65001, 64500, "DE", "FR"},
		{"AS_TRANS, not found", "192.0.2.1", "198.51.100.7", 23456, 2, 23456, 2, "", "FR"},
	}
	// Twice: the first pass walks the databases, the second answers IPv4
	// addresses from the cache in front of them.
	for pass, tt := range append(tests, tests...) {
		t.Run(fmt.Sprintf("%s/pass%d", tt.name, pass/len(tests)+1), func(t *testing.T) {
			r := []flow.Record{{SrcAddr: netip.MustParseAddr(tt.src), DstAddr: netip.MustParseAddr(tt.dst), SrcAS: tt.srcAS, DstAS: tt.dstAS}}
			e.Apply(r)
			if r[0].SrcAS != tt.wantSrc || r[0].DstAS != tt.wantDst {
				t.Errorf("AS = %d, %d; want %d, %d", r[0].SrcAS, r[0].DstAS, tt.wantSrc, tt.wantDst)
			}
			if sc, dc := cc(r[0].SrcCountry), cc(r[0].DstCountry); sc != tt.wantSC || dc != tt.wantDC {
				t.Errorf("countries = %q, %q; want %q, %q", sc, dc, tt.wantSC, tt.wantDC)
			}
		})
	}
	for _, g := range e.Databases() {
		if st := g.Status(); !st.Loaded || !st.Build.Equal(build1) || st.Loads != 1 || st.Failures != 0 || st.LastError != nil {
			t.Errorf("%s status = %+v", g.Kind(), st)
		}
	}
}

func cc(c [2]byte) string {
	if c == ([2]byte{}) {
		return ""
	}
	return string(c[:])
}

// TestGeoIPReload replaces the file and checks Refresh swaps the new data
// in; a broken file keeps the previous version.
func TestGeoIPReload(t *testing.T) {
	dir := t.TempDir()
	asn, _ := writeDBs(t, dir)
	e, err := enrich.New(enrich.Config{ASNDatabase: asn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func() uint32 {
		r := []flow.Record{{SrcAddr: netip.MustParseAddr("198.51.100.7")}}
		e.Apply(r)
		return r[0].SrcAS
	}
	if got := lookup(); got != 64500 {
		t.Fatalf("before reload: %d", got)
	}
	if err := e.Refresh(); err != nil {
		t.Fatalf("unchanged refresh: %v", err)
	}
	build2 := build1.Add(time.Hour)
	if err := enrichtest.WriteASN(asn, build2, enrichtest.ASN{Prefix: "198.51.100.0/24", Number: 64999}); err != nil {
		t.Fatal(err)
	}
	// Make sure the modification time moves even on coarse clocks.
	_ = os.Chtimes(asn, time.Now().Add(time.Second), time.Now().Add(time.Second))
	if err := e.Refresh(); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got != 64999 {
		t.Errorf("after reload: %d, want 64999", got)
	}
	g := e.Databases()[0]
	if st := g.Status(); st.Loads != 2 || !st.Build.Equal(build2) {
		t.Errorf("status = %+v", st)
	}
	// A broken replacement keeps the loaded version.
	good, err := os.ReadFile(asn)
	if err != nil {
		t.Fatal(err)
	}
	goodInfo, err := os.Stat(asn)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(asn, []byte("not an mmdb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Refresh(); err == nil {
		t.Error("broken file refreshed without error")
	}
	if got := lookup(); got != 64999 {
		t.Errorf("after a failed reload: %d, want 64999", got)
	}
	if st := g.Status(); st.Failures != 1 || st.LastError == nil {
		t.Errorf("status = %+v", st)
	}
	// A new Enricher with the same path reuses the opened database.
	e2, _ := enrich.New(enrich.Config{ASNDatabase: asn}, e)
	if e2.Databases()[0] != g {
		t.Error("database reopened on reconfigure")
	}
	// The good file put back with its old time and size (mv back, cp -p,
	// rsync -a) is the version in use: nothing to load, and no error left.
	if err := os.WriteFile(asn, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(asn, goodInfo.ModTime(), goodInfo.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := e.Refresh(); err != nil {
		t.Fatalf("good file back: %v", err)
	}
	if st := g.Status(); st.Loads != 2 || st.LastError != nil {
		t.Errorf("good file back: loads %d, last error %v; want 2, none", st.Loads, st.LastError)
	}
}

func TestGeoIPMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.mmdb")
	e, err := enrich.New(enrich.Config{CountryDatabase: path}, nil)
	if err == nil {
		t.Fatal("missing database: no error")
	}
	r := []flow.Record{{SrcAddr: netip.MustParseAddr("10.1.0.1")}}
	e.Apply(r) // finds nothing, does not crash
	if r[0].SrcCountry != ([2]byte{}) {
		t.Errorf("country = %q", r[0].SrcCountry)
	}
	if err := enrichtest.WriteCountry(path, build1, enrichtest.Country{Prefix: "10.1.0.0/24", ISO: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Refresh(); err != nil {
		t.Fatal(err)
	}
	e.Apply(r)
	if cc(r[0].SrcCountry) != "DE" {
		t.Errorf("country after the file appeared = %q", r[0].SrcCountry)
	}
}
