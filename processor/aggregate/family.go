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
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

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
	// The OpenTelemetry Collector's Prometheus exporter builds names from
	// the words between underscores, dropping empty ones and "total": such
	// a family would be served there under another name, or collide.
	for _, w := range strings.Split(s.Name, "_") {
		if w == "" || w == "total" {
			return fmt.Errorf("name %q: must not start or end with _, hold __ or the word total (the Collector's Prometheus exporter would rename it)", s.Name)
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

// add counts one record. The counters saturate rather than wrap: a
// counter that wrapped would go down, which Prometheus takes for a reset
// and rate() for a burst of up to 2^64 (the core drops records above 2^50
// bytes or packets, but 16,384 of those would still wrap one).
func (c *Counts) add(r *flow.Record) {
	c.Bytes = flow.SatAdd(c.Bytes, r.ScaledBytes)
	c.Packets = flow.SatAdd(c.Packets, r.ScaledPackets)
	c.Flows++
}

// series is one series' state; its key is in the family's keyTable under the
// same id. Kept small: the core's memory per series is dominated by it.
//
// Its label values live apart (Family.labels): what a record touches, first
// here, then fills one 64-byte cache line with the rest, where the labels'
// string header made it 80 bytes, so that half the series straddled two
// lines.
type series struct {
	Counts
	lastSeen int64 // unix nanos
	window   uint64
	frozenAt int64 // unix nanos; 0 while live
	start    int64 // unix nanos
	used     bool  // false while the id is free
	other    bool  // the overflow series of an exporter
}

// seriesChunk is how many series an arena chunk holds. Chunks never move, so
// a *series stays valid while the family grows, and a family wastes at most
// one partly used chunk.
const seriesChunk = 256

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
	cmask4, cmask6 ckey // compact masks for IPv4 and other records, see AddKeyed
	// batchWords is how many of the table's first words are the same for
	// every record of a batch: the exporter's two, if the family has them,
	// then the Other word if no label of the family lives in it.
	batchWords int

	mu    sync.Mutex
	tab   keyTable   // compact key -> series id
	arena [][]series // series by id, in chunks of seriesChunk
	// labels are the series' label values joined by labelSep (see
	// joinLabels), by id in chunks as arena: read only at a scrape.
	labels     [][]string
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
	f := &Family{spec: spec, opts: opts}
	for _, l := range spec.Labels {
		f.mask |= 1 << l
	}
	maskV4 := keyMask(f.mask, true, spec.IPv4Mask, spec.IPv6Mask)
	maskV6 := keyMask(f.mask, false, spec.IPv4Mask, spec.IPv6Mask)
	// The family's words: those either mask keeps, and the one holding Other.
	// The order is free (the table maps them); the folding loops
	// (addShort, addGeneral) want first the words that are the same for a
	// whole batch: the exporter's (a batch is one exporter's), then the
	// Other word when the family keeps nothing else of it (a record's is
	// then always zero), then the rest.
	w4 := (*[keyWords]uint64)(unsafe.Pointer(&maskV4))
	w6 := (*[keyWords]uint64)(unsafe.Pointer(&maskV6))
	var words []uint8
	add := func(i int) {
		f.cmask4[len(words)], f.cmask6[len(words)] = w4[i], w6[i]
		words = append(words, uint8(i))
	}
	exporterWords := w4[0]|w6[0] != 0 && w4[1]|w6[1] != 0
	if exporterWords {
		add(0)
		add(1)
		f.batchWords = 2
	}
	if w4[otherWord]|w6[otherWord] == 0 {
		add(otherWord)
		f.batchWords++
	}
	for i := range keyWords {
		if (w4[i]|w6[i] != 0 || i == otherWord) && !slices.Contains(words, uint8(i)) {
			add(i)
		}
	}
	f.tab = newKeyTable(words, min(spec.Limit, 1024))
	f.sketch = newSpaceSaving(opts.SketchSize, &f.tab)
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
		f.sketch = newSpaceSaving(o.SketchSize, &f.tab)
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
		SetBaseKey(&base[i], &recs[i])
	}
	f.AddKeyed(recs, base, now)
}

// AddKeyed is Add with the records' base keys (SetBaseKey) computed by the
// caller, once for every family.
func (f *Family) AddKeyed(recs []flow.Record, base []Key, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addKeyed(recs, base, now)
}

