// Package snmp polls exporters' IF-MIB over SNMP v1/v2c for interface names
// (ifName, falling back to ifDescr), descriptions (ifAlias) and speeds
// (ifHighSpeed, else ifSpeed), and stores them in the core's
// enrich.Interfaces, from which both packagings publish
// flowmetrics_interface_info and flowmetrics_interface_speed_bits_per_second.
//
// The Poller is owned by whoever owns the lifecycle (the standalone app, the
// Collector receiver's Start/Shutdown): Start runs one goroutine, Stop ends
// it and waits for it and the polls in flight. Only exporters that have sent
// flows and match the configured prefixes are polled, each every Interval,
// up to Concurrency of them at once, so an agent that does not answer holds
// one slot for its timeout instead of delaying every other exporter; the
// longest overdue exporters go first. A failed poll keeps what the last good
// one returned and is retried after a minute (or Interval, if shorter). An
// exporter the ExporterSource no longer lists is forgotten, with what it
// returned, so the SNMP state is bounded by the exporters tracked
// (max_exporters) whatever the sources. Names and aliases are stored as
// valid UTF-8 of bounded length (enrich.CleanText).
package snmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// IF-MIB columns.
const (
	oidIfDescr     = ".1.3.6.1.2.1.2.2.1.2"
	oidIfSpeed     = ".1.3.6.1.2.1.2.2.1.5"
	oidIfName      = ".1.3.6.1.2.1.31.1.1.1.1"
	oidIfHighSpeed = ".1.3.6.1.2.1.31.1.1.1.15"
	oidIfAlias     = ".1.3.6.1.2.1.31.1.1.1.18"
)

// Config configures the poller.
type Config struct {
	// Exporters are the prefixes of exporters to poll; empty disables.
	Exporters []netip.Prefix
	// Port is the agents' UDP port.
	Port int
	// Community is the v1/v2c community.
	Community string
	// Version is "1" or "2c".
	Version string
	// Interval is how often each exporter is polled.
	Interval time.Duration
	// Timeout bounds one request; Retries is the number of retries.
	Timeout time.Duration
	Retries int
	// Concurrency is how many exporters are polled at once.
	Concurrency int
}

// DefaultConcurrency is the number of exporters polled at once unless
// configured otherwise.
const DefaultConcurrency = 8

// MaxConcurrency bounds Concurrency.
const MaxConcurrency = 256

// Validate reports the first problem, naming the key as the configuration
// file does (without the "enrich.snmp." prefix).
func (c Config) Validate() error {
	switch {
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("port: must be 1..65535, got %d", c.Port)
	case c.Version != "1" && c.Version != "2c":
		return fmt.Errorf("version: must be \"1\" or \"2c\", got %q", c.Version)
	case c.Community == "":
		return errors.New("community: must not be empty")
	case c.Interval <= 0:
		return fmt.Errorf("interval: must be positive, got %s", c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout: must be positive, got %s", c.Timeout)
	case c.Retries < 0:
		return fmt.Errorf("retries: must not be negative, got %d", c.Retries)
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return fmt.Errorf("concurrency: must be 1..%d, got %d", MaxConcurrency, c.Concurrency)
	}
	return nil
}

// Enabled tells whether any exporter is to be polled.
func (c Config) Enabled() bool { return len(c.Exporters) > 0 }

// wants reports whether exporter a is to be polled (matched as
// flow.PrefixAddr says: a link-local exporter's zone is not part of the
// match; the poll itself keeps the zone).
func (c Config) wants(a netip.Addr) bool { return flow.InPrefixes(c.Exporters, a) }

// ExporterSource lists the exporters that have sent flows;
// *health.Table's addresses, typically.
type ExporterSource func() []netip.Addr

// Poller polls exporters and stores what they return.
type Poller struct {
	logger    *slog.Logger
	store     *enrich.Interfaces
	exporters ExporterSource

	mu       sync.Mutex
	cfg      Config
	gen      uint64                   // bumped by SetConfig; results of older polls are dropped
	next     map[netip.Addr]time.Time // next poll per exporter
	inflight map[netip.Addr]bool      // exporters being polled now

	cancel context.CancelFunc
	done   chan struct{}
	polls  sync.WaitGroup // polls in flight
}

// New returns a poller writing into store; cfg must be valid.
func New(cfg Config, store *enrich.Interfaces, exporters ExporterSource, logger *slog.Logger) *Poller {
	return &Poller{cfg: cfg, store: store, exporters: exporters, logger: logger,
		next: map[netip.Addr]time.Time{}, inflight: map[netip.Addr]bool{}}
}

// SetConfig replaces the configuration (on reload); exporters no longer
// matched are forgotten, the others are polled again soon. Polls in flight
// finish, but their results are dropped.
func (p *Poller) SetConfig(cfg Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.store.Retain(cfg.wants)
	p.cfg = cfg
	p.gen++
	p.next = map[netip.Addr]time.Time{}
}

// checkEvery is how often the poller looks for exporters due.
const checkEvery = time.Second

// Start runs the polling goroutine until Stop.
func (p *Poller) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(checkEvery)
		defer t.Stop()
		for {
			p.startDue(ctx, time.Now())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the polling goroutine, cancels the polls in flight and waits
// for them.
func (p *Poller) Stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
		p.polls.Wait()
	}
}

