package aggregate

import (
	"cmp"
	"math/bits"
	"slices"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// spaceSaving is the Space-Saving heavy-hitter sketch (Metwally et al.): a
// fixed number of counters; an untracked key replaces the smallest counter
// and inherits its count as error. count-err is a lower bound on the key's
// true weight in the window, which is what admission compares.
//
// It is a hand-written min-heap of counter ids over a keyTable that shares
// the family's compact keys and hash: no allocation once full, O(log n) per
// update, and an update moves only int32 ids.
//
// Once the counters are full, unmonitored keys first go through a filter
// (Filtered Space-Saving, Homem and Carvalho 2010): an array of buckets,
// each an upper bound on the weight of the unmonitored keys hashed to it. A
// key replaces the smallest counter only when its bucket plus its weight
// reaches that counter; otherwise only the bucket grows. The tail of a
// heavy-tailed stream (most records folded into "other") then costs one
// array update instead of a table removal, an insertion and a sift down the
// heap. A key admitted this way starts with count = bucket + weight and
// err = bucket, so count-err is still a lower bound on its weight.
type spaceSaving struct {
	cap    int
	tab    keyTable
	heap   []int32  // counter ids, min-heap by count
	pos    []int32  // heap position of each id
	count  []uint64 // by id
	err    []uint64 // by id
	filter []uint64 // buckets, a power of two
	shift  uint     // bucket of hash h: h >> shift
}

// filterPerCounter is how many filter buckets there are per counter.
const filterPerCounter = 4

// ssEntry is one counter as reported by top.
type ssEntry struct {
	key   Key
	count uint64
	err   uint64
}

// newSpaceSaving returns a sketch of capacity counters over the family
// table fam's words and hash.
func newSpaceSaving(capacity int, fam *keyTable) *spaceSaving {
	tab := newKeyTable(fam.words, capacity)
	tab.seed, tab.k0 = fam.seed, fam.k0
	buckets := 1
	for buckets < filterPerCounter*capacity {
		buckets *= 2
	}
	return &spaceSaving{
		cap: capacity, tab: tab, filter: make([]uint64, buckets), shift: uint(64 - bits.Len(uint(buckets-1))), heap: make([]int32, 0, capacity),
		pos: make([]int32, 0, capacity), count: make([]uint64, 0, capacity), err: make([]uint64, 0, capacity),
	}
}

// add counts w for the compact key ck whose hash (by the family's table, the
// same words and seed) is h.
func (s *spaceSaving) add(ck *ckey, h uint64, w uint64) {
	// Counts and buckets saturate (flow.SatAdd) like the series' counters: 2^14
	// records of the 2^50 bytes the core lets through fill 64 bits in one
	// window, and a wrapped count would make the heaviest key look light
	// (and break the heap's order, which only sifts an increased count down).
	if id := s.tab.find(ck, h); id >= 0 {
		s.count[id] = flow.SatAdd(s.count[id], w)
		s.down(int(s.pos[id]))
		return
	}
	if len(s.heap) < s.cap {
		id := s.tab.insert(ck, h)
		for int(id) >= len(s.count) {
			s.count, s.err, s.pos = append(s.count, 0), append(s.err, 0), append(s.pos, 0)
		}
		s.count[id], s.err[id] = w, 0
		s.heap = append(s.heap, id)
		s.pos[id] = int32(len(s.heap) - 1)
		s.up(len(s.heap) - 1)
		return
	}
	min := s.heap[0]
	c := s.count[min]
	b := &s.filter[h>>s.shift]
	if bw := flow.SatAdd(*b, w); bw < c {
		*b = bw // not heavier than the smallest counter: stays filtered
		return
	}
	// Replace the minimum: its bucket remembers its count (an upper bound
	// on its weight), its id is freed and handed straight back.
	alpha := *b
	hm := s.tab.remove(min)
	if bm := &s.filter[hm>>s.shift]; *bm < c {
		*bm = c
	}
	id := s.tab.insert(ck, h)
	s.count[id], s.err[id] = flow.SatAdd(alpha, w), alpha
	s.heap[0], s.pos[id] = id, 0
	s.down(0)
}

// top returns the entries whose guaranteed weight (count-err) is positive,
// heaviest first.
func (s *spaceSaving) top() []ssEntry {
	out := make([]ssEntry, 0, len(s.heap))
	for _, id := range s.heap {
		if s.count[id] > s.err[id] {
			out = append(out, ssEntry{key: s.tab.key(id), count: s.count[id], err: s.err[id]})
		}
	}
	sortEntries(out)
	return out
}

func (s *spaceSaving) reset() {
	s.heap = s.heap[:0]
	s.tab.clear()
	clear(s.filter)
}

func (s *spaceSaving) less(i, j int) bool { return s.count[s.heap[i]] < s.count[s.heap[j]] }

func (s *spaceSaving) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.pos[s.heap[i]] = int32(i)
	s.pos[s.heap[j]] = int32(j)
}

func (s *spaceSaving) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *spaceSaving) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.swap(i, m)
		i = m
	}
}

func sortEntries(e []ssEntry) {
	slices.SortFunc(e, func(a, b ssEntry) int { return cmp.Compare(b.count-b.err, a.count-a.err) })
}