// TryAddKeyed is AddKeyed if the family is not busy with another batch; it
// reports whether it folded the batch in. Callers with several families to
// update (core.Process) do the busy ones last rather than waiting in line:
// socket readers that all walked the families in the same order and
// waited for each fell into step behind one another.
func (f *Family) TryAddKeyed(recs []flow.Record, base []Key, now time.Time) bool {
	if !f.mu.TryLock() {
		return false
	}
	defer f.mu.Unlock()
	f.addKeyed(recs, base, now)
	return true
}

// addKeyed is AddKeyed with f.mu held.
//
// The loops of addShort and addGeneral are the hot path of the whole
// program (once per record and family), so they keep only the common case
// inline: a key found live, or equal to the previous record's. Admission,
// the sketch and the overflow series are in miss. Both fold the same
// records into the same series, in the same order
// (FuzzShortMatchesGeneral).
func (f *Family) addKeyed(recs []flow.Record, base []Key, now time.Time) {
	switch {
	case len(recs) == 0:
	case f.short():
		f.addShort(recs, base, now)
	default:
		f.addGeneral(recs, base, now)
	}
}

// short reports whether the family's records differ in at most two words
// of the compact key, so that addShort can fold them.
func (f *Family) short() bool { return len(f.tab.words)-f.batchWords <= 2 }

// addGeneral is addKeyed for any family, with a loop over the words that
// differ from record to record.
func (f *Family) addGeneral(recs []flow.Record, base []Key, now time.Time) {
	base = base[:len(recs)]
	b := batch{now: now}
	ns := now.UnixNano()
	// The previous record's series: consecutive records often share a key in
	// families with few labels (protocol, interface). keys[i&1] is record
	// i's compact key, keys[(i+1)&1] the previous one's.
	var keys [2]ckey
	var prevS *series
	words := f.tab.words
	words = words[:min(len(words), keyWords)]
	// The batch's words (see batchWords) are copied into both compact keys
	// and hashed once per exporter rather than once per record (only a
	// test mixes exporters in one batch); only the other words are
	// gathered per record.
	skip := f.batchWords
	perExporter := skip >= 2
	rest := words[skip:]
	n := len(rest)
	c4, c6 := f.cmask4[skip:skip+n], f.cmask6[skip:skip+n]
	k0, k1 := keys[0][skip:skip+n], keys[1][skip:skip+n]
	hPre := f.tab.hashFrom(f.tab.seed, keys[0][:skip])
	for i := range recs {
		bk := &base[i]
		bw := (*[keyWords]uint64)(unsafe.Pointer(bk))
		cm := c6
		if bk.IPVersion == 4 {
			cm = c4
		}
		ck, cc, cp := &keys[0], k0, k1
		if i&1 != 0 {
			ck, cc, cp = &keys[1], k1, k0
		}
		diff := uint64(0)
		if perExporter && (i == 0 || bw[0] != ck[0] || bw[1] != ck[1]) {
			keys[0][0], keys[0][1] = bw[0], bw[1]
			keys[1][0], keys[1][1] = bw[0], bw[1]
			hPre = f.tab.hashFrom(f.tab.seed, ck[:skip])
			diff = 1
		}
		cm, cc, cp = cm[:n], cc[:n], cp[:n]
		for j, w := range rest {
			x := bw[w] & cm[j]
			cc[j] = x
			diff |= x ^ cp[j]
		}
		s := prevS
		if diff != 0 || s == nil {
			h := f.tab.hashFrom(hPre, cc)
			s = nil
			id := f.tab.find(ck, h)
			if id >= 0 {
				if t := f.at(id); t.frozenAt == 0 {
					s = t
				}
			}
			if prevS = s; s == nil {
				s = f.miss(&b, ck, h, id >= 0, bk, &recs[i])
			}
		}
		r := &recs[i]
		s.add(r)
		s.lastSeen = ns
		s.window = flow.SatAdd(s.window, r.ScaledBytes+1)
	}
}