// startDue starts a poll of every wanted exporter whose time has come and
// that is not being polled already, the longest overdue first, as long as
// fewer than cfg.Concurrency polls are in flight. It does not wait for them.
func (p *Poller) startDue(ctx context.Context, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg, gen := p.cfg, p.gen
	if !cfg.Enabled() || ctx.Err() != nil {
		return
	}
	limit := cfg.Concurrency
	if limit < 1 {
		limit = DefaultConcurrency
	}
	var due []netip.Addr
	seen := map[netip.Addr]bool{} // an address can be several exporters (observation domains)
	for _, a := range p.exporters() {
		a = a.Unmap()
		if seen[a] || !cfg.wants(a) {
			continue
		}
		seen[a] = true
		next, ok := p.next[a]
		if !ok {
			p.next[a] = time.Time{} // tracked from now on; due at once
		}
		if !p.inflight[a] && !now.Before(next) {
			due = append(due, a)
		}
	}
	// Exporters the source no longer lists (the health table forgot them,
	// bounded by max_exporters) are forgotten here too, with what they
	// returned, so that spoofed or churning sources cannot grow the SNMP
	// state. A poll of one in flight finishes and its result is dropped.
	for a := range p.next {
		if !seen[a] {
			delete(p.next, a)
		}
	}
	p.store.Retain(func(a netip.Addr) bool { return seen[a] })
	// Never polled (zero time) first, then by how long overdue; exporters
	// equally due keep the source's order.
	slices.SortStableFunc(due, func(x, y netip.Addr) int { return p.next[x].Compare(p.next[y]) })
	for _, a := range due {
		if len(p.inflight) >= limit {
			return
		}
		p.inflight[a] = true
		p.polls.Add(1)
		go p.poll(ctx, cfg, gen, a)
	}
}

// poll polls one exporter and stores the outcome, unless the configuration
// changed meanwhile.
func (p *Poller) poll(ctx context.Context, cfg Config, gen uint64, a netip.Addr) {
	defer p.polls.Done()
	ifs, err := Poll(ctx, cfg, a)
	now := time.Now()
	p.mu.Lock()
	delete(p.inflight, a)
	_, tracked := p.next[a] // not if forgotten meanwhile
	current := gen == p.gen && ctx.Err() == nil && tracked
	if current {
		if err != nil {
			p.store.PollFailed(a)
			p.next[a] = now.Add(min(cfg.Interval, time.Minute))
		} else {
			p.store.SetPolled(a, ifs, now)
			p.next[a] = now.Add(cfg.Interval)
		}
	}
	p.mu.Unlock()
	switch {
	case !current:
		// Reconfigured, forgotten or stopping: the result was stale and
		// is dropped.
	case err != nil:
		p.logger.Warn("SNMP poll failed", "exporter", a, "err", err)
	default:
		p.logger.Debug("SNMP poll", "exporter", a, "interfaces", len(ifs))
	}
}

// Poll walks the IF-MIB of the agent at addr (port from cfg) once.
func Poll(ctx context.Context, cfg Config, addr netip.Addr) ([]enrich.Interface, error) {
	g := &gosnmp.GoSNMP{
		Target: addr.Unmap().String(), Port: uint16(cfg.Port), Community: cfg.Community,
		Version: gosnmp.Version2c, Timeout: cfg.Timeout, Retries: cfg.Retries,
		MaxOids: gosnmp.MaxOids, MaxRepetitions: maxRepetitions, Context: ctx,
	}
	if cfg.Version == "1" {
		g.Version = gosnmp.Version1
	}
	if err := g.Connect(); err != nil {
		return nil, err
	}
	defer g.Conn.Close()
	// gosnmp looks at its Context only between attempts: a request in
	// flight waits out cfg.Timeout. Closing the socket on cancel ends the
	// wait, so Stop (a Collector shutdown or reload) does not.
	defer context.AfterFunc(ctx, func() { g.Conn.Close() })()
	byIndex := map[uint32]*enrich.Interface{}
	get := func(idx uint32) *enrich.Interface {
		i := byIndex[idx]
		if i == nil {
			if len(byIndex) >= enrich.MaxPolledInterfaces {
				return &enrich.Interface{}
			}
			i = &enrich.Interface{Exporter: addr.Unmap(), Index: idx}
			byIndex[idx] = i
		}
		return i
	}
	highSpeed := map[uint32]uint64{}
	walk := func(oid string, each func(idx uint32, pdu gosnmp.SnmpPDU)) error {
		return walkColumn(g, oid, each)
	}
	// ifDescr first: it names interfaces of agents without IF-MIB's
	// ifXTable, and ifName overrides it where present.
	if err := walk(oidIfDescr, func(idx uint32, pdu gosnmp.SnmpPDU) { get(idx).Name = str(pdu) }); err != nil {
		return nil, fmt.Errorf("walking ifDescr: %w", err)
	}
	steps := []struct {
		oid  string
		each func(uint32, gosnmp.SnmpPDU)
	}{
		{oidIfSpeed, func(idx uint32, pdu gosnmp.SnmpPDU) { get(idx).Speed = gosnmp.ToBigInt(pdu.Value).Uint64() }},
		{oidIfName, func(idx uint32, pdu gosnmp.SnmpPDU) {
			if s := str(pdu); s != "" {
				get(idx).Name = s
			}
		}},
		{oidIfAlias, func(idx uint32, pdu gosnmp.SnmpPDU) { get(idx).Alias = str(pdu) }},
		{oidIfHighSpeed, func(idx uint32, pdu gosnmp.SnmpPDU) { highSpeed[idx] = gosnmp.ToBigInt(pdu.Value).Uint64() }},
	}
	for _, s := range steps {
		if err := walk(s.oid, s.each); err != nil {
			return nil, fmt.Errorf("walking %s: %w", s.oid, err)
		}
	}
	out := make([]enrich.Interface, 0, len(byIndex))
	for idx, i := range byIndex {
		i.Speed = speed(i.Speed, highSpeed[idx])
		out = append(out, *i)
	}
	return out, nil
}

