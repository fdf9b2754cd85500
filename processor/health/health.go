// Package health keeps the pipeline's own figures per exporter: datagrams,
// records, decode errors by reason, template state, sequence loss, sampling
// rate and last-seen time. Counters are atomics so that decoding workers
// update them without locks and a scrape reads them at any time.
//
// The exporter table is bounded: past its capacity an exporter is
// forgotten (and counted), one seen only once before one seen again (see
// Table.Track), so a flood of spoofed source addresses can neither grow
// memory nor, within limits, push out the real exporters.
package health

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/slru"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// Reason classifies a decode error.
type Reason uint8

// Decode error reasons, the values of the reason label.
const (
	ReasonTruncated Reason = iota
	ReasonUnknownVersion
	ReasonMalformed
	ReasonTemplateInvalid
	ReasonTemplateMissing
	ReasonTemplateLimit
	ReasonImplausible
	ReasonNotAllowed
	ReasonSamplerLimit
	reasonCount
)

var reasonNames = [reasonCount]string{
	ReasonTruncated:       "truncated",
	ReasonUnknownVersion:  "unknown_version",
	ReasonMalformed:       "malformed",
	ReasonTemplateInvalid: "template_invalid",
	ReasonTemplateMissing: "template_missing",
	ReasonTemplateLimit:   "template_limit",
	ReasonImplausible:     "implausible_value",
	ReasonNotAllowed:      "not_allowed",
	ReasonSamplerLimit:    "sampler_limit",
}

// String returns the reason label value.
func (r Reason) String() string { return reasonNames[r] }