// addShort is addGeneral for a family whose records differ in at most two
// words of the compact key (every default family; the others take
// addGeneral): the two words are kept in registers and hashed without a
// loop, and a key is compared as five words at once (findShort). It took
// 12 % off BenchmarkFamilyCost/v5/all and 23 % off sflow/all
// (docs/performance.md, session 15).
func (f *Family) addShort(recs []flow.Record, base []Key, now time.Time) {
	b := batch{now: now}
	ns := now.UnixNano()
	t := &f.tab
	skip := f.batchWords
	n := len(t.words) - skip
	// The record's words and their masks; a word the family lacks reads
	// word 0 and masks it to zero.
	var r0, r1 uint8
	var m40, m41, m60, m61 uint64
	if n > 0 {
		r0, m40, m60 = t.words[skip], f.cmask4[skip], f.cmask6[skip]
	}
	if n > 1 {
		r1, m41, m61 = t.words[skip+1], f.cmask4[skip+1], f.cmask6[skip+1]
	}
	// ck is the compact key: the batch words (see batchWords), then the
	// record's; past them zero (findShort masks those words anyway).
	var ck ckey
	hPre := t.hashFrom(t.seed, ck[:skip])
	var prevS *series
	var p0, p1 uint64
	for i := range recs {
		bk := &base[i]
		bw := (*[keyWords]uint64)(unsafe.Pointer(bk))
		m0, m1 := m60, m61
		if bk.IPVersion == 4 {
			m0, m1 = m40, m41
		}
		x0, x1 := bw[r0]&m0, bw[r1]&m1
		s := prevS
		if skip >= 2 && (bw[0] != ck[0] || bw[1] != ck[1]) {
			ck[0], ck[1] = bw[0], bw[1]
			hPre = t.hashFrom(t.seed, ck[:skip])
			s = nil
		}
		if x0 != p0 || x1 != p1 || s == nil {
			p0, p1 = x0, x1
			ck[skip&7], ck[(skip+1)&7] = x0, x1
			h := hPre
			if n > 0 {
				h = t.mix(h, x0)
			}
			if n > 1 {
				h = t.mix(h, x1)
			}
			s = nil
			id := t.findShort(&ck, h)
			if id >= 0 {
				if t := f.at(id); t.frozenAt == 0 {
					s = t
				}
			}
			if prevS = s; s == nil {
				s = f.miss(&b, &ck, h, id >= 0, bk, &recs[i])
			}
		}
		r := &recs[i]
		s.add(r)
		s.lastSeen = ns
		s.window = flow.SatAdd(s.window, r.ScaledBytes+1)
	}
}

// batch is what miss keeps across one addKeyed call: the batch's overflow
// series, looked up once per exporter.
type batch struct {
	now    time.Time
	oth    *series
	othExp [16]byte
}

// miss handles a record whose key has no live series (frozen reports that
// it has a frozen one): it admits the key if it may, or counts it in the
// sketch and returns the exporter's overflow series. The caller updates
// the series returned.
//
//go:noinline
func (f *Family) miss(b *batch, ck *ckey, h uint64, frozen bool, bk *Key, r *flow.Record) *series {
	if id := f.admit(ck, h, b.now, frozen); id >= 0 {
		return f.at(id)
	}
	f.sketch.add(ck, h, r.ScaledBytes+1)
	if b.oth == nil || b.othExp != bk.Exporter {
		b.othExp = bk.Exporter
		b.oth = f.at(f.other(b.othExp, b.now))
	}
	f.stats.Folded++
	return b.oth
}

// at returns the series of id.
func (f *Family) at(id int32) *series {
	return &f.arena[uint32(id)/seriesChunk][uint32(id)%seriesChunk]
}

// labelsAt returns where the label values of id's series are kept.
func (f *Family) labelsAt(id int32) *string {
	return &f.labels[uint32(id)/seriesChunk][uint32(id)%seriesChunk]
}

// admit creates a series for ck if there is room and no pending heavier key
// waits for it; it returns -1 otherwise. frozen reports that the key's
// previous series is still frozen (it must be dropped before the key can
// come back).
func (f *Family) admit(ck *ckey, h uint64, now time.Time, frozen bool) int32 {
	if frozen || f.nLimited >= f.spec.Limit || len(f.pending) > 0 {
		return -1
	}
	return f.create(ck, h, now)
}

// create adds a series for ck, which must not be in the table, resuming it
// from its tombstone if there is one.
func (f *Family) create(ck *ckey, h uint64, now time.Time) int32 {
	id := f.tab.insert(ck, h)
	for int(id) >= len(f.arena)*seriesChunk {
		f.arena = append(f.arena, make([]series, seriesChunk))
		f.labels = append(f.labels, make([]string, seriesChunk))
	}
	k := f.tab.key(id)
	s := f.at(id)
	*s = series{start: now.UnixNano(), lastSeen: now.UnixNano(), used: true, other: k.Other}
	if t, ok := f.tombs.Get(k); ok {
		s.Counts, s.start = t.Counts, t.start
		f.tombs.Remove(k)
		f.stats.Resumed++
	}
	*f.labelsAt(id) = joinLabels(f.render(&k))
	if !k.Other {
		f.nLimited++
	}
	f.stats.Admitted++
	return id
}