// speed is an interface's speed in bits/s from its ifSpeed (bits/s) and
// ifHighSpeed (Mb/s), 0 when unknown. ifSpeed is exact below its ceiling of
// 2^32-1; an interface at least that fast reports the ceiling and states
// its speed in ifHighSpeed (RFC 2863). At the ceiling without ifHighSpeed
// the speed is unknown: publishing 4.29 Gb/s for a 10 or 100 Gb/s link
// would put its utilisation far above 100 %.
func speed(ifSpeed, ifHighSpeed uint64) uint64 {
	const ceiling = 1<<32 - 1
	switch {
	case ifHighSpeed > 0 && (ifSpeed == 0 || ifSpeed >= ceiling):
		return ifHighSpeed * 1_000_000
	case ifSpeed >= ceiling:
		return 0
	}
	return ifSpeed
}

// maxRepetitions is the number of rows a GetBulk request asks for.
const maxRepetitions = 20

// walkColumn calls each for every instance of an IF-MIB column, in ifIndex
// order, with GetBulk (v2c) or GetNext (v1) requests. gosnmp's Walk and
// BulkWalk end without an error when the agent answers with an error
// status (genErr from a busy agent, authorizationError, tooBig), so a
// table read in part passed for a whole one and replaced the last good
// answer. Here an error status fails the walk, except noSuchName, which is
// how a v1 agent says its MIB view ends, and tooBig, after which the
// request is sent again for half as many rows (down to one).
func walkColumn(g *gosnmp.GoSNMP, column string, each func(idx uint32, pdu gosnmp.SnmpPDU)) error {
	oid, reps := column, uint32(maxRepetitions)
	var last uint32
	started := false
	for {
		var resp *gosnmp.SnmpPacket
		var err error
		if g.Version == gosnmp.Version1 {
			resp, err = g.GetNext([]string{oid})
		} else {
			resp, err = g.GetBulk([]string{oid}, 0, reps)
		}
		if err != nil {
			return err
		}
		switch {
		case resp.Error == gosnmp.NoError:
		case resp.Error == gosnmp.NoSuchName:
			return nil // v1's end of the agent's MIB view (some v2c agents say it so too)
		case resp.Error == gosnmp.TooBig && g.Version != gosnmp.Version1 && reps > 1:
			reps /= 2
			continue
		default:
			return fmt.Errorf("the agent answered %s (after %s)", resp.Error, oid)
		}
		if len(resp.Variables) == 0 {
			return fmt.Errorf("the agent answered no variable (after %s)", oid)
		}
		for _, pdu := range resp.Variables {
			switch pdu.Type {
			case gosnmp.EndOfMibView, gosnmp.NoSuchObject, gosnmp.NoSuchInstance:
				return nil
			}
			rest, ok := strings.CutPrefix(pdu.Name, column+".")
			if !ok {
				return nil // past the column
			}
			idx, err := strconv.ParseUint(rest, 10, 32)
			if err != nil {
				return fmt.Errorf("unexpected instance %s", pdu.Name)
			}
			// Instances come in increasing order; an agent that repeats
			// one would keep the walk going forever.
			if started && uint32(idx) <= last {
				return fmt.Errorf("instance %s not after %s.%d", pdu.Name, column, last)
			}
			started, last = true, uint32(idx)
			each(last, pdu)
			oid = pdu.Name
		}
	}
}

// str returns an OCTET STRING value as a name or alias: trailing NULs
// dropped, made valid UTF-8 and bounded (enrich.CleanText), since agents
// return bytes in any charset and of any length, and label values must be
// UTF-8.
func str(pdu gosnmp.SnmpPDU) string {
	var s string
	switch v := pdu.Value.(type) {
	case []byte:
		s = string(v)
	case string:
		s = v
	default:
		return ""
	}
	return enrich.CleanText(strings.TrimRight(s, "\x00"))
}
