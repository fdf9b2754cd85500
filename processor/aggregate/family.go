// Package aggregate folds flow records into metric families of bounded
// cardinality.
//
// Each Family is a table of at most Limit series keyed by the family's label
// set, plus one overflow ("other") series per exporter. Every record lands in
// exactly one series of every family, so a family always sums to the
// exporter's total ("conservation").
//
// Admission: while the table has room a new key gets a series at once. When
// it is full, records of unknown keys go to "other" and feed a Space-Saving
// sketch; at the end of each admission window, keys that the sketch proves
// heavier (count minus error) than twice the lightest live series' traffic in
// that window replace those series. A flood of one-off keys therefore lands
// in "other" and cannot churn the table. Sketch estimates are never exported.
//
// Eviction ("freeze, hold, drop"): a series idle for the TTL, or displaced by
// a heavier key, is frozen: it takes no more traffic (its key's traffic goes
// to "other") but keeps being exposed with its final value for the hold time
// so that Prometheus sees its last increments; then it is dropped and a small
// tombstone (final values and start time) is kept in an LRU. A key that comes
// back resumes from its tombstone, so rate() across the gap stays exact;
// without one it starts from zero with a new start time, a true reset.
// Frozen series count against Limit.
package aggregate

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// Spec describes one metric family.
type Spec struct {
	// Name is the family name; metrics are flow_<Name>_bytes_total etc.
	Name string
	// Labels is the label set, in exposition order.
	Labels []Label
	// Limit is the most series (live and frozen) the family holds, not
	// counting one "other" series per exporter.
	Limit int
	// IPv4Mask and IPv6Mask truncate src/dst addresses to a prefix (for
	// example 24 and 64). 0 means full length.
	IPv4Mask, IPv6Mask int
	// HashKey, when set, replaces src/dst address label values by a keyed
	// hash (HMAC-SHA256, 16 hex digits) of the (truncated) address, for
	// privacy: series stay distinct and stable, addresses are not exposed.
	HashKey []byte
}

// Validate reports the first problem in s.
func (s Spec) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("name: must not be empty")
	}
	for _, c := range s.Name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Errorf("name %q: only lower-case letters, digits and _ are allowed", s.Name)
		}
	}
	if len(s.Labels) == 0 {
		return fmt.Errorf("labels: at least one label is required")
	}
	seen := map[Label]bool{}
	for _, l := range s.Labels {
		if l >= labelCount {
			return fmt.Errorf("labels: unknown label %d", l)
		}
		if seen[l] {
			return fmt.Errorf("labels: %q listed twice", l)
		}
		seen[l] = true
	}
	if s.Limit < 1 {
		return fmt.Errorf("limit: must be at least 1, got %d", s.Limit)
	}
	if s.IPv4Mask < 0 || s.IPv4Mask > 32 {
		return fmt.Errorf("ipv4_prefix_length: must be 0..32, got %d", s.IPv4Mask)
	}
	if s.IPv6Mask < 0 || s.IPv6Mask > 128 {
		return fmt.Errorf("ipv6_prefix_length: must be 0..128, got %d", s.IPv6Mask)
	}
	return nil
}

// Options tunes expiry and admission; the zero value is replaced by defaults.
type Options struct {
	// TTL is how long a series may stay idle before it is frozen.
	TTL time.Duration
	// Hold is how long a frozen series stays exposed before it is dropped;
	// at least two scrape intervals.
	Hold time.Duration
	// Window is the admission window of the heavy-hitter sketch.
	Window time.Duration
	// SketchSize is the number of Space-Saving counters per family.
	SketchSize int
	// Tombstones is the number of dropped series remembered for resumption.
	Tombstones int
	// MaxOthers bounds the per-exporter "other" series; past it, overflow
	// of further exporters shares one series whose exporter is "other".
	MaxOthers int
}

// DefaultOptions are used for fields left zero.
var DefaultOptions = Options{
	TTL:        10 * time.Minute,
	Hold:       2 * time.Minute,
	Window:     30 * time.Second,
	SketchSize: 1024,
	Tombstones: 4096,
	MaxOthers:  1024,
}

func (o Options) withDefaults() Options {
	d := DefaultOptions
	if o.TTL > 0 {
		d.TTL = o.TTL
	}
	if o.Hold > 0 {
		d.Hold = o.Hold
	}
	if o.Window > 0 {
		d.Window = o.Window
	}
	if o.SketchSize > 0 {
		d.SketchSize = o.SketchSize
	}
	if o.Tombstones > 0 {
		d.Tombstones = o.Tombstones
	}
	if o.MaxOthers > 0 {
		d.MaxOthers = o.MaxOthers
	}
	return d
}

// Counts are the three counters every series carries.
type Counts struct {
	Bytes, Packets, Flows uint64
}

func (c *Counts) add(r *flow.Record) {
	c.Bytes += r.ScaledBytes
	c.Packets += r.ScaledPackets
	c.Flows++
}