// Reasons lists every reason in label order.
func Reasons() []Reason {
	out := make([]Reason, reasonCount)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

const protoCount = 5 // flow.Protocol values incl. unknown

// Exporter holds one exporter's figures. All fields are safe for concurrent
// use.
type Exporter struct {
	// Addr is the exporter's address.
	Addr netip.Addr

	Datagrams    [protoCount]atomic.Uint64
	Records      [protoCount]atomic.Uint64
	DecodeErrors [reasonCount]atomic.Uint64
	// TemplateMissingSets counts data sets that arrived before their
	// template and were skipped.
	TemplateMissingSets atomic.Uint64
	// Templates is the number of templates currently known.
	Templates atomic.Int64
	// SequenceGaps counts discontinuities in the exporter's sequence numbers;
	// LostRecords estimates the flow records (sFlow: samples) they lost.
	SequenceGaps atomic.Uint64
	LostRecords  atomic.Uint64
	// SequenceResets counts sequence jumps read as exporter restarts.
	SequenceResets atomic.Uint64
	// SamplingRate is the last rate in force; RateSource where it came from.
	SamplingRate atomic.Uint32
	RateSource   atomic.Uint32
	// StatedRate is the last record's flow.Record.StatedRate: the rate it
	// stated itself when the rate in force was derived from it (an sFlow
	// sample pool's effective rate), so the rate the exporter is
	// configured with stays visible.
	StatedRate atomic.Uint32
	// Unresolved counts records with no known sampling rate (counted 1:1).
	Unresolved atomic.Uint64
	// LastSeen is the Unix time in nanoseconds of the last datagram.
	LastSeen atomic.Int64
	// Created is when the table started tracking the exporter: the start
	// of its counters, which begin again from zero if it is forgotten
	// (max_exporters) and comes back. Zero for Table.Untracked.
	Created time.Time

	// attached is what Attach stored.
	attached atomic.Value
}

// Attached returns the value last attached with Attach, or nil.
func (e *Exporter) Attached() any { return e.attached.Load() }

// Attach replaces the attached value old (nil for none) with v, which must
// not be nil and must always be of one type, if old is still the attached
// value, and reports whether it did. The receiver's decoders keep their
// per-exporter state (templates, sampler rates, sequence numbers) here, so
// that it lives and is forgotten with the exporter's entry: one bound
// (max_exporters) and one eviction order for both.
func (e *Exporter) Attach(old, v any) bool { return e.attached.CompareAndSwap(old, v) }

// CountDatagram records one datagram of protocol p at unix nanos now.
func (e *Exporter) CountDatagram(p flow.Protocol, now int64) {
	e.Datagrams[p].Add(1)
	e.LastSeen.Store(now)
}

// CountError records one decode error.
func (e *Exporter) CountError(r Reason) { e.DecodeErrors[r].Add(1) }

// Table is the bounded set of exporters. It is safe for concurrent use.
type Table struct {
	mu sync.Mutex
	// lru keeps exporters seen again apart from those seen once, so that
	// a flood of spoofed one-off sources forgets those and not the real
	// exporters (see slru).
	lru      *slru.Cache[netip.Addr, *Exporter]
	capacity int
	evicted  atomic.Uint64
	// unknown collects errors for datagrams whose exporter is not tracked
	// (for example: refused by the allowlist).
	unknown Exporter
}

// NewTable returns a table for at most capacity exporters.
func NewTable(capacity int) *Table {
	return &Table{capacity: capacity, lru: slru.New[netip.Addr, *Exporter](capacity)}
}

// Get returns the exporter's figures, creating them if needed.
func (t *Table) Get(addr netip.Addr) *Exporter {
	e, _ := t.Track(addr)
	return e
}

// Track is Get that also returns the exporter forgotten to make room for
// addr, if it had to forget one (the zero Addr otherwise). A full table
// forgets the least recently seen exporter of those seen only once since
// they were tracked, and only when there is none the least recently seen
// of the others. Exporters seen again are kept apart only up to three
// quarters of the capacity: beyond, the least recently seen of them are
// forgotten as if seen once (see slru).
func (t *Table) Track(addr netip.Addr) (*Exporter, netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.lru.Get(addr); ok {
		return e, netip.Addr{}
	}
	e := &Exporter{Addr: addr, Created: time.Now()}
	forgot, _, ok := t.lru.Add(addr, e)
	if !ok {
		return e, netip.Addr{}
	}
	t.evicted.Add(1)
	return e, forgot
}

// Capacity returns the most exporters the table tracks.
func (t *Table) Capacity() int { return t.capacity }

// Untracked returns the figures kept for traffic from no tracked exporter.
func (t *Table) Untracked() *Exporter { return &t.unknown }

// Evicted returns how many exporters were forgotten to stay within capacity.
func (t *Table) Evicted() uint64 { return t.evicted.Load() }

// Each calls fn for every tracked exporter: those seen once (and those
// seen again beyond three quarters of the capacity), then the others, each
// least recently seen first.
func (t *Table) Each(fn func(*Exporter)) {
	t.mu.Lock()
	list := t.lru.Values()
	t.mu.Unlock()
	for _, e := range list {
		fn(e)
	}
}

// Len returns the number of tracked exporters.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// LatencyBuckets are the upper bounds, in seconds, of the processing-time
// histogram.
var LatencyBuckets = []float64{1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2}

// Histogram is a lock-free fixed-bucket histogram of durations.
type Histogram struct {
	counts [12]atomic.Uint64 // len(LatencyBuckets)+1, last is +Inf
	sumNs  atomic.Uint64
}

// Observe records one duration in nanoseconds.
func (h *Histogram) Observe(ns int64) { h.ObserveN(ns, 1) }

// ObserveN records n observations of the same duration in nanoseconds.
func (h *Histogram) ObserveN(ns int64, n uint64) {
	if n == 0 {
		return
	}
	s := float64(ns) / 1e9
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	h.counts[i].Add(n)
	h.sumNs.Add(uint64(ns) * n)
}

// Snapshot returns cumulative bucket counts (keyed by upper bound), the
// total count and the sum in seconds, as Prometheus histograms want them.
//
// The count is the buckets' total, each bucket read once, so that no
// bucket exceeds it while observations land: a separate total, read after
// the buckets, could lag one that was already counted in its bucket (the
// OpenTelemetry receiver's +Inf bucket, count minus the last bound's,
// wrapped to about 1.8e19). The sum may still be a few observations apart.
func (h *Histogram) Snapshot() (buckets map[float64]uint64, count uint64, sum float64) {
	buckets = make(map[float64]uint64, len(LatencyBuckets))
	var cum uint64
	for i, ub := range LatencyBuckets {
		cum += h.counts[i].Load()
		buckets[ub] = cum
	}
	cum += h.counts[len(LatencyBuckets)].Load()
	return buckets, cum, float64(h.sumNs.Load()) / 1e9
}
