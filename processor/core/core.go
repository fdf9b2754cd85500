// Package core is the flow-to-metrics pipeline both packagings share: it
// takes batches of decoded records, corrects them for sampling, enriches
// them (processor/enrich) and folds them into the per-exporter totals and
// every configured family.
//
// It has no sockets and no exposition; receivers feed it, exporters read it.
package core

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/processor/sampling"
)

// TotalsFamily is the name of the built-in family that holds every
// exporter's totals. Its limit is max_exporters and it admits like every
// family: while more addresses than that have sent (a flood), a new
// exporter's totals go to exporter "other" until it displaces an idle entry
// (TestRealExporterAfterFlood). A series idle for series.idle_timeout is
// frozen, dropped after series.frozen_hold, and resumes from its tombstone
// when traffic comes back.
const TotalsFamily = "exporter"

// MaxRecordBytes bounds the corrected bytes of one record. A larger value is
// counted as implausible and dropped: a hostile or broken exporter must not
// wrap a counter.
const MaxRecordBytes = 1 << 50

// MaxRecordPackets bounds the corrected packets of one record likewise: no
// packet is shorter than a byte.
const MaxRecordPackets = MaxRecordBytes

// Config is what the core needs to run.
type Config struct {
	// Families are the metric families, in exposition order.
	Families []aggregate.Spec
	// Options tune series expiry and admission for every family.
	Options aggregate.Options
	// Sampling holds the default rate and overrides.
	Sampling sampling.Config
	// MaxExporters bounds the exporters tracked.
	MaxExporters int
	// Enrich configures enrichment (networks, databases, services,
	// interface names).
	Enrich enrich.Config
}

// Validate reports the first problem in c.
func (c Config) Validate() error {
	names := map[string]bool{TotalsFamily: true}
	for i, s := range c.Families {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("families[%d] (%s): %w", i, s.Name, err)
		}
		if names[s.Name] {
			return fmt.Errorf("families[%d].name: %q is used twice or reserved", i, s.Name)
		}
		names[s.Name] = true
	}
	if err := c.Sampling.Validate(); err != nil {
		return fmt.Errorf("sampling.%w", err)
	}
	if c.MaxExporters < 1 {
		return fmt.Errorf("max_exporters: must be at least 1, got %d", c.MaxExporters)
	}
	if err := c.Enrich.Validate(); err != nil {
		return fmt.Errorf("enrich.%w", err)
	}
	return nil
}

// Core is the running pipeline. It is safe for concurrent use; Reconfigure
// may run while records are processed.
type Core struct {
	exporters  *health.Table
	interfaces *enrich.Interfaces
	totals     *aggregate.Family
	state      atomic.Pointer[state]
	keyPool    sync.Pool // *processScratch for Process
}

// processScratch is what one Process call borrows from Core.keyPool.
type processScratch struct {
	keys     []aggregate.Key     // the batch's base keys
	families []*aggregate.Family // families still to update
}

// scratch returns scratch space with room for n keys from the pool; put it
// back when done.
func (c *Core) scratch(n int) *processScratch {
	p, _ := c.keyPool.Get().(*processScratch)
	if p == nil {
		p = new(processScratch)
	}
	if cap(p.keys) < n {
		p.keys = make([]aggregate.Key, n, max(n, 64))
	}
	p.keys = p.keys[:n]
	return p
}

// state is the part of the core a reload replaces, swapped atomically so the
// hot path reads it with one load per batch and no lock.
type state struct {
	corrector *sampling.Corrector
	enricher  *enrich.Enricher
	families  []*aggregate.Family
	options   aggregate.Options
}

// New builds a Core; cfg must be valid. A database of cfg.Enrich that cannot
// be opened does not stop it: lookups in that database find nothing until
// RefreshEnrichment (which reports the error) succeeds. Owners call
// RefreshEnrichment once after New to learn of such errors.
func New(cfg Config) *Core {
	c := &Core{exporters: health.NewTable(cfg.MaxExporters), interfaces: enrich.NewInterfaces()}
	cfg.Options.MaxOthers = cfg.MaxExporters
	c.totals = aggregate.NewFamily(aggregate.Spec{
		Name: TotalsFamily, Labels: []aggregate.Label{aggregate.LabelExporter}, Limit: cfg.MaxExporters,
	}, cfg.Options)
	en, _ := enrich.New(cfg.Enrich, nil)
	c.interfaces.SetStatic(cfg.Enrich.Interfaces)
	st := &state{corrector: sampling.New(cfg.Sampling), enricher: en, options: cfg.Options}
	for _, s := range cfg.Families {
		st.families = append(st.families, aggregate.NewFamily(s, cfg.Options))
	}
	c.state.Store(st)
	return c
}

