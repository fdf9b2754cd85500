package enrich

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/enrich/enrichtest"
)

// TestGeoCacheBounded: with more distinct database records than the cache
// holds, the cache never exceeds its bound and every lookup still returns
// its record's value (a full cache is emptied and refilled).
func TestGeoCacheBounded(t *testing.T) {
	defer func(n int) { maxCachedRecords = n }(maxCachedRecords)
	maxCachedRecords = 8 // 40 records below
	var asns []enrichtest.ASN
	for i := range 40 {
		asns = append(asns, enrichtest.ASN{Prefix: fmt.Sprintf("10.0.%d.0/24", i), Number: uint32(64500 + i), Org: fmt.Sprintf("org %d", i)})
	}
	path := filepath.Join(t.TempDir(), "asn.mmdb")
	if err := enrichtest.WriteASN(path, time.Now(), asns...); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGeoDB(path, ASNDatabase)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for i := range 40 {
			v, ok := g.lookup(netip.AddrFrom4([4]byte{10, 0, byte(i), 1}))
			if !ok || v.asn != uint32(64500+i) {
				t.Fatalf("round %d: 10.0.%d.1 -> %d, %v; want %d", round, i, v.asn, ok, 64500+i)
			}
			st := g.cur.Load()
			st.mu.RLock()
			n := len(st.cache)
			st.mu.RUnlock()
			if n > maxCachedRecords {
				t.Fatalf("cache holds %d records, bound %d", n, maxCachedRecords)
			}
		}
	}
}

func TestGeoAnswerPacking(t *testing.T) {
	tests := []struct {
		kind  DatabaseKind
		v     geoValue
		found bool
	}{
		{ASNDatabase, geoValue{asn: 64500}, true},
		{ASNDatabase, geoValue{asn: 0}, true},
		{ASNDatabase, geoValue{asn: 4294967294}, true},
		{ASNDatabase, geoValue{}, false},
		{CountryDatabase, geoValue{country: [2]byte{'F', 'R'}}, true},
		{CountryDatabase, geoValue{}, true}, // a record without a country
		{CountryDatabase, geoValue{}, false},
	}
	for _, tt := range tests {
		v, found := tt.kind.unpack(tt.kind.pack(tt.v, tt.found))
		if v != tt.v || found != tt.found {
			t.Errorf("%s %+v %v: round trip gives %+v %v", tt.kind, tt.v, tt.found, v, found)
		}
	}
}