// series is one series' state; its key is the map key. Kept small: the
// core's memory per series is dominated by it.
type series struct {
	labels []string
	Counts
	start    int64 // unix nanos
	lastSeen int64 // unix nanos
	window   uint64
	frozenAt int64 // unix nanos; 0 while live
}

type tombstone struct {
	Counts
	start int64 // unix nanos
}

// Stats are a family's own health figures.
type Stats struct {
	// Series is the number of live and frozen series, not counting "other".
	Series int
	// OtherSeries is the number of overflow series (one per exporter).
	OtherSeries int
	// Folded counts records that went to an "other" series.
	Folded uint64
	// Admitted counts series created (including resumptions).
	Admitted uint64
	// Resumed counts series created from a tombstone.
	Resumed uint64
	// EvictedIdle and EvictedReplaced count frozen series by cause.
	EvictedIdle, EvictedReplaced uint64
	// Dropped counts frozen series removed after their hold.
	Dropped uint64
}

// Family is one bounded metric family. It is safe for concurrent use.
type Family struct {
	spec           Spec
	opts           Options
	mask           uint32
	maskV4, maskV6 Key // see key

	mu         sync.Mutex
	series     map[Key]*series
	nLimited   int // series counted against the limit
	pending    []Key
	sketch     *spaceSaving
	tombs      *simplelru.LRU[Key, tombstone]
	lastRotate int64
	stats      Stats
}

// NewFamily returns an empty family; spec must be valid.
func NewFamily(spec Spec, opts Options) *Family {
	opts = opts.withDefaults()
	if spec.IPv4Mask == 0 {
		spec.IPv4Mask = 32
	}
	if spec.IPv6Mask == 0 {
		spec.IPv6Mask = 128
	}
	f := &Family{spec: spec, opts: opts, series: make(map[Key]*series)}
	for _, l := range spec.Labels {
		f.mask |= 1 << l
	}
	f.maskV4 = keyMask(f.mask, true, spec.IPv4Mask, spec.IPv6Mask)
	f.maskV6 = keyMask(f.mask, false, spec.IPv4Mask, spec.IPv6Mask)
	f.sketch = newSpaceSaving(opts.SketchSize)
	f.tombs, _ = simplelru.NewLRU[Key, tombstone](opts.Tombstones, nil)
	return f
}

// SameSpec reports whether s describes this family exactly (after the
// defaults New applies), so a reload can keep its series.
func (f *Family) SameSpec(s Spec) bool {
	if s.IPv4Mask == 0 {
		s.IPv4Mask = 32
	}
	if s.IPv6Mask == 0 {
		s.IPv6Mask = 128
	}
	return s.Name == f.spec.Name && s.Limit == f.spec.Limit && s.IPv4Mask == f.spec.IPv4Mask &&
		s.IPv6Mask == f.spec.IPv6Mask && slices.Equal(s.Labels, f.spec.Labels) && bytes.Equal(s.HashKey, f.spec.HashKey)
}

// Options returns the family's options.
func (f *Family) Options() Options {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opts
}

// SetOptions changes expiry and admission settings in place; series and
// counters are kept. A new sketch size empties the sketch; a smaller
// tombstone count forgets the oldest tombstones.
func (f *Family) SetOptions(o Options) {
	o = o.withDefaults()
	f.mu.Lock()
	defer f.mu.Unlock()
	if o.SketchSize != f.opts.SketchSize {
		f.sketch = newSpaceSaving(o.SketchSize)
	}
	if o.Tombstones != f.opts.Tombstones {
		f.tombs.Resize(o.Tombstones)
	}
	f.opts = o
}

// Spec returns the family's spec.
func (f *Family) Spec() Spec { return f.spec }

// LabelNames returns the family's label names in exposition order.
func (f *Family) LabelNames() []string {
	out := make([]string, len(f.spec.Labels))
	for i, l := range f.spec.Labels {
		out[i] = l.String()
	}
	return out
}

// Add folds a batch of records (already sampling-corrected) into the family.
func (f *Family) Add(recs []flow.Record, now time.Time) {
	base := make([]Key, len(recs))
	for i := range recs {
		base[i] = BaseKey(&recs[i])
	}
	f.AddKeyed(recs, base, now)
}

// AddKeyed is Add with the records' BaseKeys computed by the caller, once for
// every family.
func (f *Family) AddKeyed(recs []flow.Record, base []Key, now time.Time) {
	ns := now.UnixNano()
	var k Key
	// The batch's overflow series, looked up once per exporter (a batch is
	// usually one datagram, so one exporter).
	var oth *series
	var othExp [16]byte
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		f.key(&k, &base[i])
		s := f.series[k]
		if s == nil || s.frozenAt != 0 {
			s = f.admit(k, now, s != nil)
			if s == nil {
				f.sketch.add(k, r.ScaledBytes+1)
				if oth == nil || othExp != k.Exporter {
					oth, othExp = f.other(k.Exporter, now), k.Exporter
				}
				s = oth
				f.stats.Folded++
			}
		}
		s.add(r)
		s.lastSeen = ns
		s.window += r.ScaledBytes + 1
	}
}

