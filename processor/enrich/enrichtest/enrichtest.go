// Package enrichtest writes small MaxMind-format databases for tests, so no
// test downloads a real one.
package enrichtest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// ASN maps a prefix to an AS number and organisation.
type ASN struct {
	Prefix string
	Number uint32
	Org    string
}

// Country maps a prefix to an ISO 3166-1 alpha-2 code.
type Country struct {
	Prefix string
	ISO    string
}

// WriteASN writes a GeoLite2-ASN style database to path, atomically (a
// temporary file renamed over it), built at build.
func WriteASN(path string, build time.Time, entries ...ASN) error {
	t, err := newTree("GeoLite2-ASN", build)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := insert(t, e.Prefix, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(e.Number),
			"autonomous_system_organization": mmdbtype.String(e.Org),
		}); err != nil {
			return err
		}
	}
	return write(t, path)
}

// WriteCountry writes a GeoLite2-Country style database to path, atomically,
// built at build.
func WriteCountry(path string, build time.Time, entries ...Country) error {
	t, err := newTree("GeoLite2-Country", build)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := insert(t, e.Prefix, mmdbtype.Map{
			"country": mmdbtype.Map{
				"iso_code": mmdbtype.String(e.ISO),
				"names":    mmdbtype.Map{"en": mmdbtype.String("Country " + e.ISO)},
			},
		}); err != nil {
			return err
		}
	}
	return write(t, path)
}

func newTree(typ string, build time.Time) (*mmdbwriter.Tree, error) {
	return mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            typ,
		Description:             map[string]string{"en": "flowmetrics test " + typ},
		BuildEpoch:              build.Unix(),
		IncludeReservedNetworks: true, // tests use documentation and private ranges
		RecordSize:              24,
	})
}

func insert(t *mmdbwriter.Tree, prefix string, v mmdbtype.DataType) error {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return err
	}
	p = p.Masked()
	n := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	if err := t.Insert(n, v); err != nil {
		return fmt.Errorf("inserting %s: %w", prefix, err)
	}
	return nil
}

func write(t *mmdbwriter.Tree, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".mmdb-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := t.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
