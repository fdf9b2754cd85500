package enrich

import (
	"errors"
	"fmt"
	"slices"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// Config is what enrichment needs. The zero value names services with the
// built-in table only (no ephemeral grouping); config.Default sets
// EphemeralPortMin.
type Config struct {
	// Interfaces are static interface names, aliases and speeds.
	Interfaces []Interface
	// Networks map prefixes to names, tenants and roles; the most specific
	// prefix wins. A prefix listed twice keeps its last entry (the
	// configuration puts the networks file first, inline entries after).
	Networks []Network
	// ClassifyDirection sets the direction of records whose exporter did
	// not state one, from the networks' roles.
	ClassifyDirection bool
	// ASNDatabase and CountryDatabase are mmdb files; empty disables.
	ASNDatabase, CountryDatabase string
	// Services add to (and override) the built-in port names.
	Services []ServiceName
	// EphemeralPortMin starts the ephemeral port range grouped as
	// "ephemeral"; 0 disables the grouping.
	EphemeralPortMin uint16
}

// Validate reports the first problem in c, naming the field as the
// configuration file does (without the "enrich." prefix). It does not open
// the databases.
func (c Config) Validate() error {
	for i, itf := range c.Interfaces {
		if err := itf.Validate(); err != nil {
			return fmt.Errorf("interfaces[%d].%w", i, err)
		}
	}
	for i, n := range c.Networks {
		if err := n.Validate(); err != nil {
			return fmt.Errorf("networks[%d].%w", i, err)
		}
	}
	for i, s := range c.Services {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("services[%d].%w", i, err)
		}
	}
	if ok, added := flow.InternRoom(c.symbolNames()); !ok {
		return fmt.Errorf("networks: %d new network, tenant and service names would pass the limit of %d distinct names kept since start (names are never forgotten, so that series keep theirs); restart flowmetrics, or give networks shared names instead of one per prefix", added, flow.MaxSymbols)
	}
	return nil
}

// symbolNames lists the strings New interns for c.
func (c Config) symbolNames() []string {
	names := []string{EphemeralService}
	for _, n := range c.Networks {
		name := n.Name
		if name == "" {
			name = UnmapPrefix(n.Prefix).String()
		}
		names = append(names, name, n.Tenant)
	}
	for _, s := range c.Services {
		names = append(names, s.Name)
	}
	return names
}

// Equal reports whether c and o configure the same enrichment.
func (c Config) Equal(o Config) bool {
	return slices.Equal(c.Interfaces, o.Interfaces) && slices.Equal(c.Networks, o.Networks) &&
		c.ClassifyDirection == o.ClassifyDirection && c.ASNDatabase == o.ASNDatabase &&
		c.CountryDatabase == o.CountryDatabase && slices.Equal(c.Services, o.Services) &&
		c.EphemeralPortMin == o.EphemeralPortMin
}

// asTrans is AS_TRANS (RFC 6793): what a 16-bit AS field (NetFlow v5, a
// v9 template with 2-byte AS fields) carries for a 4-byte AS number. It
// names no AS, so the database is asked as if the flow had none.
const asTrans = 23456

// Enricher applies one configuration's enrichment to records. It is
// immutable apart from the databases it holds, which Refresh may swap; it is
// safe for concurrent use.
type Enricher struct {
	cfg      Config
	nets     *networkTable
	classify bool
	svc      *serviceTable
	asn      *GeoDB
	country  *GeoDB
}

// New builds an Enricher; cfg must be valid. Databases that prev already
// opened from the same path are reused, others are opened now; the errors
// of those that could not be opened are returned (joined) beside a usable
// Enricher whose lookups in them find nothing until Refresh succeeds.
func New(cfg Config, prev *Enricher) (*Enricher, error) {
	e := &Enricher{cfg: cfg, nets: newNetworkTable(cfg.Networks), svc: newServiceTable(cfg.Services, cfg.EphemeralPortMin)}
	e.classify = cfg.ClassifyDirection && e.nets != nil
	var errs []error
	open := func(path string, kind DatabaseKind, old *GeoDB) *GeoDB {
		if path == "" {
			return nil
		}
		if old != nil && old.path == path {
			return old
		}
		g, err := OpenGeoDB(path, kind)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s database: %w", kind, err))
		}
		return g
	}
	var pa, pc *GeoDB
	if prev != nil {
		pa, pc = prev.asn, prev.country
	}
	e.asn = open(cfg.ASNDatabase, ASNDatabase, pa)
	e.country = open(cfg.CountryDatabase, CountryDatabase, pc)
	return e, errors.Join(errs...)
}

// Config returns the configuration the Enricher was built from.
func (e *Enricher) Config() Config { return e.cfg }

// Databases returns the mmdb databases in use.
func (e *Enricher) Databases() []*GeoDB {
	var out []*GeoDB
	for _, g := range []*GeoDB{e.asn, e.country} {
		if g != nil {
			out = append(out, g)
		}
	}
	return out
}

// Refresh reopens the databases whose files changed; the owner of the
// lifecycle calls it periodically. It returns the errors of those that
// could not be reopened (the previous versions stay in use).
func (e *Enricher) Refresh() error {
	var errs []error
	for _, g := range e.Databases() {
		if _, err := g.Refresh(); err != nil {
			errs = append(errs, fmt.Errorf("%s database: %w", g.kind, err))
		}
	}
	return errors.Join(errs...)
}

// Apply enriches a batch in place: service, networks and tenant, direction
// (when the exporter stated none), AS numbers (when the record carries
// none) and countries. It does not allocate, except the first time a
// database record is seen.
func (e *Enricher) Apply(recs []flow.Record) {
	for i := range recs {
		e.apply(&recs[i])
	}
}

func (e *Enricher) apply(r *flow.Record) {
	r.Service = e.svc.classify(r.Proto, r.SrcPort, r.DstPort)
	r.SrcNet, r.DstNet, r.Tenant = 0, 0, 0
	r.SrcCountry, r.DstCountry = [2]byte{}, [2]byte{}
	if e.nets != nil {
		s, d := e.nets.lookup(r.SrcAddr), e.nets.lookup(r.DstAddr)
		srcIn, dstIn := false, false
		if s != nil {
			r.SrcNet, r.Tenant, srcIn = s.name, s.tenant, s.internal
		}
		if d != nil {
			r.DstNet, dstIn = d.name, d.internal
			if r.Tenant == 0 {
				r.Tenant = d.tenant
			}
		}
		if e.classify && r.Direction == flow.DirectionUnknown {
			switch {
			case srcIn && dstIn:
				r.Direction = flow.DirectionInternal
			case dstIn:
				r.Direction = flow.DirectionIngress
			case srcIn:
				r.Direction = flow.DirectionEgress
			}
		}
	}
	if e.asn != nil {
		if r.SrcAS == 0 || r.SrcAS == asTrans {
			if v, ok := e.asn.lookup(r.SrcAddr); ok {
				r.SrcAS = v.asn
			}
		}
		if r.DstAS == 0 || r.DstAS == asTrans {
			if v, ok := e.asn.lookup(r.DstAddr); ok {
				r.DstAS = v.asn
			}
		}
	}
	if e.country != nil {
		if v, ok := e.country.lookup(r.SrcAddr); ok {
			r.SrcCountry = v.country
		}
		if v, ok := e.country.lookup(r.DstAddr); ok {
			r.DstCountry = v.country
		}
	}
}
