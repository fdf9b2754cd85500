package enrich

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DatabaseKind tells what a GeoDB provides.
type DatabaseKind uint8

// Database kinds.
const (
	// ASNDatabase is a GeoLite2-ASN style database
	// (autonomous_system_number).
	ASNDatabase DatabaseKind = iota
	// CountryDatabase is a GeoLite2-Country or -City style database
	// (country.iso_code).
	CountryDatabase
)

// String returns the database label value.
func (k DatabaseKind) String() string {
	if k == ASNDatabase {
		return "asn"
	}
	return "country"
}

// maxCachedRecords bounds the decoded records kept per database (an ASN
// database has under 100,000 distinct records, a country one a few hundred).
// A City-style database can have more: when the cache is full it is emptied
// and refills with what traffic asks for, so memory stays bounded and the
// hot records stay cached; a lookup that misses decodes the record (about a
// microsecond and two allocations).
var maxCachedRecords = 1 << 18 // a variable for tests

// geoValue is a decoded database record.
type geoValue struct {
	asn     uint32
	country [2]byte
}

// geoState is one opened version of a database.
type geoState struct {
	reader  *maxminddb.Reader
	modTime time.Time
	size    int64
	build   time.Time

	mu    sync.RWMutex
	cache map[uintptr]geoValue

	// v4 caches answers for IPv4 addresses in front of the tree walk
	// (32 node reads, ~100 ns): direct-mapped, one atomic word per entry
	// holding address<<32 | packed answer, so concurrent readers and
	// writers need no lock and never see a torn entry. The zero entry
	// reads as "0.0.0.0 is not in the database", which is true.
	v4 [v4CacheSize]atomic.Uint64
}

// v4CacheSize is the number of IPv4 answers cached per database version
// (32 KiB).
const v4CacheSize = 4096

// v4Slot returns a's cache entry index.
func v4Slot(a uint32) uint32 { return (a * 0x9E3779B1) >> (32 - 12) }

// pack and unpack store an answer in 32 bits, 0 meaning "not found": the
// AS number plus one (AS 4294967295 is reserved, RFC 7300, and reads as not
// found), or a found bit and the country code.
func (k DatabaseKind) pack(v geoValue, found bool) uint32 {
	switch {
	case !found:
		return 0
	case k == ASNDatabase:
		return v.asn + 1
	}
	return 1<<16 | uint32(v.country[0])<<8 | uint32(v.country[1])
}

func (k DatabaseKind) unpack(x uint32) (geoValue, bool) {
	switch {
	case x == 0:
		return geoValue{}, false
	case k == ASNDatabase:
		return geoValue{asn: x - 1}, true
	}
	return geoValue{country: [2]byte{byte(x >> 8), byte(x)}}, true
}

// asnRecord and countryRecord are what is decoded from the data section.
type asnRecord struct {
	ASN uint32 `maxminddb:"autonomous_system_number"`
}

type countryRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
}

// GeoDB is an mmdb database that can be reopened when its file changes.
// Lookups are safe for concurrent use with Refresh.
type GeoDB struct {
	path string
	kind DatabaseKind
	cur  atomic.Pointer[geoState]

	mu      sync.Mutex // serialises Refresh
	loads   atomic.Uint64
	fails   atomic.Uint64
	lastErr atomic.Pointer[error]
}

// OpenGeoDB opens the database at path. It returns the GeoDB even when the
// file cannot be opened (lookups then find nothing and Refresh retries),
// together with the error.
func OpenGeoDB(path string, kind DatabaseKind) (*GeoDB, error) {
	g := &GeoDB{path: path, kind: kind}
	_, err := g.Refresh()
	return g, err
}

// CheckDatabase opens and closes the database at path, for configuration
// checks.
func CheckDatabase(path string) error {
	r, err := maxminddb.Open(path)
	if err != nil {
		return err
	}
	return r.Close()
}

// Path returns the database's file name.
func (g *GeoDB) Path() string { return g.path }

// Kind returns what the database provides.
func (g *GeoDB) Kind() DatabaseKind { return g.kind }