// admit creates a series for k if there is room and no pending heavier key
// waits for it; it returns nil otherwise. frozen reports that k's previous
// series is still frozen (it must be dropped before k can come back).
func (f *Family) admit(k Key, now time.Time, frozen bool) *series {
	if frozen || f.nLimited >= f.spec.Limit || len(f.pending) > 0 {
		return nil
	}
	return f.create(k, now)
}

func (f *Family) create(k Key, now time.Time) *series {
	s := &series{start: now.UnixNano(), lastSeen: now.UnixNano()}
	if t, ok := f.tombs.Get(k); ok {
		s.Counts, s.start = t.Counts, t.start
		f.tombs.Remove(k)
		f.stats.Resumed++
	}
	s.labels = f.render(&k)
	f.series[k] = s
	if !k.Other {
		f.nLimited++
	}
	f.stats.Admitted++
	return s
}

func (f *Family) other(exporter [16]byte, now time.Time) *series {
	k := Key{Exporter: exporter, Other: true}
	if f.mask&(1<<LabelExporter) == 0 {
		k.Exporter = [16]byte{}
	}
	if s := f.series[k]; s != nil {
		if s.frozenAt != 0 { // an idle "other" comes back to life in place
			s.frozenAt = 0
		}
		return s
	}
	if len(f.series)-f.nLimited >= f.opts.MaxOthers {
		k.Exporter = [16]byte{}
		if s := f.series[k]; s != nil {
			s.frozenAt = 0
			return s
		}
	}
	return f.create(k, now)
}

// Maintain freezes idle series, drops series whose hold has passed and, at
// the end of each admission window, lets heavier keys replace light series.
// Call it every few seconds and before each collection.
func (f *Family) Maintain(now time.Time) {
	ns := now.UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	ttl, hold := f.opts.TTL.Nanoseconds(), f.opts.Hold.Nanoseconds()
	for k, s := range f.series {
		switch {
		case s.frozenAt == 0 && ns-s.lastSeen >= ttl:
			s.frozenAt = ns
			f.stats.EvictedIdle++
		case s.frozenAt != 0 && ns-s.frozenAt >= hold:
			f.tombs.Add(k, tombstone{Counts: s.Counts, start: s.start})
			delete(f.series, k)
			if !k.Other {
				f.nLimited--
			}
			f.stats.Dropped++
		}
	}
	// Slots freed: pending heavy keys first.
	for len(f.pending) > 0 && f.nLimited < f.spec.Limit {
		k := f.pending[0]
		f.pending = f.pending[1:]
		if s := f.series[k]; s == nil {
			f.create(k, now)
		}
	}
	if f.lastRotate == 0 {
		f.lastRotate = ns
	}
	if ns-f.lastRotate >= f.opts.Window.Nanoseconds() {
		f.rotate(ns)
		f.lastRotate = ns
	}
}

// rotate closes an admission window: candidates the sketch proves heavy
// displace the lightest live series.
func (f *Family) rotate(ns int64) {
	defer func() {
		f.sketch.reset()
		for _, s := range f.series {
			s.window = 0
		}
	}()
	if f.nLimited < f.spec.Limit || len(f.pending) > 0 {
		return // room left (or replacements still in flight): nothing to displace
	}
	cands := f.sketch.top()
	if len(cands) == 0 {
		return
	}
	var live []*series
	for k, s := range f.series {
		if s.frozenAt == 0 && !k.Other {
			live = append(live, s)
		}
	}
	sortSeriesByWindow(live)
	n := 0
	for _, c := range cands {
		if n >= len(live) {
			break
		}
		if _, exists := f.series[c.key]; exists {
			continue // frozen: it will come back through the normal path
		}
		victim := live[n]
		if c.count-c.err <= 2*victim.window {
			break
		}
		victim.frozenAt = ns
		f.stats.EvictedReplaced++
		f.pending = append(f.pending, c.key)
		n++
	}
}

// Stats returns a copy of the family's health figures.
func (f *Family) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.Series = f.nLimited
	st.OtherSeries = len(f.series) - f.nLimited
	return st
}

// Point is one series as collected.
type Point struct {
	// Labels are the label values in LabelNames order; shared, read-only.
	Labels []string
	Counts
	// Start is when the series was admitted (or first admitted, if it
	// resumed from a tombstone).
	Start time.Time
	// Other marks the overflow series.
	Other bool
	// Frozen marks a series that takes no more traffic.
	Frozen bool
}

// Collect appends every series (live, frozen and "other") to dst and returns
// it. It holds the family's lock only while copying.
func (f *Family) Collect(dst []Point) []Point {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, s := range f.series {
		dst = append(dst, Point{Labels: s.labels, Counts: s.Counts, Start: time.Unix(0, s.start), Other: k.Other, Frozen: s.frozenAt != 0})
	}
	return dst
}
