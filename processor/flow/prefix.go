package flow

import "net/netip"

// PrefixAddr returns an exporter's address as a configured prefix
// (allowed_exporters, sampling overrides, enrich.snmp.exporters) is matched
// against it: unmapped, and without the zone the intake gives a link-local
// exporter. The zone (fe80::1%eth0) keeps exporters on two links apart,
// but a prefix has none, and netip.Prefix.Contains is false for any zoned
// address.
func PrefixAddr(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }

// InPrefixes reports whether one of prefixes holds the exporter address a
// (matched as PrefixAddr says).
func InPrefixes(prefixes []netip.Prefix, a netip.Addr) bool {
	a = PrefixAddr(a)
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