// lookup returns the id of a full (already masked) key, or -1, with the
// key's compact form and hash.
func (f *Family) lookup(k *Key) (int32, ckey, uint64) {
	ck := f.tab.compact(k)
	h := f.tab.hash(&ck)
	return f.tab.find(&ck, h), ck, h
}

// other returns the overflow series of an exporter, creating it if needed.
// In a family whose only label is the exporter (the exporter totals among
// them) an exporter's overflow series would carry the labels of its own
// series, and a page would list the exporter twice (while its series is
// frozen, or once it is admitted); there the overflow series is the shared
// one, exporter "other".
func (f *Family) other(exporter [16]byte, now time.Time) int32 {
	k := Key{Exporter: exporter, Other: true}
	if f.mask&(1<<LabelExporter) == 0 || f.mask == 1<<LabelExporter {
		k.Exporter = [16]byte{}
	}
	id, ck, h := f.lookup(&k)
	if id >= 0 {
		f.at(id).frozenAt = 0 // an idle "other" comes back to life in place
		return id
	}
	if f.tab.n-f.nLimited >= f.opts.MaxOthers {
		k.Exporter = [16]byte{}
		if id, ck, h = f.lookup(&k); id >= 0 {
			f.at(id).frozenAt = 0
			return id
		}
	}
	return f.create(&ck, h, now)
}

// each calls fn for every series with its id.
func (f *Family) each(fn func(id int32, s *series)) {
	n := int32(f.tab.ids())
	for id := int32(0); id < n; id++ {
		if s := f.at(id); s.used {
			fn(id, s)
		}
	}
}

// Maintain freezes idle series, drops series whose hold has passed and, at
// the end of each admission window, lets heavier keys replace light series.
// Call it every few seconds and before each collection.
func (f *Family) Maintain(now time.Time) {
	ns := now.UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	ttl, hold := f.opts.TTL.Nanoseconds(), f.opts.Hold.Nanoseconds()
	f.each(func(id int32, s *series) {
		switch {
		case s.frozenAt == 0 && ns-s.lastSeen >= ttl:
			s.frozenAt = ns
			f.stats.EvictedIdle++
		case s.frozenAt != 0 && ns-s.frozenAt >= hold:
			f.tombs.Add(f.tab.key(id), tombstone{Counts: s.Counts, start: s.start})
			f.tab.remove(id)
			if !s.other {
				f.nLimited--
			}
			*s = series{}
			*f.labelsAt(id) = ""
			f.stats.Dropped++
		}
	})
	// Slots freed: pending heavy keys first.
	for len(f.pending) > 0 && f.nLimited < f.spec.Limit {
		k := f.pending[0]
		f.pending = f.pending[1:]
		if id, ck, h := f.lookup(&k); id < 0 {
			f.create(&ck, h, now)
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
		f.each(func(_ int32, s *series) { s.window = 0 })
	}()
	if f.nLimited < f.spec.Limit || len(f.pending) > 0 {
		return // room left (or replacements still in flight): nothing to displace
	}
	cands := f.sketch.top()
	if len(cands) == 0 {
		return
	}
	var live []*series
	f.each(func(_ int32, s *series) {
		if s.frozenAt == 0 && !s.other {
			live = append(live, s)
		}
	})
	slices.SortFunc(live, func(a, b *series) int { return cmp.Compare(a.window, b.window) })
	n := 0
	for _, c := range cands {
		if n >= len(live) {
			break
		}
		if id, _, _ := f.lookup(&c.key); id >= 0 {
			continue // frozen: it will come back through the normal path
		}
		victim := live[n]
		// Twice the victim's window saturates: a window of 2^63 bytes or
		// more (2^13 records of the 2^50 the core lets through) wrapped to
		// next to nothing and let any key displace it.
		if c.count-c.err <= flow.SatAdd(victim.window, victim.window) {
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
	st.OtherSeries = f.tab.n - f.nLimited
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
// it. It holds the family's lock only while copying. The points' label
// slices share one allocation and the label strings share the series' own.
func (f *Family) Collect(dst []Point) []Point {
	f.mu.Lock()
	defer f.mu.Unlock()
	nl := len(f.spec.Labels)
	vals := make([]string, f.tab.n*nl)
	dst = slices.Grow(dst, f.tab.n)
	f.each(func(id int32, s *series) {
		v := vals[:nl:nl]
		vals = vals[nl:]
		splitLabels(v, *f.labelsAt(id))
		dst = append(dst, Point{Labels: v, Counts: s.Counts, Start: time.Unix(0, s.start), Other: s.other, Frozen: s.frozenAt != 0})
	})
	return dst
}