// Refresh reopens the file if its modification time or size changed since
// it was last opened (or it never was) and swaps the new version in. It
// reports whether a new version was loaded. On error the previous version
// stays in use.
func (g *GeoDB) Refresh() (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fi, err := os.Stat(g.path)
	if err != nil {
		return false, g.fail(err)
	}
	old := g.cur.Load()
	if old != nil && old.modTime.Equal(fi.ModTime()) && old.size == fi.Size() {
		// The file is the version in use (again, if a broken one was put
		// back with its old time and size, as mv, cp -p or rsync -a do).
		g.lastErr.Store(nil)
		return false, nil
	}
	// Read into memory rather than mmap: a file rewritten in place (cp,
	// not rename) must not change or fault the version in use.
	b, err := os.ReadFile(g.path)
	if err != nil {
		return false, g.fail(err)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return false, g.fail(fmt.Errorf("%s: %w", g.path, err))
	}
	if err := r.Verify(); err != nil {
		return false, g.fail(fmt.Errorf("%s: %w", g.path, err))
	}
	st := &geoState{reader: r, modTime: fi.ModTime(), size: fi.Size(), cache: map[uintptr]geoValue{},
		build: time.Unix(int64(r.Metadata.BuildEpoch), 0)}
	g.cur.Store(st)
	g.loads.Add(1)
	g.lastErr.Store(nil)
	// The old reader is not closed: lookups may still use it; the garbage
	// collector frees it once none does.
	return true, nil
}

func (g *GeoDB) fail(err error) error {
	g.fails.Add(1)
	g.lastErr.Store(&err)
	return err
}

// DatabaseStatus describes a database for the health metrics.
type DatabaseStatus struct {
	Kind DatabaseKind
	Path string
	// Loaded tells whether a version is in use; Build is its build time.
	Loaded bool
	Build  time.Time
	// Loads and Failures count (re)opens and failed attempts.
	Loads, Failures uint64
	// LastError is the last attempt's error, nil if it succeeded.
	LastError error
}

// Status returns the database's state.
func (g *GeoDB) Status() DatabaseStatus {
	s := DatabaseStatus{Kind: g.kind, Path: g.path, Loads: g.loads.Load(), Failures: g.fails.Load()}
	if st := g.cur.Load(); st != nil {
		s.Loaded, s.Build = true, st.build
	}
	if e := g.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// lookup returns the record for a, decoding it on its first sighting.
func (g *GeoDB) lookup(a netip.Addr) (geoValue, bool) {
	st := g.cur.Load()
	if st == nil || !a.IsValid() {
		return geoValue{}, false
	}
	a = a.Unmap()
	if !a.Is4() {
		return g.lookupTree(st, a)
	}
	b := a.As4()
	a4 := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	e := &st.v4[v4Slot(a4)]
	if x := e.Load(); uint32(x>>32) == a4 {
		return g.kind.unpack(uint32(x))
	}
	v, found := g.lookupTree(st, a)
	e.Store(uint64(a4)<<32 | uint64(g.kind.pack(v, found)))
	return v, found
}

// lookupTree walks the database's tree for a and decodes the record it
// finds (once per record: decoded records are cached by offset).
func (g *GeoDB) lookupTree(st *geoState, a netip.Addr) (geoValue, bool) {
	res := st.reader.Lookup(a)
	if !res.Found() {
		return geoValue{}, false
	}
	off := res.Offset()
	st.mu.RLock()
	v, ok := st.cache[off]
	st.mu.RUnlock()
	if ok {
		return v, true
	}
	switch g.kind {
	case ASNDatabase:
		var rec asnRecord
		if res.Decode(&rec) != nil {
			return geoValue{}, false
		}
		v.asn = rec.ASN
	case CountryDatabase:
		var rec countryRecord
		if res.Decode(&rec) != nil {
			return geoValue{}, false
		}
		if c := rec.Country.ISOCode; len(c) == 2 {
			v.country = [2]byte{c[0], c[1]}
		}
	}
	st.mu.Lock()
	if len(st.cache) >= maxCachedRecords {
		clear(st.cache)
	}
	st.cache[off] = v
	st.mu.Unlock()
	return v, true
}