// Reconfigure applies a new configuration to the running core: families
// whose spec did not change keep their series and counters (and take the new
// series options); changed or new families start empty; removed ones are
// dropped. The sampling settings are replaced. MaxExporters is fixed at New;
// changing it needs a restart. Enrichment is rebuilt from cfg.Enrich
// (databases whose path did not change stay open; RefreshEnrichment reports
// new ones that could not be opened). It reports the names of families
// that were (re)created.
func (c *Core) Reconfigure(cfg Config) (created []string) {
	cfg.Options.MaxOthers = c.totals.Options().MaxOthers
	old := c.state.Load()
	byName := map[string]*aggregate.Family{}
	for _, f := range old.families {
		byName[f.Spec().Name] = f
	}
	en, _ := enrich.New(cfg.Enrich, old.enricher)
	c.interfaces.SetStatic(cfg.Enrich.Interfaces)
	st := &state{corrector: sampling.New(cfg.Sampling), enricher: en, options: cfg.Options}
	for _, s := range cfg.Families {
		if f := byName[s.Name]; f != nil && f.SameSpec(s) {
			f.SetOptions(cfg.Options)
			st.families = append(st.families, f)
			continue
		}
		st.families = append(st.families, aggregate.NewFamily(s, cfg.Options))
		created = append(created, s.Name)
	}
	c.totals.SetOptions(cfg.Options)
	c.state.Store(st)
	return created
}

// Exporters returns the health table that decoders update.
func (c *Core) Exporters() *health.Table { return c.exporters }

// Interfaces returns the interface names, aliases and speeds (static, and
// what an SNMP poller stores).
func (c *Core) Interfaces() *enrich.Interfaces { return c.interfaces }

// Enricher returns the enrichment in force (a reload may replace it).
func (c *Core) Enricher() *enrich.Enricher { return c.state.Load().enricher }

// RefreshEnrichment reopens the enrichment databases whose files changed;
// the owner of the lifecycle calls it periodically.
func (c *Core) RefreshEnrichment() error { return c.state.Load().enricher.Refresh() }

// Totals returns the per-exporter totals family.
func (c *Core) Totals() *aggregate.Family { return c.totals }

// Families returns the configured families (a snapshot: a reload may
// replace them).
func (c *Core) Families() []*aggregate.Family { return c.state.Load().families }

// Process corrects a batch of records from one exporter and folds them in.
// recs is modified in place (scaled counts) and may be compacted when
// implausible records are dropped; the caller may reuse it afterwards.
func (c *Core) Process(ex *health.Exporter, recs []flow.Record, now time.Time) {
	if len(recs) == 0 {
		return
	}
	st := c.state.Load()
	override := st.corrector.Override(ex.Addr)
	kept := recs[:0]
	// Records are counted once per run of one protocol (a batch is one
	// exporter's, and nearly always of one protocol) rather than with an
	// atomic add per record.
	proto, run := recs[0].Protocol, uint64(0)
	for i := range recs {
		r := &recs[i]
		if !st.corrector.Apply(r, override) {
			ex.Unresolved.Add(1)
		}
		if r.ScaledBytes > MaxRecordBytes || r.ScaledPackets > MaxRecordPackets {
			ex.CountError(health.ReasonImplausible)
			continue
		}
		if r.Protocol != proto {
			ex.Records[proto].Add(run)
			proto, run = r.Protocol, 0
		}
		run++
		if n := len(kept); &recs[n] != r {
			recs[n] = *r
		}
		kept = kept[:len(kept)+1]
	}
	if run > 0 {
		ex.Records[proto].Add(run)
	}
	if len(kept) == 0 {
		return
	}
	last := &kept[len(kept)-1]
	ex.SamplingRate.Store(last.SamplingRate)
	ex.RateSource.Store(uint32(last.RateSource))
	ex.StatedRate.Store(last.StatedRate)
	st.enricher.Apply(kept)
	scratch := c.scratch(len(kept))
	base := scratch.keys
	for i := range kept {
		aggregate.SetBaseKey(&base[i], &kept[i])
	}
	// Each family folds the batch under its own lock. One that another
	// socket reader holds is skipped and come back to, so readers do not
	// queue behind each other family after family
	// (BenchmarkProcessParallel/shared).
	all := append(scratch.families[:0], c.totals)
	all = append(all, st.families...)
	eachOnce(all,
		func(f *aggregate.Family) bool { return f.TryAddKeyed(kept, base, now) },
		func(f *aggregate.Family) { f.AddKeyed(kept, base, now) })
	// The pooled scratch must not keep families a reload removed alive.
	clear(all)
	scratch.families = all[:0]
	c.keyPool.Put(scratch)
}

// eachOnce applies every element of todo once: try applies one unless it is
// busy (false), and the busy ones are tried again after the others; when all
// that remain are busy, wait applies the first of them, blocking. todo is
// used as scratch.
func eachOnce[T any](todo []T, try func(T) bool, wait func(T)) {
	for len(todo) > 0 {
		n := 0
		for _, x := range todo {
			if !try(x) {
				todo[n] = x
				n++
			}
		}
		if n == len(todo) {
			wait(todo[0])
			todo[0] = todo[n-1]
			n--
		}
		todo = todo[:n]
	}
}

// Maintain runs expiry and admission on every family.
func (c *Core) Maintain(now time.Time) {
	c.totals.Maintain(now)
	for _, f := range c.state.Load().families {
		f.Maintain(now)
	}
}
