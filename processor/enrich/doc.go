// Package enrich adds names to flow records: networks (longest-prefix match
// over configured CIDRs, with a tenant and a role), direction classification
// from those networks, AS numbers and countries from MaxMind-format (mmdb)
// databases, and service names for well-known ports. It also keeps the
// per-exporter interface names, aliases and speeds (static or polled over
// SNMP by receiver/snmp) that the exposition publishes as info metrics.
//
// The choices, all for the hot path (Enricher.Apply, once per record, after
// sampling correction and before the families):
//
//   - Records carry ids, not strings: flow.Symbol for names (a process-wide,
//     append-only intern table, so an id means the same after a reload) and
//     [2]byte for countries. Label strings are made once per series, when a
//     family admits it.
//   - Networks are flattened at build time into disjoint, sorted address
//     ranges, each naming its most specific prefix; a lookup is one binary
//     search over 128-bit bounds, no allocation, whatever the nesting.
//   - Services are two 64 Ki-entry arrays (TCP/SCTP, UDP) indexed by port.
//   - mmdb lookups walk the database's search tree (no allocation); the
//     record found is decoded once per data offset and cached, so only the
//     first sighting of an AS or country allocates. Databases are read
//     into memory (not mmapped), so a file rewritten in place cannot
//     change the version in use; a changed file (modification time or
//     size) is reopened by Refresh, verified, and swapped in atomically.
//
// Everything built from configuration is immutable; a reload builds a new
// Enricher (reusing the opened databases whose path did not change) and
// the core swaps it in with the rest of its state. The package does no
// network I/O; it reads the networks file and the databases from disk.
package enrich
