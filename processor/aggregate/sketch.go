package aggregate

import (
	"cmp"
	"slices"
)

// spaceSaving is the Space-Saving heavy-hitter sketch (Metwally et al.): a
// fixed number of counters; an untracked key replaces the smallest counter
// and inherits its count as error. count-err is a lower bound on the key's
// true weight in the window, which is what admission compares.
//
// It is a hand-written min-heap of counter ids over a keyTable that shares
// the family's compact keys and hash: no allocation once full, O(log n) per
// update, and an update moves only int32 ids.
type spaceSaving struct {
	cap   int
	tab   keyTable
	heap  []int32  // counter ids, min-heap by count
	pos   []int32  // heap position of each id
	count []uint64 // by id
	err   []uint64 // by id
}

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
	tab.seed = fam.seed
	return &spaceSaving{
		cap: capacity, tab: tab, heap: make([]int32, 0, capacity),
		pos: make([]int32, 0, capacity), count: make([]uint64, 0, capacity), err: make([]uint64, 0, capacity),
	}
}

// add counts w for the compact key ck whose hash (by the family's table, the
// same words and seed) is h.
func (s *spaceSaving) add(ck *ckey, h uint64, w uint64) {
	if id := s.tab.find(ck, h); id >= 0 {
		s.count[id] += w
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
	// Replace the minimum: its id is freed and handed straight back.
	min := s.heap[0]
	c := s.count[min]
	s.tab.remove(min)
	id := s.tab.insert(ck, h)
	s.count[id], s.err[id] = c+w, c
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
